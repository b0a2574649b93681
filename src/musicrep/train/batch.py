"""What one training step consumes: :class:`Batch`, the contract between ``train.data`` and the objectives.

The data side fills it (crops from the pool or a task, second views for contrastive pairs, targets for
supervised training); an objective reads only the fields it needs (``Objective.needs_pairs`` /
``needs_labels``). Keeping the contract in its own file lets ``train/data.py`` and ``train/objectives/``
stay independent of each other.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

__all__ = ["Batch"]


@dataclass
class Batch:
    """One step's training examples, already in the encoder's input form.

    Attributes:
        x: view 1, what ``Encoder.prepare`` gives: standardised log-mel ``[B, 1, n_mels, frames]``
            (``input_kind == "logmel"``) or 16 kHz waveform ``[B, samples]`` (``"waveform"``).
        x2: view 2 of the same tracks (contrastive positives), same shape as ``x``; ``None`` otherwise.
        y: targets ``[B, C]`` float32 — multi-hot for multi-label tags, one-hot for single-label classes
            (so mixup can blend them); ``None`` without labels.
        track: ``[B]`` int64 index of each crop's track in the training manifest.
        centre: ``[B]`` float32, centre of each view-1 crop in its track, seconds.
        centre2: ``[B]`` float32, centre of each view-2 crop, seconds (``None`` without pairs).
    """

    x: Tensor
    x2: Tensor | None = None
    y: Tensor | None = None
    track: Tensor | None = None
    centre: Tensor | None = None
    centre2: Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str, channels_last: bool = False) -> Batch:
        """The same batch with every tensor on ``device``; ``channels_last`` also lays out 4-D inputs
        (log-mel ``[B, 1, M, T]``) as NHWC, for encoders whose 2-D convolutions run faster so."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}

        def move(v: Tensor) -> Tensor:
            v = v.to(device)
            return v.contiguous(memory_format=torch.channels_last) if channels_last and v.ndim == 4 else v

        return replace(self, **{k: (move(v) if isinstance(v, Tensor) else v) for k, v in moved.items()})

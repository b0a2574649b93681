"""Time-span masking of an encoder's input and the log-mel frames the masked objectives predict.

Shared by ``masked`` (reconstruct the masked log-mel frames) and ``bestrq`` (predict codebook ids of
the masked frames). Takes the encoder's input ``x`` (standardised log-mel ``[B, 1, n_mels, T]`` or
waveform ``[B, S]``); gives :class:`MaskedInput`: the masked input, the UNmasked standardised log-mel
``[B, T, n_mels]`` (100 frames/s, the targets' source) and the frame mask ``[B, T]``.

Masking is in time spans, as BEST-RQ (Chiu et al. 2022; 400 ms spans) and the masked models MusicFM / MuQ
train: a masked log-mel frame is set to 0 (the standardised mean); for a waveform encoder the samples
nearest a masked frame are set to 0 and the targets are the log-mel of the clean waveform.

Encoders downsample time (``T_l`` output frames for ``T`` input frames, e.g. VGG small 3.125 Hz), so
output frame ``j`` is paired with a *group* of ``g`` consecutive input frames starting at
``floor(j·T/T_l)`` (:func:`frame_groups`), ``g = ceil(T / T_l) + 1`` measured on a 3 s crop so the group
always covers the frames between two output frames (:func:`group_size`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from musicrep.models.encoder import Encoder, SpectrogramInput

__all__ = ["MaskedInput", "SpanMasker", "frame_groups", "frame_owner", "group_size", "span_mask"]


class MaskedInput(NamedTuple):
    """``x``: masked encoder input (shape of the input); ``mel``: standardised log-mel of the clean input
    ``[B, T, n_mels]``; ``mask``: ``[B, T]`` bool, True where the frame was masked."""

    x: Tensor
    mel: Tensor
    mask: Tensor


def span_mask(batch: int, frames: int, ratio: float, span: int, generator: torch.Generator | None = None) -> Tensor:
    """Per-item mask ``[batch, frames]`` (bool) of ``round(ratio · frames / span)`` spans of ``span`` frames.

    Each item's time axis is cut into blocks of ``span`` frames at a random phase and the blocks to mask
    are drawn without replacement, so the masked fraction is ``ratio`` up to one block (neighbouring blocks
    merge into longer spans). Drawn on the CPU (torch's global RNG unless ``generator``), so the masks do
    not depend on the device.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    span = max(1, min(int(span), frames))
    phase = torch.randint(0, span, (batch, 1), generator=generator)
    block = (torch.arange(frames)[None, :] + phase) // span  # [B, T] block id of each frame
    n_blocks = block[:, -1:] + 1  # [B, 1]
    width = int(n_blocks.max())
    noise = torch.rand(batch, width, generator=generator)
    noise = noise.masked_fill(torch.arange(width)[None, :] >= n_blocks, float("inf"))  # no phantom blocks
    k = max(1, round(ratio * frames / span))
    chosen = noise.argsort(dim=1).argsort(dim=1) < k  # [B, width]: the k lowest-noise blocks
    return torch.gather(chosen, 1, block)


def group_size(encoder: Encoder, seconds: float = 3.0) -> int:
    """Input frames per output-frame group: ``ceil(T / T_l) + 1`` for a ``seconds`` crop (``T`` log-mel frames
    at 100 Hz in, ``T_l`` frames out of the last layer), measured by one no-grad forward of a silent crop
    in eval mode (declared frame rates are rounded, and some families pool their layers only later).
    The ``+ 1`` keeps shorter crops (patch models lose a partial patch) covered."""
    front = SpectrogramInput()
    samples = round(seconds * front.logmel.sample_rate)
    n_in = samples // front.logmel.hop_length + 1
    silent = torch.zeros(1, samples) if encoder.input_kind == "waveform" else torch.zeros(1, 1, front.logmel.n_mels, n_in)
    device = next(encoder.parameters()).device
    was_training = encoder.training
    try:
        encoder.eval()
        with torch.no_grad():
            n_out = encoder.forward_input(silent.to(device))[-1].shape[1]
    finally:
        encoder.train(was_training)
    return math.ceil(n_in / n_out) + 1


def frame_groups(n_in: int, n_out: int, group: int, device: torch.device | None = None) -> Tensor:
    """Input-frame indices ``[n_out, group]`` of each output frame's group: ``floor(j·n_in/n_out) + i``,
    clamped to the last frame."""
    start = (torch.arange(n_out, device=device) * n_in) // n_out
    return (start[:, None] + torch.arange(group, device=device)[None, :]).clamp(max=n_in - 1)


def frame_owner(n_in: int, n_out: int, group: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """For each input frame ``t``: the last output frame whose group starts at or before it, ``j``, and its
    place in that group, ``i = t − floor(j·n_in/n_out)``; two ``[n_in]`` long tensors, the inverse of
    :func:`frame_groups` whenever ``group ≥ ceil(n_in / n_out)`` (``i`` is clamped to ``group − 1``)."""
    start = (torch.arange(n_out, device=device) * n_in) // n_out
    t = torch.arange(n_in, device=device)
    j = torch.searchsorted(start, t, right=True) - 1
    return j, (t - start[j]).clamp(max=group - 1)


class SpanMasker:
    """Masks time spans of an encoder's input (see module docstring).

    Args:
        encoder: what will eat the masked input; its ``input_kind`` decides log-mel or waveform masking.
        ratio: fraction of log-mel frames masked, in (0, 1).
        span_seconds: span length (BEST-RQ: 0.4 s).
    """

    def __init__(self, encoder: Encoder, ratio: float, span_seconds: float) -> None:
        self.waveform = encoder.input_kind == "waveform"
        # a waveform encoder has no front-end; the targets are the log-mel any other encoder would see
        self.front = SpectrogramInput() if self.waveform else encoder.input
        self.n_mels = self.front.logmel.n_mels
        self.frame_rate = self.front.frame_rate
        self.hop = self.front.logmel.hop_length
        self.ratio = ratio
        self.span = max(1, round(span_seconds * self.frame_rate))

    def __call__(self, x: Tensor) -> MaskedInput:
        """``x`` (encoder input) → :class:`MaskedInput`."""
        if self.waveform:
            with torch.no_grad(), torch.autocast(x.device.type, enabled=False):  # targets in float32
                mel = self.front(x.float())[:, 0].transpose(1, 2)  # [B, T, n_mels]
            b, t = mel.shape[:2]
            mask = span_mask(b, t, self.ratio, self.span).to(x.device)
            nearest = ((torch.arange(x.shape[-1], device=x.device) + self.hop // 2) // self.hop).clamp(max=t - 1)
            return MaskedInput(x.masked_fill(mask[:, nearest], 0.0), mel, mask)
        mel = x[:, 0].transpose(1, 2)
        b, t = mel.shape[:2]
        mask = span_mask(b, t, self.ratio, self.span).to(x.device)
        return MaskedInput(x.masked_fill(mask[:, None, None, :], 0.0), mel, mask)

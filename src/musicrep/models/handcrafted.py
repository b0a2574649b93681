"""Handcrafted features: the ``mfcc``, ``chroma``, ``cqt`` representations, their ``*-stats`` twins, and the
same summaries as plain functions.

Representations (16 kHz audio ``[B, samples]`` → one layer):

* ``mfcc`` — 20 MFCCs + Δ + ΔΔ (60 values per frame), ``chroma`` — 12 bins (STFT chroma, librosa's
  ``chroma_stft``; ``chroma_kind="cqt"`` folds calibrated CQT power instead
  (:class:`musicrep.frontends.CQTChroma`), which resolves bass notes and is sharper for key),
  ``cqt`` — 84 log-CQT bands (C1–B7); all frame-level at 100 frames/s with librosa's centred framing, so a window of ``n``
  samples gives ``1 + n // 160`` frames (:meth:`n_frames`). Time statistics come for free: the
  evaluation stage averages every representation over the track timeline.
* ``chroma-cqt`` — the same as ``chroma`` with ``chroma_kind="cqt"`` (its own name and id); the chroma
  the zero-shot ``keyprofile`` probe reads (see :class:`musicrep.frontends.CQTChroma` for its scores).
* ``mfcc-stats``, ``chroma-stats``, ``cqt-stats`` — per-window mean and std over time of the same
  features (:func:`time_stats`), one frame per window: the classic "summary statistics" baseline, whose
  std half a timeline mean alone cannot give.

They have no parameters (``weights_checksum() == "none"``); the id changes only with the settings.

Summary functions (one clip, a 1-D float32 array + rate → ``(vector float32 [D], names list[str])``, so a
results table can say which feature a probe weight belongs to): per-band mean and standard deviation over
time of

* :func:`mfcc_stats` — 20 MFCCs and their Δ (80 values),
* :func:`chroma_stats` — 12-bin chroma (24 values),
* :func:`cqt_stats` — 84 log-CQT bands, C1–B7 (168 values),

and :func:`summary_features`, their concatenation (or any subset). They run the same batched front-ends
of :mod:`musicrep.frontends` and the same :func:`time_stats` as the ``*-stats`` representations, so a
vector computed here equals the one the representation embeds.

Example::

    >>> y = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    >>> v, names = chroma_stats(y, 16000)
    >>> names[int(np.argmax(v[:12]))]
    'chroma_A_mean'

Clips shorter than the front-end's window work (see :mod:`musicrep.frontends`: centred frames on a
zero-padded signal, deltas with a clamped width): a 50 ms clip gives 6 frames.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from musicrep.frontends import CQT, MFCC, Chroma, CQTChroma
from musicrep.models import register
from musicrep.models.base import Representation
from musicrep.theory import PITCH_CLASSES

__all__ = [
    "FEATURES",
    "Handcrafted",
    "chroma_stats",
    "cqt_stats",
    "frame_features",
    "mfcc_stats",
    "summary_features",
    "time_stats",
]


@lru_cache(maxsize=16)
def _frontend(kind: str, sr: int) -> nn.Module:
    """Front-ends are built once per (kind, rate): building one computes librosa filter banks."""
    if kind == "mfcc":
        return MFCC(n_mfcc=20, n_deltas=1, sample_rate=sr)
    if kind == "chroma":
        return Chroma(sample_rate=sr)
    if kind == "cqt":
        return CQT(sample_rate=sr, log=True)
    raise KeyError(f"unknown handcrafted feature {kind!r}; choose one of {sorted(FEATURES)}")


def _names(kind: str, n: int) -> list[str]:
    if kind == "mfcc":
        return [f"mfcc{i}" for i in range(20)] + [f"dmfcc{i}" for i in range(20)]
    if kind == "chroma":
        return [f"chroma_{p}" for p in PITCH_CLASSES]
    return [f"cqt_{PITCH_CLASSES[i % 12]}{1 + i // 12}" for i in range(n)]


def time_stats(feat: Tensor) -> Tensor:
    """``[B, D, T]`` → ``[B, 2D]``: per-band mean over time, then per-band (population) std over time."""
    return torch.cat([feat.mean(dim=-1), feat.std(dim=-1, unbiased=False)], dim=-1)


def frame_features(y: np.ndarray, sr: int, kind: str) -> np.ndarray:
    """Frame-level features ``[D, frames]`` (100 frames/s) of one clip: ``kind`` ∈ mfcc | chroma | cqt."""
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D (mono) signal, got shape {x.shape}")
    with torch.inference_mode():
        return _frontend(kind, int(sr))(torch.from_numpy(x))[0].numpy()


def _stats(kind: str, y: np.ndarray, sr: int) -> tuple[np.ndarray, list[str]]:
    feat = frame_features(y, sr, kind)
    vec = time_stats(torch.from_numpy(feat)[None])[0].numpy().astype(np.float32)
    base = _names(kind, feat.shape[0])
    return vec, [f"{n}_mean" for n in base] + [f"{n}_std" for n in base]


def mfcc_stats(y: np.ndarray, sr: int = 16_000) -> tuple[np.ndarray, list[str]]:
    """Mean and std over time of 20 MFCCs and their Δ (80 values)."""
    return _stats("mfcc", y, sr)


def chroma_stats(y: np.ndarray, sr: int = 16_000) -> tuple[np.ndarray, list[str]]:
    """Mean and std over time of the 12 chroma bins (24 values)."""
    return _stats("chroma", y, sr)


def cqt_stats(y: np.ndarray, sr: int = 16_000) -> tuple[np.ndarray, list[str]]:
    """Mean and std over time of 84 log-CQT bands, C1–B7 (168 values)."""
    return _stats("cqt", y, sr)


#: Registry of summary features by name.
FEATURES: dict[str, Callable[[np.ndarray, int], tuple[np.ndarray, list[str]]]] = {
    "mfcc": mfcc_stats,
    "chroma": chroma_stats,
    "cqt": cqt_stats,
}


def summary_features(y: np.ndarray, sr: int = 16_000,
                     which: tuple[str, ...] = ("mfcc", "chroma", "cqt")) -> tuple[np.ndarray, list[str]]:
    """Concatenate the named summary features (default all three: 272 values) with their names."""
    vecs, names = [], []
    for kind in which:
        if kind not in FEATURES:
            raise KeyError(f"unknown handcrafted feature {kind!r}; choose from {sorted(FEATURES)}")
        v, n = FEATURES[kind](y, sr)
        vecs.append(v)
        names += n
    return np.concatenate(vecs), names


# --------------------------------------------------------------------------- representations


def _build(kind: str, **kw: Any) -> nn.Module:
    if kind == "mfcc":
        return MFCC(n_mfcc=kw.get("n_mfcc", 20), n_deltas=kw.get("n_deltas", 2))
    if kind == "chroma":
        return CQTChroma(normalize=True) if kw.get("chroma_kind", "stft") == "cqt" else Chroma()
    if kind == "cqt":
        return CQT(log=True)
    raise KeyError(kind)


class Handcrafted(Representation):
    """A parameter-free front-end exposed as a one-layer representation (frame-level or window stats)."""

    sample_rate = 16_000
    window_seconds = 3.0

    def __init__(self, kind: str, stats: bool = False, size: str | None = None, seed: int | None = None,
                 weights: str | None = None, **settings: Any) -> None:
        # size/seed are accepted so callers can build every representation alike; a parameter-free
        # feature has one size and is its own "random twin", so both are ignored (and not in the id)
        if weights is not None:
            raise ValueError(f"{kind}: a handcrafted feature has no weights; drop weights={weights!r}")
        allowed = {"mfcc": {"n_mfcc", "n_deltas"}, "chroma": {"chroma_kind"}, "cqt": set()}[kind]
        bad = set(settings) - allowed
        if bad:
            raise ValueError(f"{kind}: unknown setting(s) {sorted(bad)}; allowed: {sorted(allowed) or 'none'}")
        if settings.get("chroma_kind", "stft") not in ("stft", "cqt"):
            raise ValueError(f"chroma: chroma_kind must be 'stft' or 'cqt', got {settings['chroma_kind']!r}")
        self.kind, self.stats, self.settings = kind, stats, settings
        if settings.get("chroma_kind") == "cqt":
            self.revision = 2  # 2: CQT chroma from longer, uncalibrated filters (tuning-robust for key)
        self.frontend = _build(kind, **settings)
        self.hop = int(round(self.sample_rate / self.frontend.frame_rate))
        with torch.inference_mode():
            dim = self.frontend(torch.zeros(1, self.sample_rate)).shape[1]
        self.name = (f"{kind}-cqt" if settings.get("chroma_kind") == "cqt" else kind) + ("-stats" if stats else "")
        if stats:
            self.frame_rate = 1.0 / self.window_seconds
            self.layer_names, self.layer_dims = ["stats"], [2 * dim]
        else:
            self.frame_rate = float(self.frontend.frame_rate)
            self.layer_names, self.layer_dims = ["frames"], [dim]

    def n_frames(self, n_samples: int) -> int:
        """``1`` for ``*-stats``; otherwise librosa's centred framing, ``1 + n_samples // 160``."""
        return 1 if self.stats else 1 + n_samples // self.hop

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "stats": self.stats, **self.settings}

    def embed(self, audio: Tensor) -> Tensor:
        feat = self.frontend(audio)  # [B, D, T]
        if self.stats:
            return time_stats(feat)[:, None, None, :]
        return feat.transpose(1, 2)[:, None]


register("chroma-cqt", family="handcrafted",
         description="12-bin chroma from calibrated CQT power per 10 ms frame (resolves bass; for key)")(
    lambda **kw: Handcrafted("chroma", chroma_kind="cqt", **kw))

for _kind, _desc in [("mfcc", "20 MFCC + Δ + ΔΔ per 10 ms frame"), ("chroma", "12-bin chroma per 10 ms frame"),
                     ("cqt", "84-band log-CQT (C1–B7) per 10 ms frame")]:
    register(_kind, family="handcrafted", description=_desc)(lambda _k=_kind, **kw: Handcrafted(_k, **kw))
    register(f"{_kind}-stats", family="handcrafted", description=f"mean and std over each window of {_kind}")(
        lambda _k=_kind, **kw: Handcrafted(_k, stats=True, **kw))

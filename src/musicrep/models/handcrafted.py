"""Handcrafted features as representations: ``mfcc``, ``chroma``, ``cqt`` and their ``*-stats`` twins.

Takes 16 kHz audio ``[B, samples]``; gives one layer:

* ``mfcc`` — 20 MFCCs + Δ + ΔΔ (60 values per frame), ``chroma`` — 12 bins (STFT chroma, librosa's
  ``chroma_stft``; ``chroma_kind="cqt"`` folds calibrated CQT power instead
  (:class:`musicrep.handcrafted.CQTChroma`), which resolves bass notes and is sharper for key),
  ``cqt`` — 84 log-CQT bands (C1–B7); all frame-level at 100 frames/s with librosa's centred framing, so a window of ``n``
  samples gives ``1 + n // 160`` frames (:meth:`n_frames`). Time statistics come for free: the
  evaluation stage averages every representation over the track timeline.
* ``chroma-cqt`` — the same as ``chroma`` with ``chroma_kind="cqt"`` (its own name and id); the chroma
  the zero-shot ``keyprofile`` probe reads (see :class:`musicrep.handcrafted.CQTChroma` for its scores).
* ``mfcc-stats``, ``chroma-stats``, ``cqt-stats`` — per-window mean and std over time of the same
  features (:func:`musicrep.handcrafted.time_stats`), one frame per window: the classic
  "summary statistics" baseline, whose std half a timeline mean alone cannot give.

They have no parameters (``weights_checksum() == "none"``); the id changes only with the settings.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from musicrep.frontends import CQT, MFCC, Chroma
from musicrep.handcrafted import CQTChroma, time_stats
from musicrep.models import register
from musicrep.models.base import Representation


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

"""Zero-shot key probe: key-profile correlation (Krumhansl–Schmuckler / Temperley) on chroma features.

Takes pitch-class features ``[L, N, H]`` whose first 12 values are a chroma vector (index 0 = C) —
the timeline mean of the ``chroma`` representation — and gives scores ``[L, 1, N, 24]``: the Pearson
correlation with every rotation of a major and a minor key profile, in :data:`musicrep.theory.KEYS`
order. Nothing is trained; the training split is ignored.

Why a probe and not a separate code path: the classical key estimator is the baseline every key
table needs, and as a probe it goes through the same store, selection, metrics and bootstrap CIs as
every learned probe, so its row in ``results.csv`` is directly comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from musicrep.estimators import KEY_PROFILES
from musicrep.probe.grids import ProbeConfig
from musicrep.kinds import Kind

__all__ = ["KeyProfile", "profile_matrix"]


def profile_matrix(profile: str = "krumhansl") -> torch.Tensor:
    """``[24, 12]`` zero-mean, unit-norm key templates (12 major rotations, then 12 minor)."""
    major, minor = (np.asarray(p, dtype=np.float64) for p in KEY_PROFILES[profile])
    rows = [np.roll(p, t) for p in (major, minor) for t in range(12)]
    m = np.stack(rows)
    m -= m.mean(axis=1, keepdims=True)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return torch.from_numpy(m.astype(np.float32))


class KeyProfile:
    """Correlate chroma with the 24 key templates; one config, no training."""

    mode = "select"

    def __init__(self, kind: Kind, x_train: torch.Tensor, y_train: torch.Tensor, configs: Sequence[ProbeConfig],
                 out_dim: int, profile: str = "krumhansl"):
        if kind.name != "key":
            raise ValueError(f"the keyprofile probe scores keys; task kind is {kind.name!r}")
        if x_train.shape[-1] < 12 or out_dim != 24:
            raise ValueError("the keyprofile probe needs 12 chroma features per layer and the 24-key vocabulary")
        self.n_layers = x_train.shape[0]
        self.templates = profile_matrix(profile)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_layers, 1

    def layer_weights(self) -> None:
        return None

    def take(self, l: int, c: int) -> KeyProfile:
        out = object.__new__(KeyProfile)
        out.n_layers, out.templates = 1, self.templates
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Pearson correlations ``[L, 1, N, 24]`` (flat chroma → all zeros, i.e. no evidence)."""
        c = x[..., :12].float()
        c = c - c.mean(dim=-1, keepdim=True)
        c = c / c.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return (c @ self.templates.T).unsqueeze(1)

"""Zero-shot key probe: key-profile correlation (Krumhansl–Schmuckler / Temperley) on chroma features.

Takes pitch-class features ``[L, N, H]`` whose first 12 values are a chroma vector (index 0 = C) —
the timeline mean of the ``chroma-cqt`` representation, whose filters are chosen for this (see
:class:`musicrep.frontends.CQTChroma`) — and gives scores ``[L, 1, N, 24]``: the Pearson correlation
with every rotation of a major and a minor key profile, in :data:`musicrep.theory.KEYS` order
(:func:`musicrep.theory.key_scores`). Nothing is trained; the training split is ignored.

Why a probe and not a separate code path: the classical key estimator is the baseline every key
table needs, and as a probe it goes through the same store, selection, metrics and bootstrap CIs as
every learned probe, so its row in ``results.csv`` is directly comparable. It is at least the textbook
recipe (librosa ``chroma_cqt`` averaged over time, Krumhansl–Kessler profiles, Pearson): on 240 Bach
chorale clips rendered with the OPL-3 FM SoundFont, MIREX 0.84 vs 0.83 (tests/test_probe_keyprofile.py
checks it against that recipe on detuned cadences).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from musicrep.probe.grids import ProbeConfig
from musicrep.kinds import Kind
from musicrep.theory import key_scores, key_templates

__all__ = ["KeyProfile"]


class KeyProfile:
    """Correlate chroma with the 24 key templates; one config, no training."""

    mode = "select"

    def __init__(self, kind: Kind, x_train: torch.Tensor, y_train: torch.Tensor, configs: Sequence[ProbeConfig],
                 out_dim: int, profile: str = "krumhansl"):
        if kind.name != "key":
            raise ValueError(f"the keyprofile probe scores keys; task kind is {kind.name!r}")
        if x_train.shape[-1] < 12 or out_dim != 24:
            raise ValueError("the keyprofile probe needs 12 chroma features per layer and the 24-key vocabulary")
        key_templates(profile)  # an unknown profile fails here, not at the first prediction
        self.n_layers, self.profile = x_train.shape[0], profile

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_layers, 1

    def layer_weights(self) -> None:
        return None

    def take(self, l: int, c: int) -> KeyProfile:
        out = object.__new__(KeyProfile)
        out.n_layers, out.profile = 1, self.profile
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Pearson correlations ``[L, 1, N, 24]`` (flat chroma → all zeros, i.e. no evidence)."""
        scores = key_scores(x[..., :12].double().numpy(), self.profile)  # [L, N, 24]
        return torch.from_numpy(scores).float().unsqueeze(1)

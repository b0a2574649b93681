"""Training-free probes: k-nearest neighbours and nearest class centroid, both by cosine similarity.

Takes standardised features ``[L, N, H]`` (one slice per scanned layer) and targets; gives a group with
the same interface as a trained :class:`~musicrep.probe.stacked.Stacked` stack — ``predict(x)`` returns
scores ``[L, C, N, K]`` for every (layer, config) — so search, k-fold and evaluation treat all probes
alike. Why these two: with very few labels a nearest-neighbour rule is a strong, hyper-parameter-light
baseline, and it measures the embedding geometry directly (no learned map in between).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from musicrep.probe.grids import ProbeConfig
from musicrep.kinds import Kind

__all__ = ["KNN", "Centroid"]


def _targets(kind: Kind, y: torch.Tensor, out_dim: int) -> torch.Tensor:
    """Targets as float ``[N, K]``: one-hot for classes, multi-hot or values otherwise."""
    if kind.loss == "ce":
        return F.one_hot(y, out_dim).float()
    return y.reshape(len(y), -1).float()


class KNN:
    """Cosine kNN; every ``k`` of the grid is one config, all answered from one top-k search.

    Scores are the neighbours' mean target (class vote fractions, label frequencies, or mean values).
    A tiny similarity-weighted term breaks voting ties toward the closer neighbours.
    """

    mode = "select"

    def __init__(self, kind: Kind, x_train: torch.Tensor, y_train: torch.Tensor, configs: Sequence[ProbeConfig],
                 out_dim: int):
        self.kind = kind
        self.z = F.normalize(x_train, dim=-1)  # [L, N, H]
        self.y = _targets(kind, y_train, out_dim)  # [N, K]
        self.ks = [min(c.k, x_train.shape[1]) for c in configs]

    @property
    def shape(self) -> tuple[int, int]:
        return self.z.shape[0], len(self.ks)

    def layer_weights(self) -> None:
        return None

    def take(self, l: int, c: int) -> KNN:
        out = object.__new__(KNN)
        out.kind, out.z, out.y, out.ks = self.kind, self.z[l:l + 1], self.y, [self.ks[c]]
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """Scores ``[L, C, N, K]`` (already probabilities / values: no output transform needed)."""
        kmax = max(self.ks)
        outs = []
        for s in range(0, x.shape[1], chunk):
            q = F.normalize(x[:, s:s + chunk], dim=-1)
            sims = torch.bmm(q, self.z.transpose(1, 2))  # [L, n, N]
            top, idx = sims.topk(kmax, dim=-1)
            ny = self.y[idx]  # [L, n, kmax, K]
            csum = ny.cumsum(2)
            wsum = (ny * top.unsqueeze(-1)).cumsum(2)
            per_k = [csum[:, :, k - 1] / k + 1e-6 * wsum[:, :, k - 1] / k for k in self.ks]
            outs.append(torch.stack(per_k, dim=1))  # [L, C, n, K]
        return torch.cat(outs, dim=2)


class Centroid:
    """Nearest class centroid by cosine similarity (one config: nothing to tune).

    Centroids are means of unit-normalised training embeddings. For multilabel tasks each label gets a
    positive and a negative centroid and the score is their similarity difference. Regression has no
    classes, so it is not supported.
    """

    mode = "select"

    def __init__(self, kind: Kind, x_train: torch.Tensor, y_train: torch.Tensor, configs: Sequence[ProbeConfig],
                 out_dim: int):
        if kind.loss == "mse":
            raise ValueError("the centroid probe needs classes; use linear, mlp or knn for regression")
        self.kind = kind
        z = F.normalize(x_train, dim=-1)  # [L, N, H]
        t = _targets(kind, y_train, out_dim)  # [N, K]
        pos = torch.einsum("lnh,nk->lkh", z, t) / t.sum(0).clamp(min=1).unsqueeze(-1)
        self.pos = F.normalize(pos, dim=-1)
        self.neg = None
        if kind.loss == "bce":
            neg = torch.einsum("lnh,nk->lkh", z, 1 - t) / (1 - t).sum(0).clamp(min=1).unsqueeze(-1)
            self.neg = F.normalize(neg, dim=-1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.pos.shape[0], 1

    def layer_weights(self) -> None:
        return None

    def take(self, l: int, c: int) -> Centroid:
        out = object.__new__(Centroid)
        out.kind, out.pos = self.kind, self.pos[l:l + 1]
        out.neg = None if self.neg is None else self.neg[l:l + 1]
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        q = F.normalize(x, dim=-1)
        s = torch.bmm(q, self.pos.transpose(1, 2))  # [L, N, K]
        if self.neg is not None:
            s = s - torch.bmm(q, self.neg.transpose(1, 2))
        return s.unsqueeze(1)

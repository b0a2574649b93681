"""Training-free probes: k-nearest neighbours (exact, or over a faiss index) and nearest class centroid, by cosine.

Takes standardised features ``[L, N, H]`` (one slice per scanned layer) and targets; gives a group with
the same interface as a trained :class:`~musicrep.probe.stacked.Stacked` stack — ``predict(x)`` returns
scores ``[L, C, N, K]`` for every (layer, config) — so search, k-fold and evaluation treat all probes
alike. Why these two: with very few labels a nearest-neighbour rule is a strong, hyper-parameter-light
baseline, and it measures the embedding geometry directly (no learned map in between). ``knn-index``
(:class:`IndexKNN`) asks the same question of a :class:`musicrep.search.Index` of the training items —
exact below 100k of them, approximate above — so the probe scales to training sets a dense ``[N, N]``
similarity would not fit; both score neighbours with :func:`neighbour_votes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from musicrep.probe.grids import ProbeConfig
from musicrep.kinds import Kind

__all__ = ["KNN", "IndexKNN", "Centroid", "neighbour_votes"]


def _targets(kind: Kind, y: torch.Tensor, out_dim: int) -> torch.Tensor:
    """Targets as float ``[N, K]``: one-hot for classes, multi-hot or values otherwise."""
    if kind.loss == "ce":
        return F.one_hot(y, out_dim).float()
    return y.reshape(len(y), -1).float()


def neighbour_votes(y: torch.Tensor, sims: torch.Tensor, idx: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """Scores ``[L, C, n, K]`` from each query's ``kmax`` nearest training items, one config per ``k`` in ``ks``.

    ``y``: training targets ``[N, K]``; ``sims`` / ``idx``: similarities and training rows of the
    neighbours, best first, ``[L, n, kmax]`` (a row of -1, an approximate search's missing neighbour,
    votes nothing). The score is the mean target of the ``k`` nearest (vote fractions, label
    frequencies, mean values), plus a 1e-6 similarity-weighted term so voting ties go to the closer
    neighbours.
    """
    found = (idx >= 0).unsqueeze(-1).to(y.dtype)
    ny = y[idx.clamp(min=0)] * found  # [L, n, kmax, K]
    csum = ny.cumsum(2)
    wsum = (ny * sims.unsqueeze(-1)).cumsum(2)
    return torch.stack([csum[:, :, k - 1] / k + 1e-6 * wsum[:, :, k - 1] / k for k in ks], dim=1)


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
            outs.append(neighbour_votes(self.y, top, idx, self.ks))  # [L, C, n, K]
        return torch.cat(outs, dim=2)


class IndexKNN:
    """Cosine kNN over a :class:`musicrep.search.Index` of the training items, one index per scanned layer.

    Scores as :class:`KNN` (:func:`neighbour_votes`); with fewer than
    :data:`musicrep.search.EXACT_BELOW` training items the index is exact, so the scores equal
    :class:`KNN`'s (up to the order of exactly tied neighbours). Needs faiss (the ``search`` extra).
    """

    mode = "select"

    def __init__(self, kind: Kind, x_train: torch.Tensor, y_train: torch.Tensor, configs: Sequence[ProbeConfig],
                 out_dim: int, index_kind: str = "auto"):
        from musicrep.search.index import Index  # faiss is optional: only this probe needs it

        self.kind = kind
        self.indexes = [Index.build(x_train[l].numpy(), metric="cosine", kind=index_kind) for l in range(x_train.shape[0])]
        self.y = _targets(kind, y_train, out_dim)  # [N, K]
        self.ks = [min(c.k, x_train.shape[1]) for c in configs]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indexes), len(self.ks)

    def layer_weights(self) -> None:
        return None

    def take(self, l: int, c: int) -> IndexKNN:
        out = object.__new__(IndexKNN)
        out.kind, out.indexes, out.y, out.ks = self.kind, self.indexes[l:l + 1], self.y, [self.ks[c]]
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``x [L, N, H]`` → scores ``[L, C, N, K]`` (probabilities / values: no output transform needed)."""
        kmax = max(self.ks)
        found = [index.search(x[l].numpy(), kmax) for l, index in enumerate(self.indexes)]
        sims = torch.from_numpy(np.stack([s for s, _ in found]))  # [L, N, kmax]
        idx = torch.from_numpy(np.stack([i for _, i in found]))
        return neighbour_votes(self.y, sims, idx, self.ks)


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

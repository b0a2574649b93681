"""Mixup within a batch (Zhang et al. 2018), as McCallum et al. 2022 apply it to log-mel during training.

Each item ``i`` is blended with item ``perm[i]`` of a random permutation of the batch, with its own gain
``λ_i ~ Beta(5, 2)`` (McCallum et al.: α = 5, β = 2, so the original dominates, mean gain 5/7):
``x ← λ·x + (1−λ)·x[perm]``; the second view ``x2`` and the targets ``y`` with the same ``λ`` and ``perm``.
Works on any input form (log-mel ``[B, 1, n_mels, T]`` — the paper's choice, additive on spectrograms for
speed though sources do not add there — or waveform ``[B, S]``). ``track``/``centre`` keep view 1's
(the dominant item's) values.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from musicrep.train.batch import Batch

__all__ = ["ALPHA", "BETA", "mix", "mixup", "mixup_draw"]

#: Beta parameters of the mixup gain (McCallum et al. 2022)
ALPHA, BETA = 5.0, 2.0


def as_numpy_rng(generator: np.random.Generator | torch.Generator | int) -> np.random.Generator:
    """A numpy generator from a numpy generator (used as is), a torch generator (advanced by one draw)
    or an int seed."""
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
    return np.random.default_rng(int(generator))


def mixup_draw(n: int, generator: np.random.Generator | torch.Generator | int,
               alpha: float = ALPHA, beta: float = BETA) -> tuple[Tensor, Tensor]:
    """Gains ``λ [n]`` float32 ~ Beta(alpha, beta) and a permutation ``[n]`` int64 of the batch."""
    rng = as_numpy_rng(generator)
    lam = torch.from_numpy(rng.beta(alpha, beta, size=n).astype(np.float32))
    perm = torch.from_numpy(rng.permutation(n).astype(np.int64))
    return lam, perm


def mix(batch: Batch, lam: Tensor, perm: Tensor) -> Batch:
    """``batch`` with ``x``, ``x2`` and ``y`` replaced by ``λ·v + (1−λ)·v[perm]`` (``lam``, ``perm``: ``[B]``);
    an item with ``λ = 1`` is returned bit for bit."""

    def blend(v: Tensor | None) -> Tensor | None:
        if v is None:
            return None
        g = lam.to(device=v.device, dtype=v.dtype).reshape(-1, *([1] * (v.dim() - 1)))
        return g * v + (1 - g) * v[perm.to(v.device)]

    return replace(batch, x=blend(batch.x), x2=blend(batch.x2), y=blend(batch.y))


def mixup(batch: Batch, generator: np.random.Generator | torch.Generator | int,
          alpha: float = ALPHA, beta: float = BETA) -> Batch:
    """Mixup of ``batch`` with gains ~ Beta(alpha, beta) and a permutation drawn from ``generator``
    (deterministic for a given generator state; see :func:`mix`)."""
    lam, perm = mixup_draw(len(batch), generator, alpha, beta)
    return mix(batch, lam, perm)

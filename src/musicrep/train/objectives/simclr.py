"""SimCLR: NT-Xent between two views of the same tracks, the rest of the batch as negatives.

Sources: Chen et al. 2020 (SimCLR, NT-Xent), McCallum et al. 2022 (music: positives are two 3 s crops of
one track with centres < 5 s apart — the data side draws them into ``batch.x``/``batch.x2`` —, τ = 0.1,
projector of 3 × 4096 hidden ReLU layers onto a 1024-d loss space; the defaults here are narrower so a CPU
trains it).

Both views go through the encoder as ONE batch ``[2B, ...]`` (one forward, batch-norm statistics over
both views). The last layer, averaged over time ``[2B, H]``, is projected to ``[2B, out_dim]`` and fed to
:func:`nt_xent`. Under ``torch.distributed`` with more than one process the projections of every rank are
gathered WITH gradient, so each anchor's negatives are the global batch and the DDP-averaged gradient is
the gradient of the global-batch loss; a single-process run never calls into ``torch.distributed``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from musicrep.models.encoder import Encoder
from musicrep.train.batch import Batch
from musicrep.train.objectives.base import (
    Objective,
    ObjectiveConfig,
    logs,
    mlp,
    register,
)

__all__ = ["GatherWithGrad", "SimCLR", "SimCLRConfig", "gather_with_grad", "nt_xent"]


def distributed_world() -> int:
    """Number of processes of the initialised default group; 1 when torch.distributed is unused."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class GatherWithGrad(torch.autograd.Function):
    """All-gather ``[B, D]`` → ``[W·B, D]`` whose backward sums every rank's gradient of the gathered
    tensor and hands each rank the rows it contributed (so every rank's loss trains every encoder)."""

    @staticmethod
    def forward(ctx: Any, v: Tensor) -> Tensor:
        dist = torch.distributed
        parts = [torch.empty_like(v) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, v.contiguous())
        ctx.rows = (dist.get_rank() * v.shape[0], v.shape[0])
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        torch.distributed.all_reduce(grad)  # Σ over ranks of ∂L_rank/∂(gathered)
        start, n = ctx.rows
        return grad[start:start + n]


def gather_with_grad(v: Tensor) -> tuple[Tensor, int]:
    """Every rank's ``v [B, D]`` concatenated ``[W·B, D]`` (rank order) and this rank's row offset.

    Gradients flow back to each rank's own rows (:class:`GatherWithGrad`); with one process ``v`` is
    returned as is and torch.distributed is never called. Every rank must pass the same ``B``.
    """
    if distributed_world() == 1:
        return v, 0
    return GatherWithGrad.apply(v), torch.distributed.get_rank() * v.shape[0]


def nt_xent(v1: Tensor, v2: Tensor, temperature: float = 0.1) -> tuple[Tensor, Tensor]:
    """Normalised temperature-scaled cross-entropy of Chen et al. 2020 (their eq. 1, averaged over all 2N
    anchors).

    ``v1``, ``v2``: projections ``[B, D]`` of view 1 and view 2 (row ``i`` of each from the same track).
    Cosine similarities ``s`` divided by ``temperature``; for anchor ``i`` of view 1 the positive is ``v2[i]``,
    the candidates are all 2N views but itself (N = the global batch when distributed, see
    :func:`gather_with_grad`). Returns ``(loss, top-1 accuracy of finding the positive)`` (scalars).
    """
    v1 = F.normalize(v1.float(), dim=1)
    v2 = F.normalize(v2.float(), dim=1)
    k1, offset = gather_with_grad(v1)
    k2, _ = gather_with_grad(v2)
    b, n = v1.shape[0], k1.shape[0]
    queries = torch.cat([v1, v2])  # [2B, D]
    keys = torch.cat([k1, k2])  # [2N, D]: view 1 of everyone, then view 2
    logits = queries @ keys.T / temperature  # [2B, 2N]
    own = offset + torch.arange(b, device=v1.device)
    self_idx = torch.cat([own, own + n])
    pos_idx = torch.cat([own + n, own])
    logits = logits.masked_fill(F.one_hot(self_idx, 2 * n).bool(), float("-inf"))  # 1[k != i]
    loss = F.cross_entropy(logits, pos_idx)
    acc = (logits.argmax(dim=1) == pos_idx).float().mean()
    return loss, acc


class SimCLRConfig(ObjectiveConfig):
    temperature: float = Field(0.1, gt=0, description="NT-Xent temperature τ (McCallum et al.: 0.1)")
    hidden: int = Field(256, ge=1, description="projector hidden width (paper: 4096)")
    layers: int = Field(3, ge=0, description="projector hidden ReLU layers (paper: 3)")
    out_dim: int = Field(128, ge=1, description="loss-space dimension (paper: 1024)")


@register
class SimCLR(Objective):
    """NT-Xent on projected clip embeddings of two views (see module docstring)."""

    name = "simclr"
    Config = SimCLRConfig
    needs_pairs = True
    cfg: SimCLRConfig

    def __init__(self, encoder: Encoder, n_classes: int | None = None, **cfg: Any) -> None:
        super().__init__(encoder, n_classes, **cfg)
        self.projector = mlp(encoder.layer_dims[-1], self.cfg.hidden, self.cfg.layers, self.cfg.out_dim)

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """``batch.x``, ``batch.x2`` ``[B, ...]`` → (loss, {"loss", "acc"})."""
        self.check(batch)
        assert batch.x2 is not None
        b = batch.x.shape[0]
        z = self.encoder.forward_input(torch.cat([batch.x, batch.x2]))[-1].mean(dim=1)  # [2B, H]
        v = self.projector(z)
        loss, acc = nt_xent(v[:b], v[b:], self.cfg.temperature)
        return loss, logs(loss=loss, acc=acc)

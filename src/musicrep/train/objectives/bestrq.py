"""BEST-RQ: predict, at masked output frames, the codebook id of a frozen random projection of the input.

Source: Chiu et al. 2022 (BERT-based Speech pre-Training with Random-projection Quantizer), as the music
models MusicFM and MuQ pretrain. Targets: for each encoder output frame ``j`` the ``g`` log-mel frames of
its group (``masking.frame_groups``; the clean, standardised input) are stacked ``[g·n_mels]``, projected
by a frozen random matrix ``[g·n_mels, codebook_dim]`` (Xavier-normal), l2-normalised and matched to the
nearest of ``codebook_size`` frozen l2-normalised random codewords (cosine) → ids ``[B, T_l]`` at the
encoder's output frame rate. The input is masked in time spans (``masking.SpanMasker``); a linear head on
the last layer gives logits ``[B, T_l, codebook_size]`` and the loss is cross-entropy on the output frames
whose group is at least half masked.

The projection and codebook are buffers drawn from ``seed`` with a private generator: never trained,
identical for the same seed whatever the global RNG, and saved in the state dict, so a resumed run keeps
its targets.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from musicrep.models.encoder import Encoder
from musicrep.train.batch import Batch
from musicrep.train.objectives.base import Objective, ObjectiveConfig, logs, register
from musicrep.train.objectives.masking import SpanMasker, frame_groups, group_size

__all__ = ["BestRQ", "BestRQConfig"]


class BestRQConfig(ObjectiveConfig):
    codebook_size: int = Field(1024, ge=2, le=65536, description="codewords (Chiu et al.: 8192; MusicFM: 4096)")
    codebook_dim: int = Field(16, ge=1, description="codeword dimension (Chiu et al.: 16)")
    mask_ratio: float = Field(0.5, gt=0, lt=1, description="fraction of input frames masked")
    span_seconds: float = Field(0.4, gt=0, description="masked span length, seconds (Chiu et al.: 0.4)")
    seed: int = Field(0, description="seed of the frozen projection and codebook")


@register
class BestRQ(Objective):
    """Random-projection quantiser targets + masked prediction (see module docstring)."""

    name = "bestrq"
    Config = BestRQConfig
    cfg: BestRQConfig
    projection: Tensor
    codebook: Tensor

    def __init__(self, encoder: Encoder, n_classes: int | None = None, **cfg: Any) -> None:
        super().__init__(encoder, n_classes, **cfg)
        c = self.cfg
        self.masker = SpanMasker(encoder, c.mask_ratio, c.span_seconds)
        self.group = group_size(encoder)
        in_dim = self.group * self.masker.n_mels
        gen = torch.Generator().manual_seed(int(c.seed))
        proj = torch.randn(in_dim, c.codebook_dim, generator=gen) * (2.0 / (in_dim + c.codebook_dim)) ** 0.5
        book = F.normalize(torch.randn(c.codebook_size, c.codebook_dim, generator=gen), dim=1)
        self.register_buffer("projection", proj)
        self.register_buffer("codebook", book)
        self.head = nn.Linear(encoder.layer_dims[-1], c.codebook_size)

    @torch.no_grad()
    def targets(self, mel: Tensor, n_out: int) -> Tensor:
        """Codebook ids ``[B, n_out]`` of log-mel ``mel [B, T, n_mels]`` grouped for ``n_out`` output frames."""
        b, t, m = mel.shape
        idx = frame_groups(t, n_out, self.group, mel.device)  # [n_out, g]
        # float32 even under bf16 autocast: the targets must not depend on the training precision
        with torch.autocast(mel.device.type, enabled=False):
            stacked = mel.float()[:, idx].reshape(b, n_out, self.group * m)
            z = F.normalize(stacked @ self.projection, dim=-1)
            return (z @ self.codebook.T).argmax(dim=-1)

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """``batch.x`` ``[B, ...]`` → (loss, {"loss", "acc"}): CE on masked output frames."""
        mi = self.masker(batch.x)
        h = self.encoder.forward_input(mi.x)[-1]  # [B, T_l, H]
        t_l, n_in = h.shape[1], mi.mel.shape[1]
        target = self.targets(mi.mel, t_l)
        idx = frame_groups(n_in, t_l, self.group, h.device)
        out_mask = mi.mask.float()[:, idx].mean(dim=-1) >= 0.5  # [B, T_l]
        logits = self.head(h).float()  # [B, T_l, K]
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # [B, T_l]
        m = out_mask.float()
        loss = (ce * m).sum() / m.sum().clamp(min=1.0)
        acc = ((logits.argmax(dim=-1) == target).float() * m).sum() / m.sum().clamp(min=1.0)
        return loss, logs(loss=loss, acc=acc)

"""Masked reconstruction of log-mel: the TMAE of the limited-data paper, and its analogue for other encoders.

Sources: He et al. 2022 (MAE: encode only the visible patches, a light decoder with mask tokens, MSE on
the masked patches only, 75 % masked); the TMAE of the limited-data study (MAE on log-mel patches).

Two paths, chosen by the encoder:

* **patches** (an encoder with ``forward_masked`` / ``patch_targets``, i.e. ``tmae``): the encoder sees
  ``1 − mask_ratio`` of its non-overlapping log-mel patches; :class:`PatchDecoder` (mask tokens, fixed
  time + learned frequency positions, ``decoder_depth`` transformer blocks) predicts every patch
  ``[B, N, patch_f·patch_t]``; MSE on the masked patches.
* **spans** (every other encoder, log-mel or waveform): time spans of the input are masked
  (:class:`~musicrep.train.objectives.masking.SpanMasker`; 0 = the standardised mean, or silent samples
  for a waveform), and from the last layer ``[B, T_l, H]`` an MLP predicts, for each output frame, the
  ``g`` log-mel frames of its group ``[B, T_l, g, n_mels]``; each input frame takes the prediction of the
  group that owns it and the MSE is over the masked frames only. A waveform encoder predicts the log-mel
  of its clean input.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from musicrep.models.encoder import Encoder, sinusoidal
from musicrep.train.batch import Batch
from musicrep.train.objectives.base import Objective, ObjectiveConfig, logs, register
from musicrep.train.objectives.masking import SpanMasker, frame_owner, group_size

__all__ = ["Masked", "MaskedConfig", "PatchDecoder", "masked_mse"]


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the masked positions only.

    ``pred``, ``target``: ``[B, N, D]``; ``mask``: ``[B, N]`` (1/True = masked). Each masked position's
    squared error is averaged over ``D``, then over the masked positions; unmasked positions do not enter
    (nor their gradient). No masked position → 0 (keeping the graph).
    """
    m = mask.to(pred.dtype)
    per_pos = (pred.float() - target.float()).square().mean(dim=-1)  # [B, N]
    return (per_pos * m).sum() / m.sum().clamp(min=1.0)


class PatchDecoder(nn.Module):
    """MAE decoder: visible latents ``[B, K, D_enc]`` + ``ids_restore`` ``[B, N]`` → patches ``[B, N, P]``.

    Token order is frequency-major (``f·T_p + t``) as in ``TMAE.patch_targets``; positions are fixed
    sinusoids over time (any length) plus a learned table over the ``n_fpatch`` frequency rows.
    """

    def __init__(self, enc_dim: int, dim: int, depth: int, heads: int, n_fpatch: int, patch_dim: int) -> None:
        super().__init__()
        self.n_fpatch = n_fpatch
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.freq_pos = nn.Parameter(torch.randn(n_fpatch, dim) * 0.02)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(depth)
        ])
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, patch_dim)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, latent: Tensor, ids_restore: Tensor) -> Tensor:
        b, k, _ = latent.shape
        n = ids_restore.shape[1]
        z = self.embed(latent)
        d = z.shape[-1]
        z = torch.cat([z, self.mask_token.expand(b, n - k, d)], dim=1)
        z = torch.gather(z, 1, ids_restore[..., None].expand(-1, -1, d))  # back to patch order
        t_p = n // self.n_fpatch
        pos = self.freq_pos[:, None, :] + sinusoidal(t_p, d, z.device)[None]  # [F_p, T_p, d]
        z = z + pos.reshape(1, n, d)
        for blk in self.blocks:
            z = blk(z)
        return self.out(self.norm(z))


class MaskedConfig(ObjectiveConfig):
    mask_ratio: float | None = Field(None, gt=0, lt=1, description="fraction masked; default 0.75 of the "
                                     "patches for tmae (He et al.), 0.5 of the frames in spans otherwise")
    span_seconds: float = Field(0.4, gt=0, description="masked span length, seconds (spans path)")
    decoder_dim: int = Field(64, ge=1, description="decoder width (patches path)")
    decoder_depth: int = Field(1, ge=0, description="decoder transformer blocks (patches path)")
    decoder_heads: int = Field(4, ge=1, description="decoder attention heads (patches path)")
    hidden: int = Field(256, ge=1, description="hidden width of the frame predictor (spans path)")
    norm_targets: bool = Field(False, description="standardise each target patch/frame (MAE's norm_pix_loss)")


@register
class Masked(Objective):
    """Masked log-mel reconstruction, patches for TMAE, time spans otherwise (see module docstring)."""

    name = "masked"
    Config = MaskedConfig
    cfg: MaskedConfig

    def __init__(self, encoder: Encoder, n_classes: int | None = None, **cfg: Any) -> None:
        super().__init__(encoder, n_classes, **cfg)
        self.patches = hasattr(encoder, "forward_masked") and hasattr(encoder, "patch_targets")
        c = self.cfg
        if self.patches:
            self.ratio = 0.75 if c.mask_ratio is None else c.mask_ratio
            ecfg = encoder.cfg
            self.decoder = PatchDecoder(encoder.layer_dims[-1], c.decoder_dim, c.decoder_depth, c.decoder_heads,
                                        encoder.n_fpatch, ecfg.patch_f * ecfg.patch_t)
        else:
            self.ratio = 0.5 if c.mask_ratio is None else c.mask_ratio
            self.masker = SpanMasker(encoder, self.ratio, c.span_seconds)
            self.group = group_size(encoder)
            self.n_mels = self.masker.n_mels
            h = encoder.layer_dims[-1]
            self.predictor = nn.Sequential(nn.Linear(h, c.hidden), nn.GELU(), nn.Linear(c.hidden, self.group * self.n_mels))

    def targets(self, t: Tensor) -> Tensor:
        if not self.cfg.norm_targets:
            return t
        return (t - t.mean(dim=-1, keepdim=True)) / (t.var(dim=-1, keepdim=True) + 1e-6).sqrt()

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """``batch.x`` ``[B, ...]`` → (loss, {"loss"}); MSE on masked patches / frames only."""
        x = batch.x
        if self.patches:
            latent, mask, ids_restore = self.encoder.forward_masked(x, self.ratio)  # type: ignore[operator]
            pred = self.decoder(latent, ids_restore)  # [B, N, P]
            loss = masked_mse(pred, self.targets(self.encoder.patch_targets(x)), mask)  # type: ignore[operator]
            return loss, logs(loss=loss)
        mi = self.masker(x)
        h = self.encoder.forward_input(mi.x)[-1]  # [B, T_l, H]
        b, t_l, _ = h.shape
        n_in = mi.mel.shape[1]
        pred = self.predictor(h).view(b, t_l, self.group, self.n_mels)
        j, i = frame_owner(n_in, t_l, self.group, h.device)
        pred_frames = pred[:, j, i]  # [B, T, n_mels]: each input frame from the group that owns it
        loss = masked_mse(pred_frames, self.targets(mi.mel), mi.mask)
        return loss, logs(loss=loss)

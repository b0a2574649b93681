"""Patch transformers on log-mel: AST (Gong et al.) and the encoder of a masked autoencoder (TMAE).

Takes 16 kHz audio ``[B, samples]``; cuts the standardised log-mel (96 × frames) into ``patch_f × patch_t``
patches (AST: overlapping, stride 10; TMAE: non-overlapping, as MAE needs), embeds them, adds position
codes and runs a pre-norm transformer. Layers: ``embed`` (patch embedding + positions) and one per
transformer block; each layer's tokens ``[B, F_p, T_p, D]`` are averaged over the frequency patches, giving
``[B, T_p, D]``. The last block's output passes through the final LayerNorm (the one probes usually read).

Position codes are fixed sinusoids over time plus a learned table over the (fixed) frequency-patch axis,
so the models run on any input length (3 s windows, 10 s clips) without interpolating a table.

:class:`TMAE` adds :meth:`TMAE.forward_masked` — patchify, randomly keep ``1 - mask_ratio`` of the
tokens per item, encode only those — and :meth:`TMAE.patch_targets`, the pieces a masked-reconstruction
objective (``musicrep.train.objectives``) needs; the decoder lives with that objective.

Frame rate: patches start every ``stride_t`` log-mel frames (100 Hz / stride_t); :attr:`frame_rate` is
that rate rounded down to a whole number of Hz (AST: time stride 10 → 10 Hz; TMAE: 16 → 6 Hz) and layers are average-pooled to
``round(seconds · frame_rate)`` frames. Sizes: ``small`` D=64, 4 blocks (≈0.2 M parameters); ``paper``
ViT-Base, D=768, 12 blocks, 12 heads (85 M).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.encoder import Encoder, EncoderConfig, SpectrogramInput, sinusoidal


class PatchTransformerConfig(EncoderConfig):
    dim: int = Field(description="token width D")
    depth: int = Field(description="transformer blocks (one layer each)")
    heads: int = Field(description="attention heads")
    mlp_ratio: float = Field(4.0, description="feed-forward width / D")
    patch_f: int = Field(16, description="patch height in mel bands")
    patch_t: int = Field(16, description="patch width in frames")
    stride_f: int = Field(16, description="patch hop along frequency")
    stride_t: int = Field(16, description="patch hop along time")
    n_mels: int = Field(96, description="log-mel bands of the input")


class PatchTransformer(Encoder):
    """Shared body of :class:`AST` and :class:`TMAE` (see module docstring)."""

    Config = PatchTransformerConfig

    def build(self, cfg: PatchTransformerConfig) -> None:
        if cfg.dim % cfg.heads:
            raise ValueError(f"{self.name}: dim={cfg.dim} must be divisible by heads={cfg.heads}")
        self.input = SpectrogramInput(cfg.n_mels)
        self.patch = nn.Conv2d(1, cfg.dim, (cfg.patch_f, cfg.patch_t), stride=(cfg.stride_f, cfg.stride_t))
        self.n_fpatch = (cfg.n_mels - cfg.patch_f) // cfg.stride_f + 1
        self.freq_pos = nn.Parameter(torch.randn(self.n_fpatch, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio), dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(cfg.depth)
        ])
        self.norm = nn.LayerNorm(cfg.dim)
        self.frame_rate = float(math.floor(self.input.frame_rate / cfg.stride_t))
        self.layer_names = ["embed"] + [f"block{i + 1}" for i in range(cfg.depth)]
        self.layer_dims = [cfg.dim] * (cfg.depth + 1)

    def tokens(self, x: Tensor) -> Tensor:
        """Standardised log-mel ``[B, 1, n_mels, frames]`` (:meth:`prepare`) → embedded patches with
        positions, ``[B, F_p, T_p, D]``."""
        if x.shape[-1] < self.cfg.patch_t:  # shorter than one patch: pad with silence (0 after standardising)
            x = nn.functional.pad(x, (0, self.cfg.patch_t - x.shape[-1]))
        z = self.patch(x).permute(0, 2, 3, 1)  # [B, F_p, T_p, D]
        return z + self.freq_pos[None, :, None, :] + sinusoidal(z.shape[2], z.shape[3], z.device)[None, None]

    def _layers(self, z: Tensor) -> list[Tensor]:
        b, f, t, d = z.shape
        x = z.reshape(b, f * t, d)
        out = [z.mean(dim=1)]
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            y = self.norm(x) if i == len(self.blocks) - 1 else x
            out.append(y.reshape(b, f, t, d).mean(dim=1))
        return out

    def forward_input(self, x: Tensor) -> list[Tensor]:
        return self._layers(self.tokens(x))

    def layer_blocks(self) -> list[tuple[str, ...]]:
        # the final LayerNorm acts only on the last block's output (see _layers), so it is that block's
        last = len(self.blocks) - 1
        return [("patch", "freq_pos")] + [(f"blocks.{i}",) + (("norm",) if i == last else ()) for i in range(last + 1)]


class AST(PatchTransformer):
    """Audio Spectrogram Transformer: overlapping 16×16 patches (stride 10 at paper size)."""

    name = "ast"
    sizes = {
        "small": {"dim": 64, "depth": 4, "heads": 4, "stride_f": 16, "stride_t": 10},
        "paper": {"dim": 768, "depth": 12, "heads": 12, "stride_f": 10, "stride_t": 10},
    }


class TMAE(PatchTransformer):
    """Transformer encoder of a masked autoencoder on non-overlapping log-mel patches."""

    name = "tmae"
    sizes = {
        "small": {"dim": 64, "depth": 4, "heads": 4},
        "paper": {"dim": 768, "depth": 12, "heads": 12},
    }

    def build(self, cfg: PatchTransformerConfig) -> None:
        if (cfg.stride_f, cfg.stride_t) != (cfg.patch_f, cfg.patch_t):
            raise ValueError("tmae: patches must not overlap (stride_f == patch_f and stride_t == patch_t)")
        super().build(cfg)

    def patch_targets(self, x: Tensor) -> Tensor:
        """Reconstruction targets: the patches of the standardised log-mel ``x [B, 1, n_mels, frames]``
        (:meth:`prepare`), ``[B, F_p·T_p, patch_f·patch_t]``."""
        pf, pt = self.cfg.patch_f, self.cfg.patch_t
        f_p, t_p = self.n_fpatch, x.shape[-1] // pt
        x = x[:, 0, : f_p * pf, : t_p * pt].reshape(x.shape[0], f_p, pf, t_p, pt)
        return x.permute(0, 1, 3, 2, 4).reshape(x.shape[0], f_p * t_p, pf * pt)

    def forward_masked(self, x: Tensor, mask_ratio: float = 0.75,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Encode a random ``1 - mask_ratio`` subset of the patches of ``x [B, 1, n_mels, frames]`` per item.

        Returns ``(latent [B, N_keep, D], mask [B, N] (1 = masked), ids_restore [B, N])``, token order
        frequency-major as in :meth:`patch_targets`; ``ids_restore`` un-shuffles decoder inputs.
        """
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        z = self.tokens(x)
        b, f, t, d = z.shape
        x = z.reshape(b, f * t, d)
        n = f * t
        keep = max(1, int(round(n * (1 - mask_ratio))))
        noise = torch.rand(b, n, generator=generator, device=x.device)
        ids_shuffle = noise.argsort(dim=1)
        ids_restore = ids_shuffle.argsort(dim=1)
        x = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
        for blk in self.blocks:
            x = blk(x)
        mask = torch.ones(b, n, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return self.norm(x), mask, ids_restore


@register("ast", family="transformer", description="Audio Spectrogram Transformer (patch transformer on log-mel)")
def _ast(**cfg: object) -> AST:
    return AST(**cfg)  # type: ignore[arg-type]


@register("tmae", family="transformer", description="Transformer encoder of a masked autoencoder on log-mel patches")
def _tmae(**cfg: object) -> TMAE:
    return TMAE(**cfg)  # type: ignore[arg-type]

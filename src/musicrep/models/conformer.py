"""Conformer on log-mel in the style of MusicFM / MuQ: audio ``[B, samples]`` → one layer per block.

A 2-layer strided conv subsampler turns the standardised 100 Hz log-mel into 25 Hz tokens (×4 in time
and frequency, flattened and projected to D), sinusoidal positions are added, and ``depth`` Conformer
blocks follow (Gulati et al.): ½ feed-forward → multi-head self-attention → convolution module
(pointwise-GLU, depthwise conv, batch norm, Swish, pointwise) → ½ feed-forward → LayerNorm, all with
pre-norm residuals. Layers: ``subsample`` plus every block's output, ``[B, T, D]`` at 25 Hz — the token
rate of MusicFM and MuQ, whose layer-wise probes this reproduces.

Sizes: ``small`` D=64, 4 blocks (≈0.3 M parameters, trains on a laptop); ``paper`` the MusicFM/MuQ
large body, D=1024, 12 blocks, 16 heads, FFN 4096, kernel 31 (297 M). :attr:`frame_rate` = 25 Hz,
3 s → 75 frames.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.encoder import Encoder, EncoderConfig, SpectrogramInput, sinusoidal


class ConformerConfig(EncoderConfig):
    dim: int = Field(description="model width D")
    depth: int = Field(description="Conformer blocks (one layer each)")
    heads: int = Field(description="attention heads")
    ff_dim: int = Field(description="feed-forward hidden width")
    kernel: int = Field(description="depthwise conv kernel (frames at 25 Hz)")
    sub_channels: int = Field(description="channels of the conv subsampler")
    n_mels: int = Field(96, description="log-mel bands of the input")


class _FeedForward(nn.Sequential):
    def __init__(self, d: int, h: int) -> None:
        super().__init__(nn.LayerNorm(d), nn.Linear(d, h), nn.SiLU(), nn.Linear(h, d))


class _ConvModule(nn.Module):
    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.dw = nn.Conv1d(d, d, k, padding=k // 2, groups=d)
        self.bn = nn.BatchNorm1d(d)
        self.pw2 = nn.Conv1d(d, d, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(x).transpose(1, 2)
        y = nn.functional.glu(self.pw1(y), dim=1)
        y = nn.functional.silu(self.bn(self.dw(y)))
        return self.pw2(y).transpose(1, 2)


class ConformerBlock(nn.Module):
    """Macaron Conformer block (FFN/2, MHSA, conv, FFN/2, LayerNorm)."""

    def __init__(self, d: int, heads: int, ff: int, k: int) -> None:
        super().__init__()
        self.ff1 = _FeedForward(d, ff)
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.conv = _ConvModule(d, k)
        self.ff2 = _FeedForward(d, ff)
        self.out_norm = nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        x = x + 0.5 * self.ff1(x)
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.conv(x)
        x = x + 0.5 * self.ff2(x)
        return self.out_norm(x)


class Conformer(Encoder):
    """MusicFM/MuQ-style Conformer encoder (see module docstring)."""

    name = "conformer"
    Config = ConformerConfig
    sizes = {
        "small": {"dim": 64, "depth": 4, "heads": 4, "ff_dim": 128, "kernel": 15, "sub_channels": 32},
        "paper": {"dim": 1024, "depth": 12, "heads": 16, "ff_dim": 4096, "kernel": 31, "sub_channels": 256},
    }

    def build(self, cfg: ConformerConfig) -> None:
        if cfg.dim % cfg.heads:
            raise ValueError(f"conformer: dim={cfg.dim} must be divisible by heads={cfg.heads}")
        self.input = SpectrogramInput(cfg.n_mels)
        c = cfg.sub_channels
        self.subsample = nn.Sequential(nn.Conv2d(1, c, 3, stride=2, padding=1), nn.SiLU(),
                                       nn.Conv2d(c, c, 3, stride=2, padding=1), nn.SiLU())
        f_out = ((cfg.n_mels + 1) // 2 + 1) // 2
        self.proj = nn.Linear(c * f_out, cfg.dim)
        self.blocks = nn.ModuleList([ConformerBlock(cfg.dim, cfg.heads, cfg.ff_dim, cfg.kernel)
                                     for _ in range(cfg.depth)])
        self.frame_rate = self.input.frame_rate / 4
        self.layer_names = ["subsample"] + [f"block{i + 1}" for i in range(cfg.depth)]
        self.layer_dims = [cfg.dim] * (cfg.depth + 1)

    def forward_input(self, x: Tensor) -> list[Tensor]:
        x = self.subsample(x)  # [B, C, F', T']
        b, c, f, t = x.shape
        x = self.proj(x.permute(0, 3, 1, 2).reshape(b, t, c * f))
        x = x + sinusoidal(t, x.shape[-1], x.device)[None]
        out = [x]
        for blk in self.blocks:
            x = blk(x)
            out.append(x)
        return out

    def layer_blocks(self) -> list[tuple[str, ...]]:
        return [("subsample", "proj")] + [(f"blocks.{i}",) for i in range(len(self.blocks))]


@register("conformer", family="transformer", description="Conformer on log-mel, MusicFM/MuQ style (25 Hz tokens)")
def _conformer(**cfg: object) -> Conformer:
    return Conformer(**cfg)  # type: ignore[arg-type]

"""VGG-style CNN on log-mel: 16 kHz audio ``[B, samples]`` → one layer per conv block ``[B, T, C]``.

Each block is 3×3 conv → batch norm → ReLU → 2×2 max-pool (frequency pooling stops once one bin is left,
time pooling after ``time_pools`` blocks), the short-chunk CNN that music tagging work and the
limited-data study use as the plain-CNN baseline. A block's layer output is its feature map averaged over
frequency (global average pooling, as McCallum et al. probe their CNN), so width = channels.

Sizes: ``small`` 5 blocks (16→128 channels, 0.13 M parameters), ``paper`` 7 blocks of 128–512 channels
(3.4 M). Frame rate: 100 Hz / 2^time_pools, exposed as :attr:`frame_rate` (5 time pools → 3.125 Hz).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.encoder import Encoder, EncoderConfig, SpectrogramInput


class VGGConfig(EncoderConfig):
    channels: list[int] = Field(description="output channels of each conv block (one layer per block)")
    time_pools: int = Field(5, description="how many leading blocks halve the time axis")
    n_mels: int = Field(96, description="log-mel bands of the input")


class VGG(Encoder):
    """VGG-style CNN encoder (see module docstring)."""

    name = "vgg"
    #: 2-D convs and pools run ~1.2-1.6x faster on CPU in NHWC layout (same numbers); see models.base.for_inference
    prefers_channels_last = True
    Config = VGGConfig
    sizes = {
        "small": {"channels": [16, 32, 64, 64, 128], "time_pools": 5},
        "paper": {"channels": [128, 128, 256, 256, 256, 256, 512], "time_pools": 5},
    }

    def build(self, cfg: VGGConfig) -> None:
        self.input = SpectrogramInput(cfg.n_mels)
        blocks = []
        c_in, f = 1, cfg.n_mels
        for i, c in enumerate(cfg.channels):
            pf = 2 if f >= 2 else 1
            pt = 2 if i < cfg.time_pools else 1
            blocks.append(nn.Sequential(
                nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.MaxPool2d((pf, pt), ceil_mode=True),
            ))
            c_in, f = c, (f + pf - 1) // pf
        self.blocks = nn.ModuleList(blocks)
        self.frame_rate = self.input.frame_rate / 2 ** min(cfg.time_pools, len(cfg.channels))
        self.layer_names = [f"block{i + 1}" for i in range(len(cfg.channels))]
        self.layer_dims = list(cfg.channels)

    def forward_input(self, x: Tensor) -> list[Tensor]:
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x.mean(dim=2).transpose(1, 2))  # [B, C, F, T] → [B, T, C]
        return out

    def layer_blocks(self) -> list[tuple[str, ...]]:
        return [(f"blocks.{i}",) for i in range(len(self.blocks))]


@register("vgg", family="cnn", description="VGG-style CNN on log-mel (short-chunk CNN); one layer per conv block")
def _vgg(**cfg: object) -> VGG:
    return VGG(**cfg)  # type: ignore[arg-type]

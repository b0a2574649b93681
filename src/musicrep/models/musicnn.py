"""MusiCNN (Pons & Serra): musically motivated filters on log-mel → front-end, mid-end and back-end layers.

Takes 16 kHz audio ``[B, samples]``; gives five layers ``[B, T, H]``:

* ``front`` — *vertical* (timbral) filters spanning 40 % and 70 % of the mel axis and a few frames, plus
  *horizontal* (temporal) filters spanning 32/64/128 frames and one band; each filter bank is max-pooled
  over frequency, so the front-end emits one vector per frame whatever the pitch (pitch-invariant timbre,
  tempo-like periodicities);
* ``mid1..mid3`` — 1-D convolutions over time with residual connections (the mid-end);
* ``backend`` — a per-frame dense layer over the concatenated front + mid features. The original back-end
  pools over time before its dense layer; here the dense layer runs per frame so every layer stays
  frame-level and time pooling is left to the evaluation stage (timeline mean), as for every encoder.

No time downsampling happens inside the network (100 Hz), so the output is average-pooled to
:attr:`frame_rate` = 10 Hz (3 s → 30 frames), a resolution at which every layer is still frame-level.
Sizes: ``small`` 0.08 M parameters; ``paper`` uses musicnn's MSD-big widths (204 timbral, 51 temporal
filters per shape, 512-channel mid-end, 500-unit back-end; 6.9 M).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.encoder import Encoder, EncoderConfig, SpectrogramInput


class MusiCNNConfig(EncoderConfig):
    timbral_filters: int = Field(description="filters per vertical (timbral) filter shape")
    timbral_heights: list[float] = Field([0.4, 0.7], description="vertical filter heights as fractions of n_mels")
    timbral_widths: list[int] = Field([7], description="vertical filter widths in frames")
    temporal_filters: int = Field(description="filters per horizontal (temporal) filter length")
    temporal_widths: list[int] = Field([32, 64, 128], description="horizontal filter lengths in frames")
    mid_channels: int = Field(description="channels of each mid-end 1-D convolution")
    mid_kernel: int = Field(7, description="mid-end kernel length in frames")
    backend_units: int = Field(description="units of the per-frame back-end dense layer")
    frame_rate: float = Field(10.0, description="output frame rate (Hz) every layer is pooled to")
    n_mels: int = Field(96, description="log-mel bands of the input")


class _FreqMaxConv(nn.Module):
    """conv2d (same time length) → batch norm → ReLU → max over frequency: ``[B,1,F,T] → [B,C,T]``."""

    def __init__(self, c: int, kf: int, kt: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, c, (kf, kt), padding=(0, kt // 2), bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.kt = kt

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[-1]
        y = torch.relu(self.bn(self.conv(x)))[..., :t]  # even kernels give one extra frame
        return y.amax(dim=2)


class MusiCNN(Encoder):
    """Pons & Serra's musicnn architecture as a frame-level encoder (see module docstring)."""

    name = "musicnn"
    Config = MusiCNNConfig
    sizes = {
        "small": {"timbral_filters": 16, "temporal_filters": 8, "mid_channels": 48, "backend_units": 96},
        "paper": {"timbral_filters": 204, "temporal_filters": 51, "mid_channels": 512, "backend_units": 500},
    }

    def build(self, cfg: MusiCNNConfig) -> None:
        self.input = SpectrogramInput(cfg.n_mels)
        fronts = []
        for h in cfg.timbral_heights:
            for w in cfg.timbral_widths:
                fronts.append(_FreqMaxConv(cfg.timbral_filters, max(1, int(h * cfg.n_mels)), w))
        for w in cfg.temporal_widths:
            fronts.append(_FreqMaxConv(cfg.temporal_filters, 1, w))
        self.front = nn.ModuleList(fronts)
        c_front = len(cfg.timbral_heights) * len(cfg.timbral_widths) * cfg.timbral_filters
        c_front += len(cfg.temporal_widths) * cfg.temporal_filters
        k = cfg.mid_kernel
        self.mid = nn.ModuleList()
        c_in = c_front
        for _ in range(3):
            self.mid.append(nn.Sequential(nn.Conv1d(c_in, cfg.mid_channels, k, padding=k // 2, bias=False),
                                          nn.BatchNorm1d(cfg.mid_channels), nn.ReLU(inplace=True)))
            c_in = cfg.mid_channels
        c_cat = c_front + 3 * cfg.mid_channels
        self.backend = nn.Sequential(nn.Conv1d(c_cat, cfg.backend_units, 1, bias=False),
                                     nn.BatchNorm1d(cfg.backend_units), nn.ReLU(inplace=True))
        self.frame_rate = cfg.frame_rate
        self.layer_names = ["front", "mid1", "mid2", "mid3", "backend"]
        self.layer_dims = [c_front, cfg.mid_channels, cfg.mid_channels, cfg.mid_channels, cfg.backend_units]

    def forward_input(self, x: Tensor) -> list[Tensor]:
        front = torch.cat([f(x) for f in self.front], dim=1)  # [B, C, T]
        m1 = self.mid[0](front)
        m2 = self.mid[1](m1) + m1  # residual connections of the mid-end
        m3 = self.mid[2](m2) + m2
        back = self.backend(torch.cat([front, m1, m2, m3], dim=1))
        return [y.transpose(1, 2) for y in (front, m1, m2, m3, back)]

    def layer_blocks(self) -> list[tuple[str, ...]]:
        return [("front",), ("mid.0",), ("mid.1",), ("mid.2",), ("backend",)]


@register("musicnn", family="cnn", description="MusiCNN: vertical/horizontal musically motivated filters + mid/back-end")
def _musicnn(**cfg: object) -> MusiCNN:
    return MusiCNN(**cfg)  # type: ignore[arg-type]

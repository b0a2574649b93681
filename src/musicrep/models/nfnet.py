"""SF-NFNet-F0: a slow-fast normalizer-free ResNet on log-mel (McCallum et al. 2022; Wang et al. 2022).

Takes 16 kHz audio ``[B, samples]``; gives the stem and every residual block as a layer ``[B, T, H]``.

*Normalizer-free* (Brock et al. 2021): no batch norm. Convolutions use **scaled weight standardisation**
(each filter is standardised to zero mean and unit variance, divided by sqrt(fan-in) and multiplied by a
learned gain), activations are γ-scaled GELU (γ ≈ 1.7015, which keeps unit variance for unit-normal
input), and each residual block computes ``x + α · skip_gain · f(β · x)`` where ``β = 1 / expected std``
of the incoming signal (tracked analytically: variance grows by α² per block and resets at each stage's
transition block), ``α = 0.2`` and ``skip_gain`` starts at 0 (so every block starts as the identity).
Blocks are NFNet-F bottlenecks: 1×1 → grouped 3×3 → grouped 3×3 → 1×1 → squeeze-excite.
Why no batch norm: embeddings never depend on the rest of the batch, in training or inference.

*Short-fast*: two pathways over the spectrogram (time × frequency). The **slow** pathway has the F0
widths (256, 512, 1536, 1536; depths 1, 2, 6, 3) and halves time at stages 2–4; the **fast** pathway
has 1/8 of the width and keeps the stem's time resolution, seeing short events. Before every stage and
before the final 1×1 conv, a lateral 1×1 conv maps the fast features to ``2·C_fast`` channels, which are
pooled onto the slow grid and concatenated. A layer is ``[slow ‖ fast]`` averaged over frequency, fast
frames pooled onto the slow frames.

Frame rate: the slow path's time stride is 16 → 100/16 = 6.25 Hz (3 s → 19 frames). Sizes: ``paper`` is
the F0 body (stem 16-32-64-128, widths 256/512/1536/1536, depths 1/2/6/3, group width 128, 1536-channel
final conv) plus the fast pathway: with NFNet's squeeze-excite ratio 0.5 that is 69 M parameters; the
released SF-NFNet-F0 has 62.4 M and its exact layout was not available to us, so ``paper`` sets the
squeeze-excite ratio to 0.35, which matches the published count (≈62 M) while keeping every block.
``small`` 0.25 M (one block per stage, widths 32–128, group width 16, fast path 1/4 wide).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.encoder import Encoder, EncoderConfig, SpectrogramInput

#: γ for GELU: 1 / std(gelu(z)) for z ~ N(0, 1) (Brock et al., Table of activation gains).
GELU_GAMMA = 1.7015043497085571


def _act(x: Tensor) -> Tensor:
    return nn.functional.gelu(x) * GELU_GAMMA


class ScaledStdConv2d(nn.Conv2d):
    """Conv2d with scaled weight standardisation: ``gain · (W − mean) / (std · sqrt(fan_in))`` per filter."""

    def __init__(self, *args: object, eps: float = 1e-4, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))
        self.eps = eps
        nn.init.kaiming_normal_(self.weight, nonlinearity="linear")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def standardized_weight(self) -> Tensor:
        w = self.weight
        fan_in = w[0].numel()
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return self.gain * (w - mean) * torch.rsqrt(var * fan_in + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.standardized_weight(), self.bias)


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, ratio: float = 0.5) -> None:
        super().__init__()
        h = max(1, int(c * ratio))
        self.fc1, self.fc2 = nn.Conv2d(c, h, 1), nn.Conv2d(h, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class NFBlock(nn.Module):
    """NFNet-F bottleneck: ``x + α·skip_gain·f(β·act(x))`` (transition blocks project the shortcut)."""

    def __init__(self, c_in: int, c_out: int, group_width: int, stride: tuple[int, int], beta: float,
                 alpha: float, se_ratio: float = 0.5, ratio: float = 0.5) -> None:
        super().__init__()
        mid = max(group_width, int(c_out * ratio))
        groups = max(1, mid // group_width)
        self.alpha, self.beta = alpha, beta
        self.conv0 = ScaledStdConv2d(c_in, mid, 1)
        self.conv1 = ScaledStdConv2d(mid, mid, 3, stride=stride, padding=1, groups=groups)
        self.conv1b = ScaledStdConv2d(mid, mid, 3, padding=1, groups=groups)
        self.conv2 = ScaledStdConv2d(mid, c_out, 1)
        self.se = SqueezeExcite(c_out, se_ratio)
        self.skip_gain = nn.Parameter(torch.zeros(()))
        self.transition = c_in != c_out or stride != (1, 1)
        self.stride = stride
        self.shortcut = ScaledStdConv2d(c_in, c_out, 1) if self.transition else None

    def forward(self, x: Tensor) -> Tensor:
        out = _act(x) * self.beta
        if self.shortcut is not None:
            sc = out
            if self.stride != (1, 1):
                sc = nn.functional.avg_pool2d(sc, self.stride, self.stride, ceil_mode=True, count_include_pad=False)
            shortcut = self.shortcut(sc)
        else:
            shortcut = x
        h = self.conv0(out)
        h = self.conv1(_act(h))
        h = self.conv1b(_act(h))
        h = self.conv2(_act(h))
        h = 2.0 * self.se(h) * h
        return h * self.skip_gain * self.alpha + shortcut


class NFNetConfig(EncoderConfig):
    stem_channels: list[int] = Field(description="channels of the 4 stem convs (slow path)")
    widths: list[int] = Field(description="slow-path output channels per stage")
    depths: list[int] = Field(description="blocks per stage")
    group_width: int = Field(description="channels per group in the grouped 3x3 convs")
    fast_ratio: int = Field(8, description="fast path width = slow width / fast_ratio")
    final_channels: int = Field(description="channels of the closing 1x1 conv")
    alpha: float = Field(0.2, description="residual branch scale α")
    se_ratio: float = Field(0.5, description="squeeze-excite hidden width / channels")
    n_mels: int = Field(96, description="log-mel bands of the input")


def _stem(chs: list[int]) -> nn.ModuleList:
    strides = [(2, 2), (1, 1), (1, 1), (2, 1)]  # (freq, time): ×4 in frequency, ×2 in time
    convs, c_in = [], 1
    for c, s in zip(chs, strides, strict=True):
        convs.append(ScaledStdConv2d(c_in, c, 3, stride=s, padding=1))
        c_in = c
    return nn.ModuleList(convs)


def _run_stem(stem: nn.ModuleList, x: Tensor) -> Tensor:
    for i, conv in enumerate(stem):
        x = conv(x)
        if i < len(stem) - 1:
            x = _act(x)
    return x


class NFNet(Encoder):
    """SF-NFNet-F0 (see module docstring)."""

    name = "nfnet"
    #: 2-D convs and pools run ~1.2-1.6x faster on CPU in NHWC layout (same numbers); see models.base.for_inference
    prefers_channels_last = True
    Config = NFNetConfig
    sizes = {
        "small": {"stem_channels": [8, 16, 16, 32], "widths": [32, 64, 128, 128], "depths": [1, 1, 1, 1],
                  "group_width": 16, "fast_ratio": 4, "final_channels": 256},
        "paper": {"stem_channels": [16, 32, 64, 128], "widths": [256, 512, 1536, 1536], "depths": [1, 2, 6, 3],
                  "group_width": 128, "fast_ratio": 8, "final_channels": 1536, "se_ratio": 0.35},
    }

    def build(self, cfg: NFNetConfig) -> None:
        if not len(cfg.widths) == len(cfg.depths):
            raise ValueError("nfnet: widths and depths need one entry per stage")
        r = cfg.fast_ratio
        self.input = SpectrogramInput(cfg.n_mels)
        self.slow_stem = _stem(cfg.stem_channels)
        self.fast_stem = _stem([max(1, c // r) for c in cfg.stem_channels])
        self.laterals = nn.ModuleList()
        self.slow_stages, self.fast_stages = nn.ModuleList(), nn.ModuleList()
        c_s, c_f = cfg.stem_channels[-1], max(1, cfg.stem_channels[-1] // r)
        names, dims = ["stem"], [c_s + c_f]
        for si, (w, d) in enumerate(zip(cfg.widths, cfg.depths, strict=True)):
            self.laterals.append(ScaledStdConv2d(c_f, 2 * c_f, 1))
            wf = max(1, w // r)
            gw_f = max(1, cfg.group_width // r)
            slow, fast = nn.ModuleList(), nn.ModuleList()
            var = 1.0
            for bi in range(d):
                first = bi == 0
                if first:
                    var = 1.0  # the transition block's shortcut restarts the variance count
                beta = 1.0 / math.sqrt(var)
                s_stride = (2, 2) if first and si > 0 else (1, 1)
                f_stride = (2, 1) if first and si > 0 else (1, 1)
                slow.append(NFBlock(c_s + 2 * c_f if first else w, w, cfg.group_width, s_stride, beta, cfg.alpha,
                                    cfg.se_ratio))
                fast.append(NFBlock(c_f if first else wf, wf, gw_f, f_stride, beta, cfg.alpha, cfg.se_ratio))
                var += cfg.alpha**2
                names.append(f"stage{si + 1}.block{bi + 1}")
                dims.append(w + wf)
            self.slow_stages.append(slow)
            self.fast_stages.append(fast)
            c_s, c_f = w, wf
        self.final_lateral = ScaledStdConv2d(c_f, 2 * c_f, 1)
        self.final = ScaledStdConv2d(c_s + 2 * c_f, cfg.final_channels, 1)
        names.append("final")
        dims.append(cfg.final_channels)
        self.frame_rate = self.input.frame_rate / 2 ** len(cfg.widths)
        self.layer_names, self.layer_dims = names, dims

    @staticmethod
    def _fuse(slow: Tensor, fast: Tensor, lateral: nn.Module) -> Tensor:
        lat = nn.functional.adaptive_avg_pool2d(lateral(fast), slow.shape[-2:])
        return torch.cat([slow, lat], dim=1)

    @staticmethod
    def _layer(slow: Tensor, fast: Tensor) -> Tensor:
        s = slow.mean(dim=2)
        f = nn.functional.adaptive_avg_pool1d(fast.mean(dim=2), s.shape[-1])
        return torch.cat([s, f], dim=1).transpose(1, 2)

    def forward_input(self, x: Tensor) -> list[Tensor]:
        s = _run_stem(self.slow_stem, x)
        f = _run_stem(self.fast_stem, x)
        out = [self._layer(s, f)]
        for lat, slow, fast in zip(self.laterals, self.slow_stages, self.fast_stages, strict=True):
            s = self._fuse(s, f, lat)
            for bs, bf in zip(slow, fast, strict=True):
                s, f = bs(s), bf(f)
                out.append(self._layer(s, f))
        y = _act(self.final(self._fuse(s, f, self.final_lateral)))
        out.append(y.mean(dim=2).transpose(1, 2))
        return out

    def layer_blocks(self) -> list[tuple[str, ...]]:
        # a stage's lateral fuses fast into slow before its first block, so it belongs to that block
        out: list[tuple[str, ...]] = [("slow_stem", "fast_stem")]
        for si, stage in enumerate(self.slow_stages):
            for bi in range(len(stage)):
                out.append((f"slow_stages.{si}.{bi}", f"fast_stages.{si}.{bi}") + ((f"laterals.{si}",) if bi == 0 else ()))
        return out + [("final_lateral", "final")]


@register("nfnet", family="cnn", description="SF-NFNet-F0: slow-fast normalizer-free ResNet (McCallum et al. 2022)")
def _nfnet(**cfg: object) -> NFNet:
    return NFNet(**cfg)  # type: ignore[arg-type]

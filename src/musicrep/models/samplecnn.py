"""SampleCNN (Lee et al.), the raw-waveform encoder of CLMR: audio ``[B, samples]`` → one layer per block.

No spectrogram: a strided conv (kernel 3, stride 3) frames the 16 kHz waveform, then blocks of
conv(3) → batch norm → ReLU → max-pool(3) each cut the time axis by 3, and a final 1×1 conv block gives
the embedding. Every block's output ``[B, T_l, C]`` is a layer (early layers have high time resolution
and are average-pooled to the output frame count). Max-pooling uses ``ceil_mode`` so inputs that are not
a power of 3 (a 3 s window is 48 000 samples, CLMR used 59 049 at 22.05 kHz) keep their tail.

The waveform is scaled per item to unit RMS first, for the same reason spectrogram encoders standardise
their log-mel (batch independence, sane inputs for an untrained twin, loudness-invariant features).

Sizes: ``small`` stem + 7 blocks (32→128 channels, 0.13 M parameters), total stride 3^8 → 2.44 Hz,
declared :attr:`frame_rate` 2.5 Hz (3 s → 8 frames); ``paper`` CLMR's 3^9 configuration (stem + 9 blocks,
128–512 channels + 1×1 block, 1.8 M parameters), total stride 3^10 → 1/3 Hz declared (3 s → 1 frame).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.encoder import Encoder, EncoderConfig


class SampleCNNConfig(EncoderConfig):
    stem_channels: int = Field(description="channels of the strided stem conv")
    channels: list[int] = Field(description="channels of each conv(3)+pool(3) block")
    final_channels: int = Field(description="channels of the closing 1x1 conv block (0: none)")
    frame_rate: float = Field(description="declared output frame rate (Hz), ≈ 16 kHz / 3^(blocks+1)")


class SampleCNN(Encoder):
    """CLMR's SampleCNN encoder on raw 16 kHz audio (see module docstring)."""

    name = "samplecnn"
    input_kind = "waveform"
    Config = SampleCNNConfig
    sizes = {
        "small": {"stem_channels": 32, "channels": [32, 32, 64, 64, 64, 128, 128], "final_channels": 128,
                  "frame_rate": 2.5},
        "paper": {"stem_channels": 128, "channels": [128, 128, 256, 256, 256, 256, 256, 256, 512],
                  "final_channels": 512, "frame_rate": 1 / 3},
    }

    def build(self, cfg: SampleCNNConfig) -> None:
        self.stem = nn.Sequential(nn.Conv1d(1, cfg.stem_channels, 3, stride=3, bias=False),
                                  nn.BatchNorm1d(cfg.stem_channels), nn.ReLU(inplace=True))
        blocks = []
        c_in = cfg.stem_channels
        for c in cfg.channels:
            blocks.append(nn.Sequential(nn.Conv1d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm1d(c),
                                        nn.ReLU(inplace=True), nn.MaxPool1d(3, ceil_mode=True)))
            c_in = c
        if cfg.final_channels:
            blocks.append(nn.Sequential(nn.Conv1d(c_in, cfg.final_channels, 1, bias=False),
                                        nn.BatchNorm1d(cfg.final_channels), nn.ReLU(inplace=True)))
        self.blocks = nn.ModuleList(blocks)
        self.frame_rate = cfg.frame_rate
        self.layer_names = ["stem"] + [f"block{i + 1}" for i in range(len(cfg.channels))]
        self.layer_dims = [cfg.stem_channels] + list(cfg.channels)
        if cfg.final_channels:
            self.layer_names.append("final")
            self.layer_dims.append(cfg.final_channels)

    def forward_input(self, audio: Tensor) -> list[Tensor]:
        x = audio / (audio.square().mean(dim=-1, keepdim=True).sqrt() + 1e-5)
        x = x.unsqueeze(1)
        if x.shape[-1] < 3:
            x = nn.functional.pad(x, (0, 3 - x.shape[-1]))
        x = self.stem(x)
        out = [x.transpose(1, 2)]
        for blk in self.blocks:
            x = blk(x)
            out.append(x.transpose(1, 2))
        return out

    def layer_blocks(self) -> list[tuple[str, ...]]:
        return [("stem",)] + [(f"blocks.{i}",) for i in range(len(self.blocks))]


@register("samplecnn", family="cnn", description="SampleCNN on raw waveform (CLMR's encoder)")
def _samplecnn(**cfg: object) -> SampleCNN:
    return SampleCNN(**cfg)  # type: ignore[arg-type]

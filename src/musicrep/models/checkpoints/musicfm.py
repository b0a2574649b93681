"""MusicFM-25Hz (Won et al. 2024) from local weight files.

Registers ``musicfm``: audio ``[B, samples]`` at 24 kHz → ``[B, 13, T, 1024]`` at 25 Hz, layers numbered as
MusicFM's ``get_latent(layer_ix)``. The model is the dB-mel front-end, conv subsampling and rotary conformer
of :mod:`musicrep.models.checkpoints.blocks` with MusicFM's key names; the dB-mel statistics come from
MusicFM's ``*_stats.json`` beside the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError, load_state
from musicrep.models.checkpoints.blocks import (
    ConformerSizes,
    ConvSubsampling,
    HiddenStatesEncoder,
    MelDB,
    RotaryConformer,
)
from musicrep.models.checkpoints.weights import read_json, read_state_dict, release_state, resolve_weights
from musicrep.models.encoder import seeded

__all__ = ["MUSICFM_PRESETS", "MusicFM", "MusicFMConfig"]


class MusicFMConfig(BaseModel):
    """Sizes of MusicFM-25Hz (Won et al. 2024): log-mel → 2 residual conv blocks (÷4 time) → conformer.

    The conformer is ``transformers``' Wav2Vec2Conformer with rotary positions (MusicFM builds it from the
    ``facebook/wav2vec2-conformer-rope-large-960h-ft`` config); field names follow that config.
    """

    model_config = ConfigDict(extra="forbid")

    sample_rate: int = 24_000
    n_fft: int = 2048
    hop_length: int = Field(240, description="mel hop; the conformer runs at sample_rate / hop / 4 = 25 Hz")
    n_mels: int = 128
    conv_dim: int = 512
    hidden_size: int = 1024
    num_hidden_layers: int = 12
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    conv_depthwise_kernel_size: int = 31
    rotary_embedding_base: float = 10_000.0
    layer_norm_eps: float = 1e-5
    hidden_act: Literal["swish", "silu", "gelu", "relu"] = Field("swish", description="conformer activation (feed-forward and "
                                                 "conv module); the rope-large conformer config says swish")
    mel_mean: float | None = Field(None, description="dataset mean of the dB mel (MusicFM's *_stats.json)")
    mel_std: float | None = Field(None, description="dataset std of the dB mel")


MUSICFM_PRESETS: dict[str, dict[str, Any]] = {
    "25hz": {},
    "tiny": dict(n_mels=16, conv_dim=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, conv_depthwise_kernel_size=5),
}

#: Keys of the release that inference does not use (pretraining targets / heads, unused positional tables).
_MUSICFM_IGNORED = ("quantizer_", "linear.", "cls_token", "conformer.pos_conv_embed.", "conformer.embed_positions.")
_MUSICFM_STATS = ("msd_stats.json", "fma_stats.json", "stats.json")


class MusicFM(HiddenStatesEncoder):
    """MusicFM-25Hz from local weights; layers numbered as MusicFM's ``get_latent(layer_ix)``: 0 = conformer
    input, 1…11 = block outputs, 12 = the last block's output after the final LayerNorm (13 layers, the
    Hugging Face ``hidden_states`` its code indexes; the last block's raw output is not among them).

    Weights: a state dict with MusicFM's key names (``conv.conv.0.conv1.weight``, ``conformer.layers.3.
    self_attn.linear_q.weight``, …; a ``model.`` prefix and a ``state_dict`` wrapper are accepted). The dB-
    mel statistics come from ``msd_stats.json``/``fma_stats.json`` beside the weights (MusicFM's
    ``data/*_stats.json``) or from ``config={"mel_mean": …, "mel_std": …}``.
    """

    name = "musicfm"
    window_seconds: float | None = None
    revision = 2  # 13 layers numbered as MusicFM's get_latent (revision 1 exposed 14)

    def __init__(self, weights: str | Path | None = None, size: str = "25hz", config: dict[str, Any] | None = None,
                 random_init: bool = False, seed: int = 0) -> None:
        nn.Module.__init__(self)
        if size not in MUSICFM_PRESETS:
            raise ValueError(f"musicfm: size must be one of {sorted(MUSICFM_PRESETS)}, got {size!r}")
        cfg = dict(MUSICFM_PRESETS[size], **(config or {}))
        path = None if random_init else resolve_weights(weights, ("model.safetensors", "pretrained_msd.pt",
                                                                  "pretrained_fma.pt"), "musicfm")
        if path is not None and cfg.get("mel_mean") is None:
            stats = next((path.parent / n for n in _MUSICFM_STATS if (path.parent / n).is_file()), None)
            if stats is None:
                raise WeightsError(f"musicfm: expected {path.parent / _MUSICFM_STATS[0]} (MusicFM's data/*_stats.json "
                                   f"with melspec_2048_mean/std) or config={{'mel_mean':…, 'mel_std':…}}")
            st = read_json(stats, "the MusicFM mel statistics")
            cfg.update(mel_mean=float(st["melspec_2048_mean"]), mel_std=float(st["melspec_2048_std"]))
        cfg["mel_mean"] = 0.0 if cfg.get("mel_mean") is None else cfg["mel_mean"]
        cfg["mel_std"] = 1.0 if cfg.get("mel_std") is None else cfg["mel_std"]
        self.cfg = MusicFMConfig(**cfg)
        with seeded(seed):  # same seed → same random weights, without touching the caller's global RNG
            c = self.cfg
            self.preprocessor_melspec_2048 = MelDB(c.sample_rate, c.n_fft, c.hop_length, c.n_mels, stored=True)
            self.conv = ConvSubsampling(c.n_mels, c.conv_dim, c.hidden_size)
            self.conformer = RotaryConformer(ConformerSizes(
                hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                conv_depthwise_kernel_size=c.conv_depthwise_kernel_size, hidden_act=c.hidden_act,
                rotary_embedding_base=c.rotary_embedding_base, layer_norm_eps=c.layer_norm_eps))
        self.sample_rate = self.cfg.sample_rate
        self.frame_rate = self.cfg.sample_rate / self.cfg.hop_length / 4
        self.layer_names = [f"hidden{i}" for i in range(self.cfg.num_hidden_layers + 1)]
        self.layer_dims = [self.cfg.hidden_size] * len(self.layer_names)
        self.weights_path = path
        if path is not None:
            state = release_state(read_state_dict(path), ("model.",), _MUSICFM_IGNORED)
            own = self.preprocessor_melspec_2048.state_dict(prefix="preprocessor_melspec_2048.")
            for k, v in own.items():  # the checkpoint's window / filterbank when it has them, else ours
                state.setdefault(k, v)
            load_state(self, state, path, f"MusicFM config {self.cfg.model_dump()}")
        self.eval()

    @property
    def min_seconds(self) -> float:  # type: ignore[override]
        """The reflect-padded STFT needs more than ``n_fft // 2`` samples (and one hop for a frame)."""
        return max(self.cfg.n_fft // 2 + 1, self.cfg.hop_length) / self.cfg.sample_rate

    def n_frames(self, n_samples: int) -> int:
        t = n_samples // self.cfg.hop_length  # 1 + n // hop STFT frames, last one dropped as MusicFM does
        return -(-(-(-t // 2)) // 2)

    def forward_layers(self, audio: Tensor) -> list[Tensor]:
        mel = self.preprocessor_melspec_2048(audio.float())[..., :-1]
        mel = (mel - self.cfg.mel_mean) / self.cfg.mel_std
        return self.conformer(self.conv(mel))


@register("musicfm", "external", "MusicFM-25Hz conformer from local weights (weights=DIR|FILE + *_stats.json)")
def _musicfm(**cfg: Any) -> Representation:
    return MusicFM(**cfg)

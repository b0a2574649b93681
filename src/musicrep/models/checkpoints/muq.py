"""MuQ (Zhu et al. 2025) from *local* weight files: 24 kHz audio → dB-mel → conv subsampling → conformer.

Takes audio ``[B, samples]`` at 24 kHz and a path to a released MuQ checkpoint on disk (the folder holding
``model.safetensors`` or ``pytorch_model.bin`` plus the release's ``config.json``, e.g. a local copy of
MuQ-large-msd-iter); gives ``[B, L, T, H]`` at 25 Hz with ``L = encoder_depth + 1``: exactly the
``hidden_states`` the official ``MuQ(...)(wav, output_hidden_states=True)`` returns — the conformer input,
the outputs of blocks 1 … N-1, and the final LayerNorm of block N's output (13 states for the released
large model), so MuQ's published layer indices mean the same thing here. Nothing is ever downloaded: a
missing file raises :class:`~musicrep.models.base.WeightsError` naming the file expected.

Why a re-implementation rather than ``pip install muq``: the official package pulls in torchaudio (broken
here), transformers, einops, easydict and the Hub client; the inference path is small (a torchaudio
mel spectrogram in dB, two strided residual conv blocks, the ``transformers`` Wav2Vec2-Conformer encoder
with rotary positions). Modules here use the release's parameter names (``conv.conv.0.conv1.weight``,
``conformer.layers.3.self_attn.linear_q.weight``, …; the ``model.`` prefix of the Hub wrapper is
stripped), so the released state dict loads as it is; pretraining-only tensors (the RVQ / random-projection
targets, the token classifier ``linear``, ``cls_token``, the unused conv positional embedding) are ignored.

It shares its building blocks with MusicFM (:mod:`musicrep.models.checkpoints.blocks`, the architecture MuQ inherits),
but reads the conformer activation from the release's ``w2v2_config`` (``hidden_act: swish``) instead of
assuming one, and has no mel buffers in its state dict (MuQ's mel front-end is not an ``nn.Module``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError, file_checksum
from musicrep.models.checkpoints.blocks import (
    ConformerSizes,
    ConvSubsampling,
    HiddenStatesEncoder,
    MelDB,
    RotaryConformer,
)
from musicrep.models.checkpoints.weights import read_json, read_state_dict, release_state, resolve_weights
from musicrep.models.encoder import seeded

__all__ = ["MuQConfig", "MuQ", "MUQ_PRESETS", "WEIGHT_FILES"]

#: File names looked for inside ``weights=DIR`` (the Hub release has both; they hold the same tensors).
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class MuQConfig(BaseModel):
    """The settings of a MuQ encoder that change its output (field names follow the release's config.json).

    ``hop_length``/``n_mels``/``conv_dim``/``encoder_dim``/``encoder_depth``/``label_rate`` are top-level keys
    of the release config, the conformer fields come from its ``w2v2_config``, ``mel_mean``/``mel_std`` from
    its ``stat`` (``melspec_2048_mean/std``).
    """

    model_config = ConfigDict(extra="forbid")

    sample_rate: int = Field(24_000, description="MuQ's mel front-end is fixed at 24 kHz")
    n_fft: int = 2048
    hop_length: int = 240
    n_mels: int = 128
    conv_dim: int = 512
    encoder_dim: int = 1024
    encoder_depth: int = 12
    label_rate: Literal[25, 50] = Field(25, description="conformer frame rate: time stride 4 (25 Hz) or 2 (50 Hz)")
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    conv_depthwise_kernel_size: int = 31
    hidden_act: Literal["swish", "silu", "gelu", "relu"] = "swish"
    position_embeddings_type: Literal["rotary"] = "rotary"
    rotary_embedding_base: float = 10_000.0
    layer_norm_eps: float = 1e-5
    mel_mean: float = Field(0.0, description="dataset mean of the dB mel (release: stat.melspec_2048_mean)")
    mel_std: float = Field(1.0, description="dataset std of the dB mel (release: stat.melspec_2048_std)")

    @classmethod
    def from_release(cls, cfg: dict[str, Any], source: str = "config.json") -> MuQConfig:
        """Pick the fields this architecture uses from a MuQ release ``config.json`` dict."""
        keep = {k: cfg[k] for k in ("hop_length", "n_mels", "conv_dim", "encoder_dim", "encoder_depth", "label_rate")
                if k in cfg}
        w2v2 = cfg.get("w2v2_config") or {}
        keep.update({k: w2v2[k] for k in ("num_attention_heads", "intermediate_size", "conv_depthwise_kernel_size",
                                          "hidden_act", "position_embeddings_type", "rotary_embedding_base",
                                          "layer_norm_eps") if k in w2v2})
        stat = cfg.get("stat") or {}
        if "melspec_2048_mean" not in stat or "melspec_2048_std" not in stat:
            raise WeightsError(f"{source}: no stat.melspec_2048_mean / stat.melspec_2048_std (the dB-mel "
                               f"normalisation of the release); use the config.json that came with the weights")
        keep.update(mel_mean=float(stat["melspec_2048_mean"]), mel_std=float(stat["melspec_2048_std"]))
        features = cfg.get("features", ["melspec_2048"])
        if list(features) != ["melspec_2048"]:
            raise WeightsError(f"{source}: features={features!r}; musicrep's MuQ implements ['melspec_2048'] only")
        try:
            return cls(**keep)
        except ValidationError as exc:
            raise WeightsError(f"{source}: unsupported MuQ config ({exc.errors()[0]['loc']}: "
                               f"{exc.errors()[0]['msg']})") from None


#: ``large``: MuQ-large-msd-iter (~300M parameters; its config.json, when present, overrides this);
#: ``tiny``: what the tests save random weights for.
MUQ_PRESETS: dict[str, dict[str, Any]] = {
    "large": dict(mel_mean=6.768444971712967, mel_std=18.417922652295623),
    "tiny": dict(n_mels=16, conv_dim=8, encoder_dim=32, encoder_depth=2, num_attention_heads=2,
                 intermediate_size=64, conv_depthwise_kernel_size=5),
}


#: Keys of the release that inference does not use (pretraining targets / heads, unused positional conv).
_IGNORED = ("rvq.", "quantizer_", "linear.", "cls_token", "recon_proj.", "conformer.pos_conv_embed.",
            "conformer.embed_positions.", "preprocessor_")


class MuQ(HiddenStatesEncoder):
    """MuQ encoder from local weights; layers = MuQ's ``hidden_states`` (``encoder_depth + 1`` of them).

    ``weights``: the release folder (``model.safetensors`` or ``pytorch_model.bin`` + ``config.json``) or the
    weights file itself (its folder's ``config.json`` is read). Without a ``config.json`` pass
    ``config={...}`` (sizes and ``mel_mean``/``mel_std``); ``size`` then picks the preset they override.
    ``random_init=True`` builds the untrained twin of ``size`` deterministically from ``seed``.
    """

    name = "muq"
    window_seconds: float | None = None

    def __init__(self, weights: str | Path | None = None, size: str = "large", config: dict[str, Any] | None = None,
                 random_init: bool = False, seed: int = 0, sha256: str | None = None) -> None:
        nn.Module.__init__(self)
        if size not in MUQ_PRESETS:
            raise ValueError(f"muq: size must be one of {sorted(MUQ_PRESETS)}, got {size!r}")
        cfg: dict[str, Any] = dict(MUQ_PRESETS[size])
        path: Path | None = None
        if not random_init:
            if weights is None:
                raise WeightsError("muq: pass weights=DIR holding model.safetensors (or pytorch_model.bin) and "
                                   "config.json, e.g. a local copy of MuQ-large-msd-iter, or weights=FILE "
                                   "(random_init=True builds the untrained twin instead)")
            path = resolve_weights(weights, WEIGHT_FILES, "muq")
            release = path.parent / "config.json"
            if release.is_file():
                raw = read_json(release, "the MuQ config")
                cfg = MuQConfig.from_release(raw, source=str(release)).model_dump()
            elif config is None:
                raise WeightsError(f"muq: expected {release} (the release's config.json: sizes, w2v2_config, stat) "
                                   f"beside {path.name}, or pass config={{...}} with the sizes and mel_mean/mel_std")
        cfg.update(config or {})
        try:
            self.cfg = MuQConfig(**cfg)
        except ValidationError as exc:
            raise ValueError(f"muq: bad config: {exc}") from None
        c = self.cfg
        if c.encoder_dim % c.num_attention_heads:
            raise ValueError(f"muq: encoder_dim {c.encoder_dim} is not divisible by {c.num_attention_heads} heads")
        if c.conv_depthwise_kernel_size % 2 == 0:
            raise ValueError(f"muq: conv_depthwise_kernel_size must be odd ('same' padding), got "
                             f"{c.conv_depthwise_kernel_size}")
        with seeded(seed):  # same seed → same random weights, without touching the caller's global RNG
            # no front-end tensors in the release: the mel buffers stay out of the state dict and checksum
            self.preprocessor_melspec_2048 = MelDB(c.sample_rate, c.n_fft, c.hop_length, c.n_mels, stored=False)
            self.conv = ConvSubsampling(c.n_mels, c.conv_dim, c.encoder_dim)
            # MusicFM's conformer: the same maths and parameter names, only MuQ's field names differ
            self.conformer = RotaryConformer(ConformerSizes(
                hidden_size=c.encoder_dim, num_hidden_layers=c.encoder_depth,
                num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                conv_depthwise_kernel_size=c.conv_depthwise_kernel_size, hidden_act=c.hidden_act,
                rotary_embedding_base=c.rotary_embedding_base, layer_norm_eps=c.layer_norm_eps))
        self.time_strides = (2, 2) if c.label_rate == 25 else (2, 1)
        if self.time_strides[1] == 1:  # 50 Hz variant: the second block strides frequency only
            for conv in (self.conv.conv[1].conv1, self.conv.conv[1].conv3):
                conv.stride = (2, 1)
        self.sample_rate = c.sample_rate
        self.frame_rate = c.sample_rate / c.hop_length / (self.time_strides[0] * self.time_strides[1])
        self.layer_names = [f"hidden{i}" for i in range(c.encoder_depth + 1)]
        self.layer_dims = [c.encoder_dim] * len(self.layer_names)
        self.weights_path = None if path is None else str(path)
        if path is not None:
            self._load(path, sha256)
        self.eval()

    def _load(self, path: Path, sha256: str | None) -> None:
        if sha256 is not None and file_checksum(path) != sha256:
            raise WeightsError(f"{path}: checksum mismatch (expected {sha256[:16]}…)")
        state = release_state(read_state_dict(path), ("model.", "module."), _IGNORED)
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            def few(keys: list[str]) -> str:
                return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")

            parts = [f"missing {few(missing)}"] if missing else []
            parts += [f"unexpected {few(unexpected)}"] if unexpected else []
            raise WeightsError(f"{path}: weights do not fit MuQ (encoder_dim={self.cfg.encoder_dim}, "
                               f"encoder_depth={self.cfg.encoder_depth}): {'; '.join(parts)}")
        bad = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items() if v.shape != own[k].shape]
        if bad:
            raise WeightsError(f"{path}: weights do not fit MuQ config {self.cfg.model_dump()}: shape of "
                               f"{bad[0]} expected" + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""))
        self.load_state_dict(state, strict=True)

    @property
    def min_seconds(self) -> float:  # type: ignore[override]
        """The reflect-padded STFT needs more than ``n_fft // 2`` samples (and one hop for a frame)."""
        return max(self.cfg.n_fft // 2 + 1, self.cfg.hop_length) / self.cfg.sample_rate

    def n_frames(self, n_samples: int) -> int:
        """Conformer frames: ``n // hop`` mel frames (the centred STFT's last frame is dropped, as MuQ does),
        then ``⌈·/s⌉`` for each strided conv block."""
        t = n_samples // self.cfg.hop_length
        for s in self.time_strides:
            t = -(-t // s)
        return t

    def mel(self, audio: Tensor) -> Tensor:
        """Normalised dB mel ``[B, n_mels, frames]`` exactly as MuQ feeds its conv front-end."""
        with torch.no_grad():
            mel = self.preprocessor_melspec_2048(audio.float())[..., :-1]
        return (mel - self.cfg.mel_mean) / self.cfg.mel_std

    def forward_layers(self, audio: Tensor) -> list[Tensor]:
        return self.conformer(self.conv(self.mel(audio)))


def _muq_available() -> tuple[bool, str]:
    return True, ""  # pure torch + librosa; the weights (and config.json) are checked and named when built


@register("muq", "external", "MuQ conformer (25 Hz, 24 kHz in) from local weights: weights=DIR|FILE "
          "(model.safetensors + config.json); size=large|tiny", available=_muq_available)
def _muq(**cfg: Any) -> Representation:
    return MuQ(**cfg)

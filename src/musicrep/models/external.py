"""External models from *local* weight files: MERT (HuBERT-style), TorchScript files, any torch module.

Takes audio ``[B, samples]`` at the model's sample rate and a path to weights on disk; gives
``[B, L, T, H]`` with every transformer layer (or every output the module returns) as a layer. Nothing is
ever downloaded: if the file is absent, :class:`~musicrep.models.base.WeightsError` names the file expected.

Registered names:

``mert``          MERT / HuBERT / wav2vec2-style encoder (conv feature extractor + transformer) whose
                  parameter names follow Hugging Face ``transformers`` (``feature_extractor.conv_layers.0.conv
                  .weight``, ``encoder.layers.3.attention.q_proj.weight``, …), so the published
                  ``model.safetensors`` of m-a-p/MERT-v1-95M loads as is. ``config.json`` beside the weights
                  (the Hugging Face one) sets the sizes; otherwise ``size=`` picks a preset.
``torchscript``   a TorchScript file (``torch.jit.save``) whose forward maps ``[B, samples]`` to ``[B, T, H]``
                  or a list/tuple of them (one per layer).
``torch-module``  ``module="pkg.mod:Class"`` + ``init={...}`` + ``weights=PATH`` (safetensors / weights-only
                  .pt): any ``nn.Module`` with the same forward convention.

Why implement the MERT architecture here instead of depending on ``transformers``: it keeps the package
torch-only, and the model is small (conv stack, weight-normed positional conv, post- or pre-LN transformer).
The tests check it against ``transformers.HubertModel`` on tiny random weights when that is installed.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.nn import functional as F

from musicrep.models import register
from musicrep.models.base import (
    Representation,
    TorchEncoder,
    WeightsError,
    align_layers,
    file_checksum,
    load_state,
    state_checksum,
)
from musicrep.models.common import seeded

__all__ = ["MERTConfig", "MERT", "MusicFMConfig", "MusicFM", "TorchModuleRep", "read_state_dict", "MERT_PRESETS",
           "MUSICFM_PRESETS"]


# ------------------------------------------------------------------------------------------ weights I/O


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or a weights-only ``.pt``/``.bin``/``.ckpt`` (no pickled code)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p))
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad weights file
        raise WeightsError(f"{p}: cannot read weights ({exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def _resolve(path: str | Path | None, names: tuple[str, ...], what: str, arg: str = "weights") -> Path:
    """A weights file: ``path`` itself, or the first of ``names`` inside the folder ``path``."""
    if path is None:
        raise WeightsError(f"{what}: pass {arg}=FILE or a folder holding {names[0]}")
    p = Path(path).expanduser()
    if p.is_dir():
        for n in names:
            if (p / n).is_file():
                return p / n
        raise WeightsError(f"{what}: expected {p / names[0]} (or {', '.join(names[1:])}) — not found")
    if not p.is_file():
        raise WeightsError(f"{what}: weights file {p} not found")
    return p


# ------------------------------------------------------------------------------------------------- MERT


class HiddenStatesEncoder(TorchEncoder):
    """A released transformer-style model: every layer has one width and frame rate (its
    ``hidden_states``), so :meth:`embed` stacks them as they are, and the settings are a pydantic
    ``self.cfg``. Subclasses implement ``forward_layers``; ``TorchEncoder`` gives the rest."""

    cfg: BaseModel

    def embed(self, audio: Tensor) -> Tensor:
        self.check_length(audio.shape[-1])  # a clip under min_seconds would fail deep inside torch
        return torch.stack(self.forward_layers(audio), dim=1)

    def config(self) -> dict[str, Any]:
        return self.cfg.model_dump()


class MERTConfig(BaseModel):
    """Sizes of a HuBERT-style encoder. Field names are those of Hugging Face's ``HubertConfig``/``MERTConfig``."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: int = Field(24_000, description="input rate (MERT-v1: 24 kHz; MERT-v0, HuBERT: 16 kHz)")
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    conv_dim: list[int] = Field(default_factory=lambda: [512] * 7)
    conv_kernel: list[int] = Field(default_factory=lambda: [10, 3, 3, 3, 3, 2, 2])
    conv_stride: list[int] = Field(default_factory=lambda: [5, 2, 2, 2, 2, 2, 2])
    conv_bias: bool = False
    feat_extract_norm: Literal["group", "layer"] = Field("group", description="group: GroupNorm on the first conv only")
    feat_proj_layer_norm: bool = True
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = Field(False, description="pre-LN transformer (large models) instead of post-LN")
    deepnorm: bool = Field(False, description="DeepNorm residual scaling (MERT-330M)")
    layer_norm_eps: float = 1e-5
    normalize_input: bool = Field(True, description="zero-mean unit-variance per clip (Wav2Vec2FeatureExtractor)")

    @classmethod
    def from_hf(cls, cfg: dict[str, Any]) -> MERTConfig:
        """Pick the fields this architecture uses from a Hugging Face ``config.json`` dict."""
        keep = {k: v for k, v in cfg.items() if k in cls.model_fields}
        if "do_normalize" in cfg:
            keep["normalize_input"] = bool(cfg["do_normalize"])
        if cfg.get("feature_extractor_cqt"):
            raise WeightsError("config.json asks for the CQT feature branch (feature_extractor_cqt), "
                               "which musicrep's MERT does not implement")
        return cls(**keep)


#: Presets; ``tiny`` is what the tests save random weights for.
MERT_PRESETS: dict[str, dict[str, Any]] = {
    "95m": {},
    "330m": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                 feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
    "tiny": dict(sample_rate=16_000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, conv_dim=[16, 16, 16], conv_kernel=[10, 3, 3], conv_stride=[5, 2, 2],
                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2),
}


class _ConvLayer(nn.Module):
    def __init__(self, c: MERTConfig, i: int) -> None:
        super().__init__()
        cin = 1 if i == 0 else c.conv_dim[i - 1]
        self.conv = nn.Conv1d(cin, c.conv_dim[i], c.conv_kernel[i], c.conv_stride[i], bias=c.conv_bias)
        self.kind = c.feat_extract_norm if (c.feat_extract_norm == "layer" or i == 0) else None
        if self.kind == "group":  # one group per channel = instance norm with affine, as in wav2vec2
            self.layer_norm: nn.Module | None = nn.GroupNorm(c.conv_dim[i], c.conv_dim[i], affine=True)
        elif self.kind == "layer":
            self.layer_norm = nn.LayerNorm(c.conv_dim[i], elementwise_affine=True)
        else:
            self.layer_norm = None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.kind == "group":
            x = self.layer_norm(x)  # type: ignore[misc]
        elif self.kind == "layer":
            x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)  # type: ignore[misc]
        return F.gelu(x)


class _FeatureEncoder(nn.Module):
    def __init__(self, c: MERTConfig) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(_ConvLayer(c, i) for i in range(len(c.conv_dim)))

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        return x.transpose(1, 2)


class _FeatureProjection(nn.Module):
    def __init__(self, c: MERTConfig) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(c.conv_dim[-1], eps=c.layer_norm_eps) if c.feat_proj_layer_norm else None
        self.projection = nn.Linear(c.conv_dim[-1], c.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.layer_norm(x) if self.layer_norm is not None else x)


class _WeightNormConv(nn.Module):
    """Grouped conv whose weight is ``g · v / ‖v‖`` (norm over all but the kernel axis, torch's ``dim=2``).

    Stored as ``weight_g``/``weight_v`` (the classic names); :func:`_normalise_keys` maps the newer
    ``parametrizations.weight.original0/1`` names onto them, so checkpoints of either vintage load.
    """

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.groups, self.padding = groups, kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        v = self.weight_v
        w = self.weight_g * v / v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, w, self.bias, padding=self.padding, groups=self.groups)


class _PosConv(nn.Module):
    def __init__(self, c: MERTConfig) -> None:
        super().__init__()
        self.conv = _WeightNormConv(c.hidden_size, c.num_conv_pos_embeddings, c.num_conv_pos_embedding_groups)
        self.trim = 1 if c.num_conv_pos_embeddings % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[:, :, : -self.trim]
        return F.gelu(y).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, c: MERTConfig) -> None:
        super().__init__()
        d = c.hidden_size
        self.heads = c.num_attention_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape

        def split(y: Tensor) -> Tensor:
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class _FeedForward(nn.Module):
    def __init__(self, c: MERTConfig) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.output_dense = nn.Linear(c.intermediate_size, c.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.output_dense(F.gelu(self.intermediate_dense(x)))


class _EncoderLayer(nn.Module):
    def __init__(self, c: MERTConfig) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.feed_forward = _FeedForward(c)
        self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.pre_ln = c.do_stable_layer_norm
        self.alpha = math.pow(2.0 * c.num_hidden_layers, 0.25) if c.deepnorm else 1.0

    def forward(self, x: Tensor) -> Tensor:
        if self.pre_ln:
            x = x + self.attention(self.layer_norm(x))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(self.alpha * x + self.attention(x))
        return self.final_layer_norm(self.alpha * x + self.feed_forward(x))


class _Encoder(nn.Module):
    def __init__(self, c: MERTConfig) -> None:
        super().__init__()
        self.pos_conv_embed = _PosConv(c)
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(_EncoderLayer(c) for _ in range(c.num_hidden_layers))
        self.pre_ln = c.do_stable_layer_norm

    def forward(self, x: Tensor) -> list[Tensor]:
        """Hidden states as Hugging Face returns them: the transformer input, then each layer's output.

        Pre-LN models add one more state, the final LayerNorm of the last output (HF's ``last_hidden_state``).
        """
        x = x + self.pos_conv_embed(x)
        if not self.pre_ln:
            x = self.layer_norm(x)
        states = [x]
        for layer in self.layers:
            x = layer(x)
            states.append(x)
        if self.pre_ln:
            states.append(self.layer_norm(x))
        return states


_IGNORED_PREFIXES = ("masked_spec_embed", "label_embs_concat", "final_proj.", "project_q.", "quantizer.",
                     "lm_head.", "projector.", "classifier.")


def _normalise_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Strip wrapper prefixes (``hubert.``, ``mert_model.``…), rename new-style weight norm, drop heads."""
    out = {}
    for k, v in state.items():
        for pre in ("mert_model.", "hubert.", "wav2vec2.", "model.", "module."):
            if k.startswith(pre):
                k = k[len(pre):]
                break
        k = k.replace("conv.parametrizations.weight.original0", "conv.weight_g")
        k = k.replace("conv.parametrizations.weight.original1", "conv.weight_v")
        if k.startswith(_IGNORED_PREFIXES):
            continue
        out[k] = v
    return out


def _mert_available() -> tuple[bool, str]:
    return True, ""  # pure torch; weights are checked (and named) when built


class MERT(HiddenStatesEncoder):
    """MERT (Li et al. 2023) / HuBERT-style encoder from local weights; layers = the L+1 hidden states.

    Layer 0 is the transformer input (after the positional conv), layer i the output of block i, as in
    ``output_hidden_states=True`` of Hugging Face, which is what MERT's layer-wise probes use; pre-LN
    (``do_stable_layer_norm``) models add ``final_norm``, the normalised last state.
    Frame rate = sample_rate / ∏ conv strides (MERT-v1: 24000/320 = 75 Hz).
    """

    name = "mert"
    window_seconds: float | None = None

    def __init__(self, weights: str | Path | None = None, size: str = "95m", config: dict[str, Any] | None = None,
                 sha256: str | None = None, random_init: bool = False, seed: int = 0) -> None:
        nn.Module.__init__(self)
        path: Path | None = None
        cfg_dict: dict[str, Any] = dict(MERT_PRESETS[size]) if size in MERT_PRESETS else {}
        if size not in MERT_PRESETS:
            raise ValueError(f"mert: size must be one of {sorted(MERT_PRESETS)}, got {size!r}")
        if not random_init:
            path = _resolve(weights, ("model.safetensors", "pytorch_model.bin", "model.pt"), "mert")
            hf = path.parent / "config.json"
            if hf.is_file():
                cfg_dict = MERTConfig.from_hf(json.loads(hf.read_text())).model_dump(exclude_unset=True)
        cfg_dict.update(config or {})
        self.cfg = MERTConfig(**cfg_dict)
        with seeded(seed):  # same seed → same random weights, without touching the caller's global RNG
            self.feature_extractor = _FeatureEncoder(self.cfg)
            self.feature_projection = _FeatureProjection(self.cfg)
            self.encoder = _Encoder(self.cfg)
        self.sample_rate = self.cfg.sample_rate
        self.frame_rate = self.cfg.sample_rate / math.prod(self.cfg.conv_stride)
        self.layer_names = [f"hidden{i}" for i in range(self.cfg.num_hidden_layers + 1)]
        if self.cfg.do_stable_layer_norm:
            self.layer_names.append("final_norm")
        self.layer_dims = [self.cfg.hidden_size] * len(self.layer_names)
        self.weights_path = path
        if path is not None:
            if sha256 is not None and file_checksum(path) != sha256:
                raise WeightsError(f"{path}: checksum mismatch (expected {sha256[:16]}…)")
            state = _normalise_keys(read_state_dict(path))
            load_state(self, state, path, f"MERT config {self.cfg.model_dump()}")
        self.eval()

    @property
    def min_seconds(self) -> float:  # type: ignore[override]
        """The conv feature extractor's receptive field (valid convolutions: one frame needs it; 400 samples)."""
        n = 1
        for k, s in zip(reversed(self.cfg.conv_kernel), reversed(self.cfg.conv_stride)):
            n = (n - 1) * s + k
        return n / self.cfg.sample_rate

    def n_frames(self, n_samples: int) -> int:
        """Frames of the conv feature extractor (valid convolutions): ``⌊(n - k) / s⌋ + 1`` per layer."""
        n = n_samples
        for k, s in zip(self.cfg.conv_kernel, self.cfg.conv_stride):
            n = (n - k) // s + 1
        return max(0, n)

    def forward_layers(self, audio: Tensor) -> list[Tensor]:
        x = audio.float()
        if self.cfg.normalize_input:
            x = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-7)
        return self.encoder(self.feature_projection(self.feature_extractor(x)))



@register("mert", "external", "MERT/HuBERT-style encoder from local safetensors (weights=DIR|FILE; size=95m|330m|tiny)",
          available=_mert_available)
def _mert(**cfg: Any) -> Representation:
    return MERT(**cfg)


# ---------------------------------------------------------------------------------------------- MusicFM


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


class _MelDB(nn.Module):
    """Power mel spectrogram in dB (torchaudio MelSpectrogram + AmplitudeToDB defaults, without torchaudio).

    Buffers are named as torchaudio names them inside MusicFM (``melspec.spectrogram.window``,
    ``melspec.mel_scale.fb``) so a checkpoint's own window and filterbank are used when present.
    """

    def __init__(self, c: MusicFMConfig) -> None:
        super().__init__()
        import librosa

        self.n_fft, self.hop = c.n_fft, c.hop_length
        self.melspec = nn.Module()
        self.melspec.spectrogram = nn.Module()
        self.melspec.mel_scale = nn.Module()
        self.melspec.spectrogram.register_buffer("window", torch.hann_window(c.n_fft))
        fb = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=0.0,
                                 fmax=c.sample_rate / 2, htk=True, norm=None)
        self.melspec.mel_scale.register_buffer("fb", torch.as_tensor(fb.T, dtype=torch.float32).contiguous())

    def forward(self, x: Tensor) -> Tensor:
        spec = torch.stft(x, self.n_fft, self.hop, window=self.melspec.spectrogram.window, center=True,
                          pad_mode="reflect", return_complex=True).abs() ** 2
        mel = torch.matmul(spec.transpose(1, 2), self.melspec.mel_scale.fb).transpose(1, 2)
        return 10.0 * torch.log10(mel.clamp_min(1e-10))


class _Res2d(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, stride=2)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=1, stride=2)  # strided shortcut
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.bn3(self.conv3(x)))


class _ConvSubsampling(nn.Module):
    def __init__(self, c: MusicFMConfig) -> None:
        super().__init__()
        self.conv = nn.Sequential(_Res2d(1, c.conv_dim), _Res2d(c.conv_dim, c.conv_dim))
        self.linear = nn.Linear(c.conv_dim * (c.n_mels // 4), c.hidden_size)

    def forward(self, mel: Tensor) -> Tensor:
        y = self.conv(mel[:, None])  # [B, C, F/4, T/4]
        b, ch, f, t = y.shape
        return self.linear(y.permute(0, 3, 1, 2).reshape(b, t, ch * f))


_ACTIVATIONS = {"swish": F.silu, "silu": F.silu, "gelu": F.gelu, "relu": F.relu}


class _ConformerFF(nn.Module):
    def __init__(self, c: MusicFMConfig) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.output_dense = nn.Linear(c.intermediate_size, c.hidden_size)
        self.act = _ACTIVATIONS[c.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.output_dense(self.act(self.intermediate_dense(x)))


class _RotaryAttention(nn.Module):
    """Self-attention whose *input* (not q/k) is rotated per head, as transformers' rotary conformer does."""

    def __init__(self, c: MusicFMConfig) -> None:
        super().__init__()
        d = c.hidden_size
        self.heads, self.head = c.num_attention_heads, d // c.num_attention_heads
        self.linear_q, self.linear_k, self.linear_v, self.linear_out = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        b, t, d = x.shape
        xh = x.view(b, t, self.heads, self.head)
        half = self.head // 2
        rot = torch.cat([-xh[..., half:], xh[..., :half]], dim=-1)
        qk = (xh * cos[None, :, None] + rot * sin[None, :, None]).reshape(b, t, d)

        def split(y: Tensor) -> Tensor:
            return y.view(b, t, self.heads, self.head).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.linear_q(qk)), split(self.linear_k(qk)), split(self.linear_v(x)))
        return self.linear_out(y.transpose(1, 2).reshape(b, t, d))


class _ConvModule(nn.Module):
    def __init__(self, c: MusicFMConfig) -> None:
        super().__init__()
        d, k = c.hidden_size, c.conv_depthwise_kernel_size
        self.layer_norm = nn.LayerNorm(d)
        self.pointwise_conv1 = nn.Conv1d(d, 2 * d, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(d, d, k, padding=(k - 1) // 2, groups=d, bias=False)
        self.batch_norm = nn.BatchNorm1d(d)
        self.pointwise_conv2 = nn.Conv1d(d, d, 1, bias=False)
        self.act = _ACTIVATIONS[c.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        y = F.glu(self.pointwise_conv1(self.layer_norm(x).transpose(1, 2)), dim=1)
        y = self.pointwise_conv2(self.act(self.batch_norm(self.depthwise_conv(y))))
        return y.transpose(1, 2)


class _ConformerLayer(nn.Module):
    def __init__(self, c: MusicFMConfig) -> None:
        super().__init__()
        d = c.hidden_size
        self.ffn1_layer_norm, self.ffn1 = nn.LayerNorm(d), _ConformerFF(c)
        self.self_attn_layer_norm, self.self_attn = nn.LayerNorm(d), _RotaryAttention(c)
        self.conv_module = _ConvModule(c)
        self.ffn2_layer_norm, self.ffn2 = nn.LayerNorm(d), _ConformerFF(c)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = x + 0.5 * self.ffn1(self.ffn1_layer_norm(x))
        x = x + self.self_attn(self.self_attn_layer_norm(x), cos, sin)
        x = x + self.conv_module(x)
        x = x + 0.5 * self.ffn2(self.ffn2_layer_norm(x))
        return self.final_layer_norm(x)


class _Conformer(nn.Module):
    def __init__(self, c: MusicFMConfig) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(_ConformerLayer(c) for _ in range(c.num_hidden_layers))
        head = c.hidden_size // c.num_attention_heads
        self.inv_freq = 1.0 / (c.rotary_embedding_base ** (torch.arange(0, head, 2).float() / head))

    def forward(self, x: Tensor) -> list[Tensor]:
        freqs = torch.arange(x.shape[1], dtype=torch.float32)[:, None] * self.inv_freq
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos(), emb.sin()
        # Hugging Face's hidden_states, which MusicFM's get_latent(layer_ix) indexes: the input, the outputs
        # of every block but the last, and the last block's output after the encoder's LayerNorm.
        states = [x]
        for layer in self.layers:
            x = layer(x, cos, sin)
            states.append(x)
        states[-1] = self.layer_norm(x)
        return states


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
        path = None if random_init else _resolve(weights, ("model.safetensors", "pretrained_msd.pt",
                                                           "pretrained_fma.pt"), "musicfm")
        if path is not None and cfg.get("mel_mean") is None:
            stats = next((path.parent / n for n in _MUSICFM_STATS if (path.parent / n).is_file()), None)
            if stats is None:
                raise WeightsError(f"musicfm: expected {path.parent / _MUSICFM_STATS[0]} (MusicFM's data/*_stats.json "
                                   f"with melspec_2048_mean/std) or config={{'mel_mean':…, 'mel_std':…}}")
            st = json.loads(stats.read_text())
            cfg.update(mel_mean=float(st["melspec_2048_mean"]), mel_std=float(st["melspec_2048_std"]))
        cfg["mel_mean"] = 0.0 if cfg.get("mel_mean") is None else cfg["mel_mean"]
        cfg["mel_std"] = 1.0 if cfg.get("mel_std") is None else cfg["mel_std"]
        self.cfg = MusicFMConfig(**cfg)
        with seeded(seed):  # same seed → same random weights, without touching the caller's global RNG
            self.preprocessor_melspec_2048 = _MelDB(self.cfg)
            self.conv = _ConvSubsampling(self.cfg)
            self.conformer = _Conformer(self.cfg)
        self.sample_rate = self.cfg.sample_rate
        self.frame_rate = self.cfg.sample_rate / self.cfg.hop_length / 4
        self.layer_names = [f"hidden{i}" for i in range(self.cfg.num_hidden_layers + 1)]
        self.layer_dims = [self.cfg.hidden_size] * len(self.layer_names)
        self.weights_path = path
        if path is not None:
            state = {}
            for k, v in read_state_dict(path).items():
                k = k[len("model."):] if k.startswith("model.") else k
                if not k.startswith(_MUSICFM_IGNORED):
                    state[k] = v
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


# ------------------------------------------------------------------------------------ generic torch module


class TorchModuleRep(Representation):
    """Any ``nn.Module`` (or TorchScript module) mapping ``[B, samples]`` → ``[B, T, H]`` or a list of them.

    Each returned tensor is a layer; ``[B, H]`` outputs count as one frame. ``frame_rate`` is given, or
    inferred from a probe forward pass on one second of silence (frames per second of input).
    """

    name = "torch-module"
    window_seconds: float | None = None

    def __init__(self, module: nn.Module, sample_rate: int = 16_000, frame_rate: float | None = None,
                 source: str = "", layer_names: list[str] | None = None) -> None:
        self.module = module.eval()
        self.sample_rate = int(sample_rate)
        self.source = source
        with torch.inference_mode():
            probe = self._layers(torch.zeros(1, self.sample_rate))
        self.frame_rate = float(frame_rate) if frame_rate else float(min(p.shape[1] for p in probe))
        self.layer_dims = [p.shape[2] for p in probe]
        self.layer_names = layer_names or [f"out{i}" for i in range(len(probe))]
        if len(self.layer_names) != len(probe):
            raise ValueError(f"{source}: layer_names has {len(self.layer_names)} names, module gives {len(probe)} outputs")

    def _layers(self, audio: Tensor) -> list[Tensor]:
        out = self.module(audio)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        fixed = []
        for o in outs:
            if not isinstance(o, Tensor) or o.ndim not in (2, 3):
                raise ValueError(f"{self.source}: forward must return [B, T, H] or [B, H] tensors "
                                 f"(or a list of them), got {type(o).__name__} {getattr(o, 'shape', '')}")
            fixed.append(o[:, None] if o.ndim == 2 else o)
        return fixed

    def embed(self, audio: Tensor) -> Tensor:
        return align_layers([o.float() for o in self._layers(audio)])[0]

    def config(self) -> dict[str, Any]:
        return {"source": self.source, "sample_rate": self.sample_rate}

    def weights_checksum(self) -> str:
        return state_checksum(self.module)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


@register("torchscript", "external", "a TorchScript file (path=FILE): forward [B,samples] → [B,T,H] or list")
def _torchscript(path: str | Path | None = None, sample_rate: int = 16_000, frame_rate: float | None = None,
                 layer_names: list[str] | None = None) -> Representation:
    p = _resolve(path, ("model.pt",), "torchscript", arg="path")
    try:
        mod = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"{p}: not a TorchScript file ({str(exc).splitlines()[0]})") from None
    rep = TorchModuleRep(mod, sample_rate, frame_rate, source=str(p), layer_names=layer_names)
    rep.name = "torchscript"
    return rep


@register("torch-module", "external", "any nn.Module: module='pkg.mod:Class', init={...}, weights=FILE")
def _torch_module(module: str | None = None, init: dict[str, Any] | None = None, weights: str | Path | None = None,
                  sample_rate: int = 16_000, frame_rate: float | None = None,
                  layer_names: list[str] | None = None, strict: bool = True) -> Representation:
    if module is None:
        raise ValueError("torch-module: pass module='package.module:ClassName' (and weights=FILE)")
    mod_name, _, cls_name = module.partition(":")
    if not cls_name:
        raise ValueError(f"torch-module: module must look like 'package.module:ClassName', got {module!r}")
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"torch-module: cannot import {module!r} ({exc})") from None
    net: nn.Module = cls(**(init or {}))
    if weights is not None:
        p = _resolve(weights, ("model.safetensors", "model.pt"), "torch-module")
        load_state(net, read_state_dict(p), p, module, strict=strict)
    rep = TorchModuleRep(net, sample_rate, frame_rate, source=module, layer_names=layer_names)
    rep.name = "torch-module"
    return rep

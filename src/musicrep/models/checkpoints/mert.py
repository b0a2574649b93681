"""MERT (Li et al. 2023) / HuBERT / wav2vec2-style encoders from local weight files.

Registers ``mert``: audio ``[B, samples]`` at the model's rate (MERT-v1: 24 kHz) → ``[B, L, T, H]``, the
``L = num_hidden_layers + 1`` hidden states (plus ``final_norm`` for pre-LN models) at
``sample_rate / ∏ conv strides`` (MERT-v1: 75 Hz). Parameter names follow Hugging Face ``transformers``
(``feature_extractor.conv_layers.0.conv.weight``, ``encoder.layers.3.attention.q_proj.weight``, …), so the
published ``model.safetensors`` of m-a-p/MERT-v1-95M loads as is; ``config.json`` beside the weights (the
Hugging Face one) sets the sizes, otherwise ``size=`` picks a preset.

Why implement the architecture here instead of depending on ``transformers``: it keeps the package torch-only,
and the model is small (conv stack, weight-normed positional conv, post- or pre-LN transformer). The tests
check it against ``transformers.HubertModel`` on tiny random weights when that is installed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.nn import functional as F

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError, file_checksum, load_state
from musicrep.models.checkpoints.blocks import HiddenStatesEncoder
from musicrep.models.checkpoints.weights import read_json, read_state_dict, release_state, resolve_weights
from musicrep.models.encoder import seeded

__all__ = ["MERT", "MERTConfig", "MERT_PRESETS"]


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

    Stored as ``weight_g``/``weight_v`` (the classic names); the loader maps the newer
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


#: How the released state dicts differ from our key names: the wrapper each was saved under, the newer
#: weight-norm names (transformers >= 4.40), and pretraining-only heads / targets inference does not use.
_WRAPPER_PREFIXES = ("mert_model.", "hubert.", "wav2vec2.", "model.", "module.")
_WEIGHT_NORM_RENAMES = {"conv.parametrizations.weight.original0": "conv.weight_g",
                        "conv.parametrizations.weight.original1": "conv.weight_v"}
_IGNORED_PREFIXES = ("masked_spec_embed", "label_embs_concat", "final_proj.", "project_q.", "quantizer.",
                     "lm_head.", "projector.", "classifier.")


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
            path = resolve_weights(weights, ("model.safetensors", "pytorch_model.bin", "model.pt"), "mert")
            hf = path.parent / "config.json"
            if hf.is_file():
                cfg_dict = MERTConfig.from_hf(read_json(hf, "the Hugging Face config")).model_dump(exclude_unset=True)
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
            state = release_state(read_state_dict(path), _WRAPPER_PREFIXES, _IGNORED_PREFIXES, _WEIGHT_NORM_RENAMES)
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


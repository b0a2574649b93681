"""Building blocks shared by the checkpoint models: the dB-mel front-end, conv subsampling, the rotary conformer.

MusicFM (Won et al. 2024) and MuQ (Zhu et al. 2025) have the same inference path: a torchaudio power mel
spectrogram in dB, two strided residual conv blocks (time and frequency ÷4), and ``transformers``'
Wav2Vec2-Conformer encoder with rotary positions. Module and parameter names here are the releases' own
(``conv.conv.0.conv1.weight``, ``conformer.layers.3.self_attn.linear_q.weight``, ``melspec.mel_scale.fb``), so a
released state dict loads as it is. :class:`HiddenStatesEncoder` is the base of MERT, MusicFM and MuQ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel
from torch import Tensor, nn
from torch.nn import functional as F

from musicrep.models.base import TorchEncoder

__all__ = ["ACTIVATIONS", "ConformerLayer", "ConformerSizes", "ConvSubsampling", "HiddenStatesEncoder", "MelDB",
           "RotaryConformer"]


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


class MelDB(nn.Module):
    """Power mel spectrogram in dB, as torchaudio ``MelSpectrogram`` + ``AmplitudeToDB`` (defaults) compute it.

    Centred, reflect-padded Hann STFT (``n_fft``, hop ``hop_length``), power 2, HTK mel filters from 0 Hz to
    ``sample_rate / 2`` without norm, then ``10·log10(max(S, 1e-10))``; no torchaudio needed. Audio
    ``[B, samples]`` → ``[B, n_mels, 1 + samples // hop_length]`` in dB.

    Buffers are named as torchaudio names them inside MusicFM and MuQ (``melspec.spectrogram.window``,
    ``melspec.mel_scale.fb``). ``stored=True`` keeps them in the state dict, so a checkpoint's own window and
    filterbank are used when present (MusicFM); ``stored=False`` leaves them out of checkpoints and of the
    weights checksum, as they are a function of the config (MuQ's release has no front-end tensors).
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, stored: bool = False) -> None:
        super().__init__()
        import librosa

        self.n_fft, self.hop = n_fft, hop_length
        self.melspec = nn.Module()
        self.melspec.spectrogram = nn.Module()
        self.melspec.mel_scale = nn.Module()
        self.melspec.spectrogram.register_buffer("window", torch.hann_window(n_fft), persistent=stored)
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sample_rate / 2,
                                 htk=True, norm=None)
        self.melspec.mel_scale.register_buffer("fb", torch.as_tensor(fb.T, dtype=torch.float32).contiguous(),
                                               persistent=stored)

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


class ConvSubsampling(nn.Module):
    """Two strided residual conv blocks on the mel (time and frequency ÷2 each), then a linear projection.

    ``mel [B, n_mels, T]`` → ``[B, ⌈⌈T/2⌉/2⌉, hidden_size]``. (MuQ's 50 Hz variant sets the second block's
    time stride to 1 after construction.)
    """

    def __init__(self, n_mels: int, conv_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_Res2d(1, conv_dim), _Res2d(conv_dim, conv_dim))
        self.linear = nn.Linear(conv_dim * (n_mels // 4), hidden_size)

    def forward(self, mel: Tensor) -> Tensor:
        y = self.conv(mel[:, None])  # [B, C, F/4, T/4]
        b, ch, f, t = y.shape
        return self.linear(y.permute(0, 3, 1, 2).reshape(b, t, ch * f))


#: Conformer activations by their ``transformers`` config name (``hidden_act``).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"swish": F.silu, "silu": F.silu, "gelu": F.gelu,
                                                      "relu": F.relu}


@dataclass(frozen=True)
class ConformerSizes:
    """The sizes of a rotary Wav2Vec2-Conformer encoder (field names as in its ``transformers`` config)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    conv_depthwise_kernel_size: int
    hidden_act: str = "swish"
    rotary_embedding_base: float = 10_000.0
    layer_norm_eps: float = 1e-5


class _ConformerFF(nn.Module):
    def __init__(self, c: ConformerSizes) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.output_dense = nn.Linear(c.intermediate_size, c.hidden_size)
        self.act = ACTIVATIONS[c.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.output_dense(self.act(self.intermediate_dense(x)))


class _RotaryAttention(nn.Module):
    """Self-attention whose *input* (not q/k) is rotated per head, as transformers' rotary conformer does."""

    def __init__(self, c: ConformerSizes) -> None:
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
    def __init__(self, c: ConformerSizes) -> None:
        super().__init__()
        d, k = c.hidden_size, c.conv_depthwise_kernel_size
        self.layer_norm = nn.LayerNorm(d)
        self.pointwise_conv1 = nn.Conv1d(d, 2 * d, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(d, d, k, padding=(k - 1) // 2, groups=d, bias=False)
        self.batch_norm = nn.BatchNorm1d(d)
        self.pointwise_conv2 = nn.Conv1d(d, d, 1, bias=False)
        self.act = ACTIVATIONS[c.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        y = F.glu(self.pointwise_conv1(self.layer_norm(x).transpose(1, 2)), dim=1)
        y = self.pointwise_conv2(self.act(self.batch_norm(self.depthwise_conv(y))))
        return y.transpose(1, 2)


class ConformerLayer(nn.Module):
    """One conformer block: ½ feed-forward, rotary self-attention, conv module, ½ feed-forward, LayerNorm.

    ``x [B, T, hidden_size]`` plus the rotary ``cos``/``sin`` ``[T, head_dim]`` → ``[B, T, hidden_size]``.
    """

    def __init__(self, c: ConformerSizes) -> None:
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


class RotaryConformer(nn.Module):
    """``transformers``' Wav2Vec2-Conformer encoder with rotary positions (no positional conv), inference only."""

    def __init__(self, c: ConformerSizes) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(ConformerLayer(c) for _ in range(c.num_hidden_layers))
        head = c.hidden_size // c.num_attention_heads
        self.inv_freq = 1.0 / (c.rotary_embedding_base ** (torch.arange(0, head, 2).float() / head))

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x [B, T, hidden_size]`` → the encoder's ``hidden_states`` with ``output_hidden_states=True``
        (``transformers`` 4.x), ``num_hidden_layers + 1`` tensors ``[B, T, hidden_size]``.

        That is each block's *input* (so the conformer input, then the outputs of blocks 1 … N-1), and
        finally the encoder LayerNorm of block N's output; block N's raw output is not among them. MusicFM's
        ``get_latent(layer_ix)`` and MuQ's ``hidden_states`` index this tuple.
        """
        freqs = torch.arange(x.shape[1], dtype=torch.float32, device=x.device)[:, None] * self.inv_freq.to(x.device)
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        states = []
        for layer in self.layers:
            states.append(x)
            x = layer(x, cos, sin)
        states.append(self.layer_norm(x))
        return states

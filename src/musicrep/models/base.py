"""The representation contract: audio ``[B, samples]`` → every layer, every frame ``[B, L, T, H]``.

Everything the evaluation loop consumes — a handcrafted feature, an untrained "random twin", a trained
checkpoint, an external pretrained model — is a :class:`Representation`. Downstream code (extraction,
store, probes, studies) sees only this interface, so a checkpoint written by pretraining becomes a
representation by passing ``weights=`` to the registry, with no special case anywhere.

Why ``[B, L, T, H]`` with padding: layers of a CNN differ in width and time resolution, but one dense
tensor keeps batching, storage and layer-wise probing simple (the MARBLE v2 choice). Layers are aligned
in time to the representation's ``frame_rate`` and zero-padded in width to ``H = max(layer_dims)``;
``layer_dims[l]`` says how many leading features of layer ``l`` are real, and consumers slice to it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from musicrep.audio import ClipTooShortError
from musicrep.util import sha256_file

__all__ = ["Representation", "TorchEncoder", "align_layers", "state_checksum", "load_state", "load_weights",
           "WeightsError", "fold_batchnorm", "for_inference", "CHECKPOINT_WEIGHTS", "CHECKPOINT_MODEL",
           "read_checkpoint_model"]

#: In a checkpoint folder written by ``musicrep pretrain``: the encoder's state dict …
CHECKPOINT_WEIGHTS = "weights.safetensors"
#: … and ``{"name": registry name, "config": the encoder's config()}``, enough to rebuild the encoder.
CHECKPOINT_MODEL = "model.json"


class WeightsError(FileNotFoundError):
    """Weights are missing, unreadable or do not match the architecture; the message names the file."""


def state_checksum(module: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) over a module's parameters and buffers, in name order.

    Why: the representation id must change when the weights change (a new checkpoint, another seed) and
    stay the same otherwise, so the embedding store can be keyed by it.
    """
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.detach().float().numpy().tobytes())
    return h.hexdigest()[:16]


def file_checksum(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex); the same hash as :func:`musicrep.util.sha256_file`."""
    return sha256_file(path)


def read_checkpoint_model(folder: str | Path, name: str | None = None) -> dict[str, Any]:
    """The ``{"name", "config"}`` of a checkpoint folder (``FOLDER/model.json``, written by pretraining).

    With ``name``, the checkpoint must be of that representation. Raises :class:`WeightsError` naming the
    file when it is missing, unreadable or of another encoder.
    """
    p = Path(folder) / CHECKPOINT_MODEL
    if not p.is_file():
        raise WeightsError(f"{p}: not found; a checkpoint folder written by `musicrep pretrain` holds "
                           f"{CHECKPOINT_MODEL} and {CHECKPOINT_WEIGHTS}")
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
        saved, config = str(info["name"]), dict(info.get("config") or {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{p}: unreadable ({exc}); expected {{\"name\": ..., \"config\": {{...}}}}") from None
    if name is not None and saved != name:
        raise WeightsError(f"{p}: a {saved} checkpoint, not {name}; use name: {saved}")
    return {"name": saved, "config": config}


def load_weights(module: nn.Module, path: str | Path, sha256: str | None = None, strict: bool = True) -> nn.Module:
    """Load a ``.safetensors`` (preferred) or ``.pt`` state dict into ``module``, verifying its checksum.

    ``.pt`` files are read with ``torch.load(weights_only=True)`` so no pickled code ever runs. If
    ``sha256`` is given it must match the file (or ``<file>.sha256`` beside it, when present). A folder
    (a pretraining checkpoint) means its :data:`CHECKPOINT_WEIGHTS`.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_WEIGHTS
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found; pass the path of a .safetensors file written by "
                           f"musicrep (or convert a checkpoint) with weights=PATH")
    expected = sha256
    side = p.with_suffix(p.suffix + ".sha256")
    if expected is None and side.is_file():
        expected = side.read_text().split()[0]
    if expected is not None:
        got = file_checksum(p)
        if got != expected:
            raise WeightsError(f"{p}: checksum mismatch (expected {expected[:16]}…, file has {got[:16]}…)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad weights file
        raise WeightsError(f"{p}: cannot read weights ({exc})") from None
    return load_state(module, state, p, strict=strict)


def load_state(module: nn.Module, state: dict[str, Any], path: str | Path, what: str = "this architecture",
               strict: bool = True) -> nn.Module:
    """``module.load_state_dict(state)``, with a mismatch reported as a :class:`WeightsError` that names
    the file, what it was loaded into, and torch's first two lines (the missing / unexpected keys)."""
    try:
        module.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        raise WeightsError(f"{path}: weights do not fit {what} ({': '.join(x.strip() for x in lines[:2])})") from None
    return module


def align_layers(layers: list[Tensor], frames: int | None = None) -> tuple[Tensor, list[int]]:
    """Stack per-layer ``[B, T_l, H_l]`` into ``[B, L, T, H]``.

    Time is average-pooled (or repeated) to ``frames`` (default: the fewest frames of any layer), width is
    zero-padded to the widest layer. Returns the stacked tensor and the true widths.
    """
    if not layers:
        raise ValueError("an encoder must expose at least one layer")
    t = frames if frames is not None else min(x.shape[1] for x in layers)
    h = max(x.shape[2] for x in layers)
    out = layers[0].new_zeros((layers[0].shape[0], len(layers), t, h))
    for i, x in enumerate(layers):
        if x.shape[1] != t:
            x = nn.functional.adaptive_avg_pool1d(x.transpose(1, 2), t).transpose(1, 2)
        out[:, i, :, : x.shape[2]] = x
    return out, [x.shape[2] for x in layers]


class Representation(ABC):
    """Anything that maps audio to ``[B, L, T, H]``.

    Subclasses set ``name``, ``sample_rate``, ``frame_rate``, ``layer_names``, ``layer_dims`` and
    ``window_seconds`` and implement :meth:`embed`. ``window_seconds`` is the input length the model is
    built for (``None``: any length); extraction cuts audio into windows of that length.

    Short clips: :meth:`embed` takes any input of at least :attr:`min_seconds` (0 for most: front-ends
    frame a zero-padded signal, encoders pool whatever frames there are) and gives ``T ≥ 1`` frames; a
    representation with a real minimum (a reflect-padded STFT, valid convolutions) declares it there and
    raises :class:`~musicrep.audio.ClipTooShortError` via :meth:`check_length` below it.
    """

    name: str = "representation"
    #: a torch encoder whose 2-D convolutions run faster in channels-last (NHWC) memory layout
    prefers_channels_last: bool = False
    sample_rate: int = 16_000
    frame_rate: float = 100.0
    layer_names: list[str]
    layer_dims: list[int]
    window_seconds: float | None = 3.0
    #: the shortest input :meth:`embed` accepts, in seconds (0: any length)
    min_seconds: float = 0.0
    #: Raised when a code change alters what :meth:`embed` returns for the same config and weights (layers
    #: added, removed or renumbered), so stores keyed by the old :attr:`id` are not reused.
    revision: int = 1

    @abstractmethod
    def embed(self, audio: Tensor) -> Tensor:
        """``audio [B, samples]`` at :attr:`sample_rate` → ``[B, L, T, H]`` float32."""

    def config(self) -> dict[str, Any]:
        """The settings that, with the weights, determine the output (part of :attr:`id`)."""
        return {}

    def weights_checksum(self) -> str:
        """Checksum of whatever parameters the representation has ("none" for parameter-free ones)."""
        return "none"

    @property
    def id(self) -> str:
        """Stable id: ``name-<hash of config>-<weights checksum>``; the embedding store is keyed by it.

        A :attr:`revision` above 1 joins the hashed config (revision 1 adds nothing, so ids made before
        revisions existed still find their stores)."""
        settings = self.config()
        if self.revision != 1:
            settings = {**settings, "__revision__": self.revision}
        cfg = json.dumps(settings, sort_keys=True, default=str)
        return f"{self.name}-{hashlib.sha256(cfg.encode()).hexdigest()[:8]}-{self.weights_checksum()[:12]}"

    def n_frames(self, n_samples: int) -> int:
        """Frames ``T`` that :meth:`embed` returns for an input of ``n_samples``.

        Default: ``max(1, round(n_samples / sample_rate * frame_rate))``, so ``frame_rate`` is exact for
        any input length (a 3 s window at 6.25 Hz gives 19 frames; frame ``t`` covers
        ``[t / frame_rate, (t + 1) / frame_rate)`` seconds). Representations framed differently (e.g.
        librosa-style centred frames, ``1 + n_samples // hop``) override this and say so.
        """
        return max(1, int(round(n_samples / self.sample_rate * self.frame_rate)))

    def check_length(self, n_samples: int) -> None:
        """Raise :class:`~musicrep.audio.ClipTooShortError` (naming :attr:`min_seconds`) when an input of
        ``n_samples`` is shorter than :meth:`embed` accepts."""
        if n_samples < self.min_seconds * self.sample_rate - 1e-9:
            raise ClipTooShortError(self.name, self.min_seconds, n_samples / self.sample_rate)

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    @property
    def n_params(self) -> int:
        return 0

    def __call__(self, audio: Tensor | np.ndarray) -> Tensor:
        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim == 1:
            x = x.unsqueeze(0)
        with torch.inference_mode():
            return self.embed(x)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} layers={self.n_layers} frame_rate={self.frame_rate:g}>"


class TorchEncoder(nn.Module, Representation):
    """A trainable encoder: subclasses build layers in ``__init__`` and implement :meth:`forward_layers`.

    ``forward_layers(audio) -> list[Tensor[B, T_l, H_l]]`` returns every block's output (time-major);
    :meth:`embed` aligns them with :func:`align_layers`. ``forward(audio)`` returns the last layer
    ``[B, T, H]`` so pretraining objectives can use the encoder like any ``nn.Module``.
    """

    def __init__(self) -> None:
        nn.Module.__init__(self)
        self._config: dict[str, Any] = {}

    @abstractmethod
    def forward_layers(self, audio: Tensor) -> list[Tensor]:
        """``audio [B, samples]`` → per-layer ``[B, T_l, H_l]``."""

    def forward(self, audio: Tensor) -> Tensor:  # type: ignore[override]
        return self.forward_layers(audio)[-1]

    def embed(self, audio: Tensor) -> Tensor:
        # aligned to n_frames() so the declared frame_rate holds exactly whatever each layer's own rate
        stacked, _ = align_layers(self.forward_layers(audio), frames=self.n_frames(audio.shape[-1]))
        return stacked

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def weights_checksum(self) -> str:
        return state_checksum(self)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # nn.Module semantics (forward), not Representation's
        return nn.Module.__call__(self, *args, **kwargs)


def fold_batchnorm(module: torch.nn.Module) -> int:
    """Fold every eval-mode ``BatchNorm`` that directly follows a convolution in an ``nn.Sequential`` into
    that convolution's weights (``torch.nn.utils.fusion.fuse_conv_bn_eval``), in place; returns how many.

    Why: at inference a batch norm is a fixed per-channel affine map, so conv→BN is one conv with rescaled
    weights and a bias. On CPU the separate BN pass over the feature map is a large share of a small CNN's
    time (measured: the small VGG runs 1.5× faster folded). Only conv→BN pairs inside one ``Sequential``
    are folded: there the conv's output reaches nothing but the BN, so the fold cannot change what any
    other path sees. The BN is replaced by ``nn.Identity`` so child positions stay the same.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    convs = (torch.nn.Conv1d, torch.nn.Conv2d)
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    n = 0
    for seq in [m for m in module.modules() if isinstance(m, torch.nn.Sequential)]:
        children = list(seq.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:]):
            if (isinstance(a, convs) and isinstance(b, norms) and not a.training and not b.training
                    and b.track_running_stats and a.out_channels == b.num_features):
                setattr(seq, name_a, fuse_conv_bn_eval(a, b))
                setattr(seq, name_b, torch.nn.Identity())
                n += 1
    return n


def for_inference(model: Representation) -> Representation:
    """The module extraction runs: eval mode, batch norms folded into their convolutions, channels-last
    weights for encoders that prefer them (oneDNN's NHWC convolutions and pools).

    Folding changes the weights, so it happens on a copy: ``model`` keeps its weights and therefore its
    id (the store key), and the caller's object is never altered behind its back. Encoders with nothing
    to fold are not copied (channels-last changes only the layout, and the weights checksum is
    layout-independent).
    """
    if not isinstance(model, torch.nn.Module):
        return model
    model.eval()
    runner = model
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        candidate = copy.deepcopy(model)
        if fold_batchnorm(candidate):
            runner = candidate
    if runner.prefers_channels_last:
        runner.to(memory_format=torch.channels_last)
    return runner

"""Any torch module from local files as a representation: a TorchScript file, or a class + its weights.

Registers ``torchscript`` (``path=FILE`` saved with ``torch.jit.save``) and ``torch-module``
(``module="pkg.mod:Class"`` + ``init={...}`` + ``weights=PATH``, safetensors or weights-only ``.pt``). The
module's forward maps audio ``[B, samples]`` to ``[B, T, H]`` (or ``[B, H]``), or a list/tuple of them, one
per layer; the representation gives ``[B, L, T, H]``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError, align_layers, load_state, state_checksum
from musicrep.models.checkpoints.weights import read_state_dict, resolve_weights

__all__ = ["TorchModuleRep"]


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
    p = resolve_weights(path, ("model.pt",), "torchscript", arg="path")
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
        p = resolve_weights(weights, ("model.safetensors", "model.pt"), "torch-module")
        load_state(net, read_state_dict(p), p, module, strict=strict)
    rep = TorchModuleRep(net, sample_rate, frame_rate, source=module, layer_names=layer_names)
    rep.name = "torch-module"
    return rep

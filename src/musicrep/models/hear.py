"""Any installed HEAR 2021 API module as a representation (registered as ``hear``).

``get("hear", module="hearbaseline", model_file_path="w.pt")`` (or the shorthand ``get("hear:hearbaseline")``)
imports the module, calls its ``load_model`` and exposes its embeddings as ``[B, L, T, H]``: one layer, the
module's timestamp embedding (plus, with ``scene=True``, the scene embedding repeated over time).
``frame_rate`` is read from the module's own timestamps on a probe clip of silence. The other direction —
a musicrep representation exposed as a HEAR module — is :mod:`musicrep.hear`.

Only PyTorch HEAR modules are supported (audio is passed as a torch tensor).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import Tensor, nn

from musicrep.models import register
from musicrep.models.base import Representation, state_checksum

__all__ = ["HearRepresentation"]


class HearRepresentation(Representation):
    """Any installed HEAR-API module as a representation (one layer: its timestamp embeddings).

    Only PyTorch HEAR modules are supported (audio is passed as a torch tensor). ``frame_rate`` is read
    from the module's own timestamps on a probe clip of ``probe_seconds`` of silence.
    """

    name = "hear"
    window_seconds: float | None = None

    def __init__(self, module: str | None = None, model_file_path: str = "", scene: bool = False,
                 probe_seconds: float = 2.0, load_kwargs: dict[str, Any] | None = None) -> None:
        if module is None:
            raise ValueError("hear: pass module=NAME of an installed HEAR-API module (e.g. module='hearbaseline')")
        try:
            self.module = importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"hear: cannot import HEAR module {module!r} ({exc}); pip install it") from None
        for fn in ("load_model", "get_timestamp_embeddings", "get_scene_embeddings"):
            if not hasattr(self.module, fn):
                raise AttributeError(f"hear: module {module!r} lacks {fn}(); not a HEAR-API module")
        self.module_name, self.model_file_path, self.scene = module, model_file_path, scene
        args = (model_file_path,) if model_file_path else ()
        self.model = self.module.load_model(*args, **(load_kwargs or {}))
        self.load_kwargs = load_kwargs or {}
        if isinstance(self.model, nn.Module):
            self.model.eval()
        self.sample_rate = int(self.model.sample_rate)
        with torch.inference_mode():
            _, ts = self.module.get_timestamp_embeddings(torch.zeros(1, int(probe_seconds * self.sample_rate)),
                                                         self.model)
        ts = torch.as_tensor(ts, dtype=torch.float64)[0]
        self.frame_rate = 1000.0 / float(torch.diff(ts).mean()) if ts.numel() > 1 else 1.0 / probe_seconds
        self.layer_names = ["timestamp"] + (["scene"] if scene else [])
        self.layer_dims = [int(self.model.timestamp_embedding_size)]
        if scene:
            self.layer_dims.append(int(self.model.scene_embedding_size))

    def embed(self, audio: Tensor) -> Tensor:
        emb, _ = self.module.get_timestamp_embeddings(torch.as_tensor(audio, dtype=torch.float32), self.model)
        emb = torch.as_tensor(emb, dtype=torch.float32)
        layers = [emb]
        if self.scene:
            sc = torch.as_tensor(self.module.get_scene_embeddings(audio, self.model), dtype=torch.float32)
            layers.append(sc[:, None].expand(-1, emb.shape[1], -1))
        h = max(x.shape[-1] for x in layers)
        out = emb.new_zeros((emb.shape[0], len(layers), emb.shape[1], h))
        for i, x in enumerate(layers):
            out[:, i, :, : x.shape[-1]] = x
        return out

    def config(self) -> dict[str, Any]:
        return {"module": self.module_name, "model_file_path": self.model_file_path, "scene": self.scene,
                "load_kwargs": self.load_kwargs}

    def weights_checksum(self) -> str:
        if isinstance(self.model, nn.Module):
            return state_checksum(self.model)
        return "none"

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters()) if isinstance(self.model, nn.Module) else 0


@register("hear", "external", "any installed HEAR-API module (module=NAME, model_file_path=…)")
def _hear(**cfg: Any) -> Representation:
    return HearRepresentation(**cfg)

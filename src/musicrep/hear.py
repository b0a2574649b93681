"""Our representations as a HEAR 2021 API module.

This module *is* a HEAR-API module for any musicrep representation::

    model = load_model("", rep="crepe", capacity="tiny")        # or MUSICREP_HEAR_REP=crepe
    emb, ts = get_timestamp_embeddings(audio, model)           # [n, T, H] float32, [n, T] ms
    scene = get_scene_embeddings(audio, model)                 # [n, H] float32

so ``hear-validator musicrep.hear`` and heareval can run on it. ``model_file_path`` is passed to the
representation as its weights (``weights=`` or, for ``torchscript``, ``path=``). The other direction — any
installed HEAR module as a representation (``get("hear", module=…)``) — is :mod:`musicrep.models.hear`.

Why these choices, following the HEAR rules (hear-validator 2021.0.2): the model is a ``torch.nn.Module``
exposing ``sample_rate`` and int ``scene_embedding_size``/``timestamp_embedding_size``; embeddings are
float32; timestamps are in milliseconds at regular intervals (±1 ms), one per frame. A timestamp embedding
is the chosen layers of one frame concatenated at their true widths (``layers="all"`` by default, the
HEAR baselines' habit); the scene embedding is its mean over the clip's frames. Representations built for
a fixed window (``window_seconds``) see the clip cut into consecutive windows by the same cutter as
extraction and ``musicrep embed`` (:func:`musicrep.embed.cut_windows`), so any length works.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from musicrep.embed import cut_windows
from musicrep.models import entry, get, names
from musicrep.models.base import Representation

__all__ = ["HearModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings"]

HEAR_SAMPLE_RATES = (16_000, 22_050, 44_100, 48_000)


class HearModel(nn.Module):
    """A musicrep representation dressed as a HEAR model (an ``nn.Module`` with the three attributes).

    ``layers``: ``"all"`` (concatenate every layer), ``"last"``, or a list of layer indices/names.
    """

    def __init__(self, rep: Representation, layers: str | int | list[int | str] = "all") -> None:
        super().__init__()
        self.rep = rep
        if isinstance(rep, nn.Module):
            self.encoder = rep  # registered so .to(device)/.eval() reach its parameters
        self.sample_rate = int(rep.sample_rate)
        if self.sample_rate not in HEAR_SAMPLE_RATES:
            raise ValueError(f"HEAR allows sample rates {HEAR_SAMPLE_RATES}; representation {rep.name} uses "
                             f"{self.sample_rate}")
        names = list(rep.layer_names)
        if layers == "all":
            idx = list(range(len(names)))
        elif layers == "last":
            idx = [len(names) - 1]
        else:
            idx = []
            for item in layers if isinstance(layers, list) else [layers]:
                if isinstance(item, str):
                    if item not in names:
                        raise KeyError(f"layer {item!r} not in {rep.name} layers {names}")
                    idx.append(names.index(item))
                else:
                    idx.append(int(item) % len(names))
        self.layer_idx = idx
        self.timestamp_embedding_size = int(sum(rep.layer_dims[i] for i in idx))
        self.scene_embedding_size = self.timestamp_embedding_size

    def frames(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """``audio [n, samples]`` → (embeddings ``[n, T, H]`` float32, frame centres ``[T]`` in seconds).

        A fixed-window representation sees the clip cut by the one cutter (:func:`musicrep.embed.cut_windows`)
        into consecutive windows (hop = window, so frames tile time); an uncovered tail gets an end-aligned
        window moved back onto the frame grid, of which only the frames past the previous window are kept.
        So no frame but those of a clip shorter than one window is computed on padding, and the timestamps
        stay regular (HEAR rule). Frames centred past the clip's end are dropped.
        """
        x = audio.detach().float().cpu()
        n, length = x.shape
        sr = self.sample_rate
        win = self.rep.window_seconds
        if win:
            w = int(round(win * sr))
            cuts = list(cut_windows([x.numpy()], w, w, pad=True, grid=w / self.rep.n_frames(w)))
            starts = np.array([s for s, _ in cuts], dtype=np.float64)
            batch = torch.from_numpy(np.stack([c for _, c in cuts], axis=1).reshape(n * len(cuts), w))
        else:
            w, starts, batch = length, np.zeros(1), x
        k = len(starts)
        with torch.inference_mode():
            e = self.rep.embed(batch)  # [n*k, L, T, H]
        t = e.shape[2]
        parts = [e[:, i, :, : self.rep.layer_dims[i]] for i in self.layer_idx]
        emb = torch.cat(parts, dim=-1).reshape(n, k, t, -1)
        # frame j of window i: centre at start_i + (j + offset) * step (offset 0 for centred framing)
        step = w / sr / t if win else 1.0 / self.rep.frame_rate
        offset = 0.0 if getattr(self.rep, "centered_frames", False) else 0.5
        centres = torch.from_numpy(starts / sr)[:, None] + (torch.arange(t, dtype=torch.float64) + offset) * step
        covered = torch.from_numpy(np.concatenate([[-np.inf], (starts[:-1] + w) / sr]))  # end of window i-1
        keep = (centres > covered[:, None] + 1e-9) & (centres <= length / sr + 1e-9)
        keep[0, 0] = True
        return emb[:, keep].float().contiguous(), centres[keep]


def load_model(model_file_path: str = "", rep: str | None = None, layers: str | int | list[int | str] = "all",
               **cfg: Any) -> HearModel:
    """HEAR ``load_model``: build representation ``rep`` (default ``$MUSICREP_HEAR_REP`` or ``vgg``).

    ``model_file_path`` (if non-empty) is the representation's weights; other keywords go to
    :func:`musicrep.models.get`.
    """
    name = rep or os.environ.get("MUSICREP_HEAR_REP", "vgg")
    if model_file_path:
        factory = entry(name).factory if name in names() else None
        params = inspect.signature(factory).parameters if factory else {}
        cfg.setdefault("path" if "path" in params and "weights" not in params else "weights", model_file_path)
    return HearModel(get(name, **cfg), layers=layers)


def _check(audio: Tensor, model: HearModel) -> Tensor:
    if not isinstance(audio, Tensor):
        audio = torch.as_tensor(np.asarray(audio))
    if audio.ndim != 2:
        raise ValueError(f"HEAR audio must be [n_sounds, n_samples], got shape {tuple(audio.shape)}")
    return audio


def get_timestamp_embeddings(audio: Tensor, model: HearModel) -> tuple[Tensor, Tensor]:
    """HEAR: ``audio [n, samples]`` → (``[n, T, timestamp_embedding_size]`` float32, ``[n, T]`` ms)."""
    audio = _check(audio, model)
    emb, centres = model.frames(audio)
    ts = (centres * 1000.0).float()[None].expand(emb.shape[0], -1).contiguous()
    return emb.to(audio.device), ts.to(audio.device)


def get_scene_embeddings(audio: Tensor, model: HearModel) -> Tensor:
    """HEAR: ``audio [n, samples]`` → ``[n, scene_embedding_size]`` float32 (mean over the clip's frames)."""
    audio = _check(audio, model)
    emb, _ = model.frames(audio)
    return emb.mean(dim=1).to(audio.device)

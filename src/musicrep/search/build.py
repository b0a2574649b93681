"""Audio → search index: embed a folder or a task's items with a representation, index one layer's timeline means.

Takes a representation (registry name + settings, or a built one), audio files (a folder, or a task
folder's items) and an embedding store; gives an :class:`~musicrep.search.index.Index` whose vectors are
one layer of each clip's timeline mean — exactly what :func:`musicrep.embed.extract` stores (windows of
the representation's input length every 2 s by default, frames averaged per window, windows averaged) — and
whose ``items`` say where each came from (``path``, ``key`` = the store's content hash; for a task also
``item``, ``task``, ``split``, ``label``, ``group``). ``index.json`` records the representation (name,
settings, id), the window and the layer, so :func:`query_file` embeds a query with :func:`musicrep.embed.embed_file`
the same way, and :func:`add_audio` adds files later through the same store.

Why the last layer by default: it is what a representation exposes as its embedding; ``layer=`` picks
another (a probe's layer scan says which layer suits a task best).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrep.audio import find_audio
from musicrep.embed import RepSpec, WindowConfig, embed_file, extract
from musicrep.models import Representation, get
from musicrep.search.index import Index, SearchError

__all__ = ["build_index", "add_audio", "query_file", "representation_of", "embed_files", "standardised"]


def _layer(rep: Representation, layer: int) -> int:
    if not -rep.n_layers <= layer < rep.n_layers:
        raise SearchError(f"layer {layer} is out of range for {rep.name} ({rep.n_layers} layers: 0..{rep.n_layers - 1}, "
                          "or -1 for the last)")
    return layer % rep.n_layers


def embed_files(rep: Representation, paths: Sequence[str | os.PathLike[str]], store: str | os.PathLike[str],
                window: WindowConfig, layer: int, *, batch_size: int = 16,
                progress: bool = True) -> tuple[np.ndarray, list[int], list[str], list[dict[str, str]]]:
    """Extract ``paths`` into ``store`` and read back one layer: ``(vectors [n_ok, H_layer], kept positions,
    their content keys, errors)``. Unreadable files are in ``errors`` (path, message) and left out."""
    ext = extract(rep, paths, store, window, batch_size=batch_size, progress=progress)
    kept = ext.ok()
    keys = [ext.keys[i] for i in kept]
    width = rep.layer_dims[layer]
    if not keys:
        return np.zeros((0, width), np.float32), [], [], ext.errors
    x, _ = ext.store.get(keys)  # type: ignore[arg-type]
    return np.ascontiguousarray(x[:, layer, :width]), kept, keys, ext.errors  # type: ignore[return-value]


def _rep(rep: str, config: dict[str, Any]) -> Representation:
    try:
        return get(rep, **config)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:  # unknown, unavailable or misconfigured
        raise SearchError(f"representation {rep!r}: {exc.args[0] if exc.args else exc}") from None


def _audio_items(folder: Path) -> tuple[list[Path], pd.DataFrame]:
    if not folder.is_dir():
        raise SearchError(f"{folder}: not a folder of audio files; give --audio DIR (searched recursively)")
    paths = find_audio(folder)
    if not paths:
        raise SearchError(f"{folder}: holds no audio files (looked for .wav, .flac, .mp3, .ogg, … recursively)")
    return paths, pd.DataFrame({"path": [str(p.resolve()) for p in paths]})


def _task_items(folder: Path, splits: Sequence[str] | None) -> tuple[list[Path], pd.DataFrame]:
    from musicrep.data.task import Task

    task = Task.load(folder)
    rows = task.items
    paths = task.paths()
    if splits:
        keep = rows["split"].isin(list(splits)).to_numpy()
        rows, paths = rows[keep], [p for p, k in zip(paths, keep) if k]
    if not paths:
        raise SearchError(f"{folder}: no items in split(s) {', '.join(splits or [])}; choose among train, valid, test")
    items = pd.DataFrame({"path": [str(p) for p in paths], "item": rows["id"].astype(str).to_numpy(),
                          "task": task.name, "split": rows["split"].to_numpy(),
                          "label": rows["label"].astype(str).to_numpy(), "group": rows["group"].astype(str).to_numpy()})
    return paths, items


def build_index(rep: str, *, audio: str | os.PathLike[str] | None = None,
                task: str | os.PathLike[str] | None = None, store: str | os.PathLike[str], config: dict[str, Any] | None = None,
                layer: int = -1, window: WindowConfig | None = None, splits: Sequence[str] | None = None,
                metric: str = "cosine", kind: str = "auto", batch_size: int = 16, standardise: bool = True,
                progress: bool = True) -> tuple[Index, list[dict[str, str]]]:
    """Embed ``audio`` (a folder, searched recursively) or ``task`` (a task folder; ``splits`` to keep some)
    with ``rep`` (a registry name, built with ``config``, e.g. ``{"size": "small", "seed": 0}``) into ``store`` and index one ``layer`` of each clip's timeline mean, ``[N, H_layer]``.

    ``standardise``: z-score each feature with the indexed clips' mean and standard deviation (kept in
    ``index.json``, applied to later queries and additions) before the metric. Without it, cosine on
    features with a large shared offset (MFCC's c0, non-negative ReLU outputs) scores every pair near 1.

    Returns the index (not yet saved: :meth:`Index.save`) and the files that could not be read (path,
    error), which are left out.

    Raises:
        SearchError: neither or both of ``audio`` / ``task``, no audio found, every file unreadable, a bad
            layer, metric or kind, or a representation that cannot be built.
        TaskError: ``task`` is not a valid task folder.
    """
    if (audio is None) == (task is None):
        raise SearchError("give exactly one of --audio DIR or --task TASK_DIR")
    config = dict(config or {})
    if "weights" in config:  # index.json must find the weights from wherever the query runs
        config["weights"] = str(Path(config["weights"]).resolve())
    model = _rep(rep, config)
    li = _layer(model, layer)
    window = (window or WindowConfig()).resolve(model)
    paths, items = _audio_items(Path(audio)) if audio is not None else _task_items(Path(task), splits)  # type: ignore[arg-type]
    x, kept, keys, errors = embed_files(model, paths, store, window, li, batch_size=batch_size, progress=progress)
    if not kept:
        raise SearchError(f"none of the {len(paths)} audio files could be read (first: {errors[0]['error'] if errors else '?'})")
    items = items.iloc[kept].reset_index(drop=True)
    items.insert(1, "key", keys)
    # the name and settings it was built from (what `get` takes), not model.config(), which is a description
    info: dict[str, Any] = {"representation": {"name": rep, "config": config, "id": model.id},
                            "window": window.model_dump(), "layer": li, "layer_name": model.layer_names[li]}
    if standardise:
        std = x.std(0, dtype=np.float64)
        info["standardise"] = {"mean": x.mean(0, dtype=np.float64).tolist(),
                               "scale": np.where(std > 1e-8, std, 1.0).tolist()}  # a constant feature maps to 0
    return Index.build(standardised(info, x), items, metric=metric, kind=kind, info=info), errors


def standardised(info: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """``x [N, D]`` z-scored with the statistics an audio index keeps in ``info["standardise"]`` (as is
    when it has none)."""
    stats = info.get("standardise")
    if not stats:
        return x
    return ((x - np.asarray(stats["mean"])) / np.asarray(stats["scale"])).astype(np.float32)


def representation_of(index: Index) -> tuple[Representation, WindowConfig, int]:
    """The representation, window and layer an audio index was built with (from ``index.json``).

    Raises:
        SearchError: the index was not built from audio, or the representation now has another id (its
            weights or code changed: rebuild the index).
    """
    spec = index.info.get("representation")
    if not spec:
        raise SearchError("this index was built from vectors, not audio: embed queries yourself and use Index.search")
    model = RepSpec(name=spec["name"], config=spec.get("config") or {}).build()
    if model.id != spec["id"]:
        raise SearchError(f"representation {spec['name']} is now {model.id}, but the index was built with {spec['id']} "
                          "(its weights or code changed); rebuild the index")
    return model, WindowConfig(**index.info["window"]), int(index.info["layer"])


def query_file(index: Index, path: str | os.PathLike[str], k: int = 10, *, batch_size: int = 16,
               exclude_self: bool = False) -> pd.DataFrame:
    """Embed one audio file as the index's items were (same representation, window, layer) and return its
    ``k`` neighbours: a table of ``rank``, ``score``, ``id`` and the items' metadata, best first.

    ``exclude_self`` drops items with the same content as the query (for "more like this" on an indexed file).

    Raises:
        AudioError: the file cannot be read. SearchError: see :func:`representation_of`.
    """
    model, window, layer = representation_of(index)
    e = embed_file(path, model, window, layers=[layer], batch_size=batch_size)
    q = standardised(index.info, e.mean[0, : model.layer_dims[layer]][None, :])
    if not exclude_self:
        return index.neighbours(q, k)[0]
    from musicrep.store import content_hash

    own = content_hash(path)
    table = index.neighbours(q, k + 1)[0]
    table = table[table["key"].astype(str) != own].head(k).reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table


def add_audio(index: Index, audio: str | os.PathLike[str], store: str | os.PathLike[str], *, batch_size: int = 16,
              progress: bool = True) -> tuple[int, list[dict[str, str]]]:
    """Embed the files under ``audio`` that the index does not hold yet (by content) and add them.

    Returns (number added, unreadable files). Raises :class:`SearchError` as :func:`representation_of`.
    """
    model, window, layer = representation_of(index)
    paths, items = _audio_items(Path(audio))
    x, kept, keys, errors = embed_files(model, paths, store, window, layer, batch_size=batch_size, progress=progress)
    seen = set(index.items["key"].astype(str)) if "key" in index.items else set()
    new = []
    for j, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            new.append(j)
    if not new:
        return 0, errors
    rows = items.iloc[[kept[j] for j in new]].reset_index(drop=True)
    rows.insert(1, "key", [keys[j] for j in new])
    index.add(standardised(index.info, x[new]), rows)
    return len(new), errors

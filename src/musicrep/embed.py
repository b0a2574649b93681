"""Extraction: audio files → windows → every layer → timeline mean, cached in an :class:`EmbeddingStore`.

Takes a representation (or a :class:`RepSpec` naming one), a list of audio paths and a
:class:`WindowConfig`; gives, for each readable file, a ``[L, H]`` timeline-mean embedding (and the
per-window ``[n_windows, L, H]`` when ``frames=True``) stored under (representation id, content hash,
window config).

Why windows of 3 s every 2 s (0.5 Hz) by default: that is how McCallum et al. embed a track — snippets
sampled along the timeline, each averaged over its frames, then averaged over the timeline. A task can
override it (one 4 s window for single notes).

How it stays bounded and resumable: work is cut into shards of ``shard_size`` files planned from the
sorted content hashes; each shard streams its files block by block (:func:`musicrep.audio.stream`),
fills fixed-size batches of windows across files, and is written atomically when complete. Memory is
set by ``batch_size`` and the shard's ``[n, L, H]`` accumulators, never by the catalog. A killed run
resumes at the first missing shard. A file that cannot be read is logged by name and skipped.

Executors: ``local`` (default, in-process) and ``ray`` (one Ray task per shard, same shard function, same
store; ``ray:ADDRESS`` joins an existing cluster).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from musicrep.audio import AudioError, load, stream
from musicrep.augment import apply as deform_audio
from musicrep.models import Representation, get
from musicrep.models.base import for_inference
from musicrep.store import EmbeddingStore, Shard, content_hash

__all__ = ["WindowConfig", "RepSpec", "ExtractResult", "EmbeddedFile", "extract", "embed_file", "cut_windows",
           "iter_windows", "plan_shards", "compute_shard", "store_key"]

log = logging.getLogger(__name__)


class WindowConfig(BaseModel):
    """How a track is cut into model inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: float | None = Field(None, gt=0, description="Window length; None → the representation's own "
                                         "input window (3 s for the encoders).")
    hop_seconds: float = Field(2.0, gt=0, description="Hop between windows (2 s → 0.5 Hz, McCallum et al.).")
    pad: bool = Field(True, description="Cover the whole clip: one end-aligned window for a tail the regular "
                      "windows miss, one zero-padded window for a clip shorter than a window (so no item is dropped).")
    frames: bool = Field(False, description="Also keep each window's embedding, not only the timeline mean.")

    def resolve(self, rep: Representation) -> WindowConfig:
        """Fill ``window_seconds`` from the representation when unset."""
        if self.window_seconds is not None:
            return self
        return self.model_copy(update={"window_seconds": rep.window_seconds or 3.0})

    def key(self, sample_rate: int) -> str:
        """Folder name in the store: everything that changes the stored numbers."""
        assert self.window_seconds is not None
        return (f"sr{sample_rate}-w{self.window_seconds:g}-h{self.hop_seconds:g}"
                f"{'-pad' if self.pad else ''}{'-frames' if self.frames else ''}")


class RepSpec(BaseModel):
    """A representation by registry name and constructor config — what crosses process boundaries."""

    model_config = ConfigDict(extra="forbid")

    name: str
    config: dict[str, Any] = Field(default_factory=dict)

    def build(self) -> Representation:
        return get(self.name, **self.config)


@dataclass
class ExtractResult:
    """What :func:`extract` did. ``keys[i]`` is item i's content hash, or ``None`` if it failed."""

    store: EmbeddingStore
    keys: list[str | None]
    errors: list[dict[str, str]] = field(default_factory=list)
    computed_shards: int = 0
    skipped_shards: int = 0

    def ok(self) -> list[int]:
        """Indices of items that have embeddings."""
        return [i for i, k in enumerate(self.keys) if k is not None]


def cut_windows(blocks: Iterable[np.ndarray], window: int, hop: int, pad: bool = True,
                grid: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
    """The one window cutter: ``(start, window)`` pairs from a signal given as consecutive blocks.

    ``blocks`` are ``[..., samples]`` arrays joined along the last axis (a file streamed block by block,
    or ``[y]`` for a signal already in memory; leading axes, e.g. a batch of equal-length clips, are cut
    alike). Windows of ``window`` samples start every ``hop`` samples; ``start`` is in samples. Extraction
    (:func:`iter_windows`), :func:`embed_file` (``musicrep embed``) and the HEAR export all cut here, so a
    file embedded any of these ways sees the same windows.

    With ``pad=True`` the whole clip is covered without inventing audio: a clip shorter than one window
    gives one zero-padded window (start 0), and a tail that the regular windows miss gets one extra window
    aligned to the end of the clip. Why not zero-pad the tail: a window that is one-third digital silence
    pulls the timeline mean (MFCC c0 of silence is about −980 dB), by an amount that depends on the clip's
    length modulo the hop — a hidden variable in every task with variable-length clips. ``grid`` moves that
    tail window back to the latest start that is a multiple of ``grid`` samples (1: exactly end-aligned);
    the HEAR export passes its frame step so the tail's frames fall on the regular timestamp grid. The
    tail window is given only if it starts after the last regular window.
    With ``pad=False`` only the regular full windows are given (none for a clip shorter than a window).

    Raises:
        ValueError: ``window``, ``hop`` or ``grid`` not positive.
    """
    if window <= 0 or hop <= 0 or grid <= 0:
        raise ValueError(f"window ({window}), hop ({hop}) and grid ({grid}) must be positive")
    buf: np.ndarray | None = None
    start = 0  # absolute sample index of buf[..., 0]
    nxt = 0  # absolute start of the next regular window
    total = 0
    last = -1  # start of the last regular window given
    reach = window + math.ceil(grid)  # a tail window starts at most `grid` samples before total - window
    for block in blocks:
        buf = block if buf is None or buf.shape[-1] == 0 else np.concatenate([buf, block], axis=-1)
        total += block.shape[-1]
        while nxt + window <= total:
            yield nxt, buf[..., nxt - start : nxt - start + window]
            last = nxt
            nxt += hop
        # keep what the next regular window needs, and the last samples an end-aligned tail could need
        keep_from = max(start, min(nxt, total - reach)) if total >= reach else start
        if keep_from > start:
            buf = buf[..., keep_from - start :]
            start = keep_from
    if not pad or total == 0 or buf is None:
        return
    if last < 0:  # shorter than one window
        w = np.zeros(buf.shape[:-1] + (window,), dtype=buf.dtype)
        w[..., :total] = buf[..., :total]
        yield 0, w
        return
    tail = int(math.floor((total - window) / grid) * grid)
    if tail > last:
        yield tail, buf[..., tail - start : tail - start + window]


def iter_windows(path: str | os.PathLike[str], sr: int, window: int, hop: int, pad: bool = True,
                 block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """The windows :func:`cut_windows` cuts from a file streamed at ``sr`` Hz (``[window]`` float32 each).

    Raises:
        AudioError: the file cannot be read (names the file).
    """
    for _, w in cut_windows(stream(path, sr, block_seconds=block_seconds), window, hop, pad=pad):
        yield w


def store_key(window: WindowConfig, sample_rate: int, deformation: str | None = None, deformation_seed: int = 0) -> str:
    """The store folder of a windowing, and of a deformation of the audio when there is one.

    Why a digest for the deformation: its canonical string may hold characters a folder name should not
    (``background@dir=/data/pool``); the string itself is kept in the store's ``meta.json``.
    """
    key = window.key(sample_rate)
    if deformation is None or deformation == "none":
        return key
    import hashlib

    return key + "-d" + hashlib.sha256(f"{deformation}\x00{int(deformation_seed)}".encode()).hexdigest()[:12]


def _file_windows(path: str, key: str, sr: int, win: int, hop: int, pad: bool, deformation: str | None,
                  deformation_seed: int) -> Iterator[np.ndarray]:
    """A file's windows; with a deformation the file is loaded whole, deformed (seeded by its content
    hash ``key``, so the same audio gets the same noise in every task) and cut in memory."""
    if deformation is None or deformation == "none":
        yield from iter_windows(path, sr, win, hop, pad=pad)
        return
    y = deform_audio(deformation, load(path, sr=sr), sr, item_id=key, seed=deformation_seed)
    for _, w in cut_windows([y], win, hop, pad=pad):
        yield w


def plan_shards(keys: Sequence[str], shard_size: int) -> list[list[str]]:
    """Split the sorted unique keys into shards of ``shard_size`` — deterministic for a given key set."""
    uniq = sorted(set(keys))
    return [uniq[i : i + shard_size] for i in range(0, len(uniq), shard_size)]


def _embed_windows(rep: Representation, windows: list[np.ndarray]) -> torch.Tensor:
    """``[n, samples]`` windows → every layer's frames ``[n, L, T, H]``."""
    x = torch.from_numpy(np.stack(windows))
    with torch.inference_mode():
        return rep.embed(x)


def _embed_batch(rep: Representation, windows: list[np.ndarray]) -> np.ndarray:
    """``[n, samples]`` windows → per-window frame means ``[n, L, H]``."""
    return _embed_windows(rep, windows).mean(dim=2).float().numpy()


def compute_shard(rep: Representation, files: dict[str, str], window: WindowConfig, batch_size: int = 16,
                  progress: Any = None, deformation: str | None = None,
                  deformation_seed: int = 0) -> tuple[Shard | None, list[dict[str, str]]]:
    """Embed the files of one shard (``key → path``, keys sorted), each deformed first when
    ``deformation`` is given (:mod:`musicrep.augment`). Returns the shard (None if every file failed) and
    the error records of files that could not be read."""
    assert window.window_seconds is not None
    sr = rep.sample_rate
    win, hop = int(round(window.window_seconds * sr)), int(round(window.hop_seconds * sr))
    keys = sorted(files)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {k: 0 for k in keys}
    per_window: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    errors: list[dict[str, str]] = []
    pending: list[np.ndarray] = []
    owners: list[str] = []

    def flush() -> None:
        if not pending:
            return
        emb = _embed_batch(rep, pending)
        for k, e in zip(owners, emb):
            if k in sums:
                sums[k] += e.astype(np.float64)
            else:
                sums[k] = e.astype(np.float64)
            counts[k] += 1
            if window.frames:
                per_window[k].append(e)
        pending.clear()
        owners.clear()

    failed: set[str] = set()
    for k in keys:
        try:
            n_before = len(pending)
            for w in _file_windows(files[k], k, sr, win, hop, window.pad, deformation, deformation_seed):
                pending.append(w)  # a view into the stream buffer; np.stack in _embed_batch copies once
                owners.append(k)
                if len(pending) >= batch_size:
                    flush()
            if counts[k] == 0 and len(pending) == n_before:
                raise AudioError(files[k], f"shorter than one {window.window_seconds:g} s window (pad=False)")
        except AudioError as exc:
            # drop any windows of this file already queued or embedded: an item is whole or absent
            keep = [i for i, o in enumerate(owners) if o != k]
            pending[:] = [pending[i] for i in keep]
            owners[:] = [owners[i] for i in keep]
            sums.pop(k, None)
            counts[k] = 0
            failed.add(k)
            errors.append({"key": k, "path": str(files[k]), "error": str(exc)})
            log.warning("skipping %s", exc)
        if progress is not None:
            progress(1)
    flush()
    good = [k for k in keys if k not in failed]
    if not good:
        return None, errors
    mean = np.stack([(sums[k] / counts[k]).astype(np.float32) for k in good])
    frames = offsets = None
    if window.frames:
        frames = np.concatenate([np.stack(per_window[k]) for k in good])
        offsets = np.concatenate([[0], np.cumsum([counts[k] for k in good])])
    return Shard(good, mean, np.array([counts[k] for k in good]), frames, offsets), errors


@dataclass
class EmbeddedFile:
    """One file embedded as extraction embeds it (:func:`embed_file`)."""

    mean: np.ndarray  #: ``[L, H]`` float32 timeline mean: the mean over windows of each window's frame mean
    starts: np.ndarray  #: ``[W]`` float64 window starts in seconds (a tail window may overlap the one before)
    frames: np.ndarray | None  #: ``[W, L, T, H]`` float32 every window's frames, or None unless asked for
    window: WindowConfig  #: the windowing used, resolved for the representation


def embed_file(path: str | os.PathLike[str], rep: Representation, window: WindowConfig | None = None, *,
               layers: Sequence[int] | None = None, frames: bool = False, batch_size: int = 16,
               block_seconds: float = 30.0) -> EmbeddedFile:
    """Embed one file exactly as :func:`extract` does for the store, without a store.

    The file is streamed, cut by :func:`cut_windows` with ``window`` (default: the store's, the
    representation's window every 2 s, padded), embedded in batches of ``batch_size`` windows by the
    inference copy (:func:`for_inference`), and reduced to the timeline mean the store holds (for the
    same file and window, equal to it up to float rounding). ``layers`` keeps a subset of L (indices
    into ``rep.layer_names``); ``frames=True`` also returns every window's frames (memory grows with the
    file's length; the mean alone is bounded by ``batch_size``).

    Raises:
        AudioError: the file cannot be read, or (``pad=False``) is shorter than one window.
    """
    window = (window or WindowConfig()).resolve(rep)
    assert window.window_seconds is not None
    sr = rep.sample_rate
    win, hop = int(round(window.window_seconds * sr)), int(round(window.hop_seconds * sr))
    idx = list(range(rep.n_layers)) if layers is None else [int(i) for i in layers]
    runner = for_inference(rep)
    total: np.ndarray | None = None
    starts: list[int] = []
    kept: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        nonlocal total
        if not pending:
            return
        e = _embed_windows(runner, pending)[:, idx]  # [n, L, T, H]
        means = e.mean(dim=2).float().numpy().astype(np.float64)  # as compute_shard accumulates
        total = means.sum(0) if total is None else total + means.sum(0)
        if frames:
            kept.append(e.float().numpy())
        pending.clear()

    for s, w in cut_windows(stream(path, sr, block_seconds=block_seconds), win, hop, pad=window.pad):
        starts.append(s)
        pending.append(w)
        if len(pending) >= batch_size:
            flush()
    flush()
    if total is None:
        raise AudioError(path, "holds no audio" if window.pad else f"shorter than one {window.window_seconds:g} s "
                         "window and padding is off; turn padding on or use a shorter window")
    return EmbeddedFile(mean=(total / len(starts)).astype(np.float32), starts=np.array(starts, dtype=np.float64) / sr,
                        frames=np.concatenate(kept).astype(np.float32) if frames else None, window=window)


def _rep_meta(rep: Representation, window: WindowConfig) -> dict[str, Any]:
    return {"representation": rep.name, "id": rep.id, "config": rep.config(), "layer_names": list(rep.layer_names),
            "layer_dims": list(rep.layer_dims), "sample_rate": rep.sample_rate, "frame_rate": rep.frame_rate,
            "window": window.model_dump()}


def extract(
    rep: Representation | RepSpec,
    paths: Sequence[str | os.PathLike[str]],
    store_root: str | os.PathLike[str],
    window: WindowConfig | None = None,
    *,
    batch_size: int = 16,
    shard_size: int = 32,
    executor: str = "local",
    progress: bool = True,
    deformation: str | None = None,
    deformation_seed: int = 0,
) -> ExtractResult:
    """Embed ``paths`` with ``rep`` into the store under ``store_root``, skipping finished shards.

    Args:
        rep: a representation, or a :class:`RepSpec` (required for ``executor="ray"``, where each worker
            builds its own copy).
        paths: audio files. Unreadable or missing files are reported in the result (and ``errors.jsonl``).
        store_root: folder holding every representation's store.
        window: windowing (default: the representation's window, 2 s hop, padded, timeline mean only).
        batch_size: windows per forward pass (sets peak memory).
        shard_size: files per atomic shard (the unit of resumption and of Ray tasks).
        executor: ``local`` or ``ray`` / ``ray:ADDRESS``.
        progress: show a progress bar over files.
        deformation: a :mod:`musicrep.augment` string (``"noise:pink@snr=10"``) applied to every file
            before windowing; its own store folder (:func:`store_key`), so deformed audio is cached like
            clean audio and never mixed with it. ``deformation_seed`` seeds its random choices.
    """
    spec = rep if isinstance(rep, RepSpec) else None
    model = spec.build() if spec is not None else rep
    assert isinstance(model, Representation)
    window = (window or WindowConfig()).resolve(model)
    if deformation is not None and deformation != "none":
        from musicrep.augment import parse

        deformation = str(parse(deformation))  # canonical, and a bad spec fails before any work
    else:
        deformation = None
    meta = {**_rep_meta(model, window), "deformation": deformation or "none", "deformation_seed": deformation_seed}
    store = EmbeddingStore(store_root, model.id, store_key(window, model.sample_rate, deformation, deformation_seed),
                           meta=meta)

    keys: list[str | None] = []
    errors: list[dict[str, str]] = []
    files: dict[str, str] = {}
    for p in paths:
        try:
            k = content_hash(p)
        except OSError as exc:
            keys.append(None)
            errors.append({"key": "", "path": str(p), "error": f"{p}: cannot read file ({exc.strerror or exc})"})
            continue
        keys.append(k)
        files.setdefault(k, str(p))

    done = store.index()
    shards = plan_shards(list(files), shard_size)
    todo = [s for s in shards if not all(k in done for k in s)]
    todo = [[k for k in s if k not in done] or s for s in todo]
    result = ExtractResult(store, keys, errors, skipped_shards=len(shards) - len(todo))
    if todo:
        if executor == "local":
            _run_local(model, store, files, todo, window, batch_size, progress, result, deformation, deformation_seed)
        elif executor.startswith("ray"):
            if spec is None:
                raise ValueError("executor='ray' needs a RepSpec (registry name + config) so workers can build it")
            _run_ray(spec, store_root, store, files, todo, window, batch_size, executor, result, deformation,
                     deformation_seed)
        else:
            raise ValueError(f"unknown executor {executor!r}; use 'local' or 'ray[:ADDRESS]'")
    store.index(refresh=True)
    # anything not in the store now failed (this run or, for its key, an earlier one)
    present = store.index()
    err_keys = {e["key"] for e in result.errors}
    for e in store.errors():
        if e["key"] not in present and e["key"] in files and e["key"] not in err_keys:
            result.errors.append(e)
            err_keys.add(e["key"])
    result.keys = [k if (k is not None and k in present) else None for k in keys]
    return result


def _run_local(model: Representation, store: EmbeddingStore, files: dict[str, str], todo: list[list[str]],
               window: WindowConfig, batch_size: int, progress: bool, result: ExtractResult,
               deformation: str | None = None, deformation_seed: int = 0) -> None:
    from tqdm.auto import tqdm

    runner = for_inference(model)
    total = sum(len(s) for s in todo)
    with tqdm(total=total, desc=f"embed {model.name}", unit="file", disable=not progress, leave=False) as bar:
        for keys in todo:
            shard, errs = compute_shard(runner, {k: files[k] for k in keys}, window, batch_size, progress=bar.update,
                                        deformation=deformation, deformation_seed=deformation_seed)
            if shard is not None:
                store.write_shard(shard)
                result.computed_shards += 1
            store.log_errors(errs)
            result.errors.extend(errs)


def _ray_shard(spec_json: str, store_root: str, rep_id: str, window_json: str, files: dict[str, str],
               batch_size: int, deformation: str | None = None, deformation_seed: int = 0) -> list[dict[str, str]]:
    """Ray task body: build the representation, compute one shard, write it to the shared store."""
    torch.set_num_threads(1)
    spec = RepSpec.model_validate_json(spec_json)
    window = WindowConfig.model_validate_json(window_json)
    model = spec.build()
    if model.id != rep_id:
        raise RuntimeError(f"worker built {model.id}, driver expected {rep_id}: representation is not deterministic")
    store = EmbeddingStore(store_root, rep_id, store_key(window, model.sample_rate, deformation, deformation_seed))
    shard, errs = compute_shard(for_inference(model), files, window, batch_size, deformation=deformation,
                                deformation_seed=deformation_seed)
    if shard is not None:
        store.write_shard(shard)
    store.log_errors(errs)
    return errs


def _run_ray(spec: RepSpec, store_root: str | os.PathLike[str], store: EmbeddingStore, files: dict[str, str],
             todo: list[list[str]], window: WindowConfig, batch_size: int, executor: str,
             result: ExtractResult, deformation: str | None = None, deformation_seed: int = 0) -> None:
    try:
        import ray
    except ImportError:
        raise RuntimeError("executor='ray' needs Ray: pip install 'musicrep[ray]'") from None
    address = executor.split(":", 1)[1] if ":" in executor else None
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        started = True
    try:
        rep_id = store.dir.parent.name
        task = ray.remote(num_cpus=1)(_ray_shard)
        refs = [task.remote(spec.model_dump_json(), str(Path(store_root).resolve()), rep_id,
                            window.model_dump_json(), {k: str(Path(files[k]).resolve()) for k in keys}, batch_size,
                            deformation, deformation_seed)
                for keys in todo]
        for errs in ray.get(refs):
            result.errors.extend(errs)
        result.computed_shards += len(todo)
    finally:
        if started:
            ray.shutdown()

"""The input pipeline of training: a pool (or a task) → one cached feature memmap → budgeted, seeded crops.

Takes a pool folder (:func:`musicrep.data.pool.load_pool`) or a task folder (:class:`musicrep.data.task.Task`,
its ``train`` split) and gives :class:`~musicrep.train.batch.Batch` es already in the encoder's input form:
standardised log-mel crops ``[B, 1, 96, 301]`` (``kind="logmel"``, 3 s at 100 frames/s) or 16 kHz waveform
crops ``[B, 48000]`` (``kind="waveform"``), with a second view for contrastive pairs and targets for
supervised training.

Why one float16 memmap (:class:`FeatureCache`): the log-mel of the whole pool is computed once
(:func:`build_cache`) — never per epoch — and stored as ONE file ``[total_frames, 96]`` (or
``[total_samples]``) with per-track offsets. Reading a crop is a slice of a memory map, so DataLoader
workers share the page cache, a process's memory does not grow with the pool, and the 848-minute pool
costs ~1 GB of disk in float16. The features are *not* standardised there: each crop is standardised on
its own (:func:`musicrep.models.encoder.standardise`), exactly as ``Encoder.prepare`` does for a 3 s
window. A cached crop has real audio as the context of its first and last frame where ``prepare``
zero-pads a lone window; that is the only (one-frame) difference. The cache folder is named by a digest of
the manifest (ids and checksums, or sizes and modification times), the feature kind and the front-end
configuration, so a changed pool or front-end gets a new cache and an unchanged one is reused. It is
written in chunks (memory bounded whatever a track's length), atomically (a temporary folder renamed into
place, so a killed build never leaves a cache that looks complete) and a corrupt file is named in a
:class:`TrainDataWarning` and skipped.

Why a held-out validation set outside every budget: validation loss must be comparable across budgets and
budget seeds, so it is measured on the same tracks whatever the budget, and those tracks must never be
trained on. Before budgeting, the tracks (task: groups) whose rank :func:`musicrep.data.splits.rank`
under the salt ``"validation"`` (seed 0) falls in the lowest :data:`VALIDATION_FRACTION` of the hash range
are held out — at least one. A hash threshold rather than "the last k" means adding tracks to a pool never
moves an existing track between training and validation. For a task, validation comes from its ``train``
split too, so the task's own ``valid`` and ``test`` items are never seen by pretraining.

Why budgets through :func:`musicrep.data.subset.subset`: the 5-minute set is inside the 10-minute set (whole
tracks, seeded ranks), so each larger budget only adds music. The number of optimiser steps does not
depend on the budget; a small budget is simply sampled more often.

Crops: a track is drawn uniformly *with replacement* (not weighted by length), then a 3 s crop uniformly
inside it *without padding* (tracks shorter than a crop are dropped with a warning). With ``pairs=True``
view 2 is another crop of the same track whose centre is less than 5 s from view 1's (McCallum et al.
2022). Natural augmentation (:mod:`musicrep.augment`, parameters drawn from :data:`NATURAL_RANGES`) touches
a fraction of the *training* crops, each view on its own; it works on the crop's waveform (decoded from the
source file, augmented, then log-mel + standardise) and never on validation batches.

Determinism: everything a batch holds is a pure function of ``(seed, step)`` and of the shard
``(rank, world_size)``. The *global* batch of a step is planned from ``np.random.default_rng([0, seed,
step])`` (:meth:`TrainData.plan`) and rank ``r`` materialises items ``[r·B/W, (r+1)·B/W)`` of it, so the
shards of ``W`` processes partition exactly the batch one process would see (DDP equals single-process
training) and a resumed run at step ``k`` gets the batches an uninterrupted run got. There is no hidden
state: :func:`loader` is a map-style dataset indexed by step (``batch_size=None``), so the order is the
same with any number of workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from musicrep.audio import DEFAULT_SR, AudioError, load, stream
from musicrep.augment import DEFORMATIONS, Deformation, DeformationError, apply, parse
from musicrep.data.pool import PoolError, load_pool
from musicrep.data.splits import rank as hash_rank
from musicrep.data.subset import subset
from musicrep.data.task import Task, TaskError
from musicrep.frontends import LogMel
from musicrep.kinds import get_kind
from musicrep.models.encoder import standardise
from musicrep.train.batch import Batch

__all__ = [
    "CACHE_FOLDER",
    "FEATURE_KINDS",
    "NATURAL_RANGES",
    "VALIDATION_FRACTION",
    "CropPlan",
    "FeatureCache",
    "FeatureKind",
    "NaturalRange",
    "StepDataset",
    "TrainData",
    "TrainDataError",
    "TrainDataWarning",
    "build_cache",
    "cache_digest",
    "loader",
    "val_batches",
]

#: Default cache location, inside the pool or task folder: ``<folder>/.musicrep-cache/<digest>/``.
CACHE_FOLDER = ".musicrep-cache"
#: Share of tracks (task: groups) held out for validation, by hash (see the module docstring); at least one.
VALIDATION_FRACTION = 0.02
#: Seconds of audio per chunk while building a cache (bounds memory for tracks of any length).
BLOCK_SECONDS = 60.0
#: Bump when the cache layout or the way features are computed changes (invalidates every cache).
_CACHE_VERSION = 1
#: First entry of the generator seeds: training plans and validation plans are independent streams.
_TRAIN_STREAM, _VAL_STREAM = 0, 1
#: Uniform draws reserved per crop for a deformation's parameters (plans draw a fixed number of values).
_MAX_PARAMS = 4
#: Extra source samples decoded beyond what a time-stretching deformation reads (its output length is approximate).
_LOOKAHEAD = 2048


class TrainDataError(Exception):
    """The training data cannot be set up; the message names the folder or setting and the fix."""


class TrainDataWarning(UserWarning):
    """Something was skipped (a corrupt file, tracks shorter than a crop); the message names it."""


# ------------------------------------------------------------------------------------------ feature kinds


class FeatureKind:
    """What the cache stores for one encoder input kind, and how a crop becomes the encoder's input.

    ``unit``: samples per stored row (the log-mel hop; 1 for the waveform), so a crop starts on a row.
    ``width``: values per row (96 mel bands; ``None``: one value per row).
    """

    name: ClassVar[str]
    unit: int
    width: int | None

    def config(self) -> dict[str, Any]:
        """Everything that changes the stored values (part of the cache digest)."""
        raise NotImplementedError

    def chunks(self, path: str, block_seconds: float) -> Iterator[np.ndarray]:
        """Rows of one file, in order, chunk by chunk (float32 ``[rows, width]`` or ``[rows]``)."""
        raise NotImplementedError

    def rows(self, crop_samples: int) -> int:
        """Rows of one crop of ``crop_samples``."""
        raise NotImplementedError

    def from_audio(self, audio: np.ndarray) -> np.ndarray:
        """A crop's waveform ``[crop_samples]`` → its rows, as they would be read from the cache (float32)."""
        raise NotImplementedError

    def to_input(self, rows: np.ndarray) -> Tensor:
        """Stacked crops ``[B, rows(, width)]`` (float32) → the encoder's input (``Encoder.prepare`` form)."""
        raise NotImplementedError


class LogMelFeatures(FeatureKind):
    """``frontends.LogMel()`` (16 kHz, 96 mels, 10 ms hop), un-standardised, rows = frames ``[frames, 96]``."""

    name = "logmel"

    def __init__(self) -> None:
        self.logmel = LogMel()
        self.unit = self.logmel.hop_length
        self.width = self.logmel.n_mels
        stft = self.logmel.stft
        # a centred frame at sample c reads [c - left, c - left + win): how far a chunk needs real context
        left = stft.n_fft // 2 - (stft.n_fft - stft.win_length) // 2
        self.context_frames = math.ceil(max(left, stft.win_length - left) / self.unit)

    def config(self) -> dict[str, Any]:
        return {"logmel": dict(self.logmel.config)}

    def rows(self, crop_samples: int) -> int:
        return 1 + crop_samples // self.unit

    def chunks(self, path: str, block_seconds: float) -> Iterator[np.ndarray]:
        """The frames of the whole track (``1 + samples // hop``, centred, zero-padded at the track's
        edges, as ``LogMel`` frames the whole signal), computed on ~``block_seconds`` at a time.

        Each chunk is computed on its frames' samples plus ``context_frames`` hops on either side, so the
        frames equal those of ``LogMel`` on the whole track (up to float rounding).
        """
        hop, cf = self.unit, self.context_frames
        ctx = cf * hop
        buf = np.zeros(ctx, np.float32)  # buf[0] is track sample `base`; before the track: zeros (centred padding)
        base, done = -ctx, 0
        for block, last in _with_last(stream(path, DEFAULT_SR, block_seconds=block_seconds)):
            parts = [buf, block] + ([np.zeros(ctx, np.float32)] if last else [])
            buf = np.concatenate(parts)
            end = (base + len(buf) - ctx) // hop + 1  # frames [done, end) have all their samples
            if end > done:
                m = end - done
                seg = buf[done * hop - ctx - base : (end - 1) * hop + ctx - base]
                with torch.no_grad():
                    lm = self.logmel(torch.from_numpy(np.ascontiguousarray(seg))[None])[0]
                yield lm[:, cf : cf + m].T.numpy()
                drop = end * hop - ctx - base
                buf, base, done = buf[drop:], base + drop, end

    def from_audio(self, audio: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.logmel(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None])[0].T.numpy()

    def to_input(self, rows: np.ndarray) -> Tensor:
        return standardise(torch.from_numpy(rows).transpose(1, 2))


class WaveformFeatures(FeatureKind):
    """The 16 kHz waveform itself, rows = samples ``[samples]`` (SampleCNN and other waveform encoders)."""

    name = "waveform"
    unit = 1
    width = None

    def config(self) -> dict[str, Any]:
        return {"waveform": {"sample_rate": DEFAULT_SR}}

    def rows(self, crop_samples: int) -> int:
        return crop_samples

    def chunks(self, path: str, block_seconds: float) -> Iterator[np.ndarray]:
        yield from stream(path, DEFAULT_SR, block_seconds=block_seconds)

    def from_audio(self, audio: np.ndarray) -> np.ndarray:
        return np.asarray(audio, dtype=np.float32)

    def to_input(self, rows: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))


#: ``Encoder.input_kind`` → what the cache stores for it.
FEATURE_KINDS: dict[str, type[FeatureKind]] = {"logmel": LogMelFeatures, "waveform": WaveformFeatures}


def _feature_kind(kind: str) -> FeatureKind:
    try:
        return FEATURE_KINDS[kind]()
    except KeyError:
        raise TrainDataError(f"kind: unknown input kind {kind!r}; choose one of {', '.join(FEATURE_KINDS)}") from None


def _with_last(it: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """``(item, is_last)`` for each item of ``it`` (one item of look-ahead)."""
    prev = next(it, None)
    while prev is not None:
        nxt = next(it, None)
        yield prev, nxt is None
        prev = nxt


# ------------------------------------------------------------------------------------------ the cache


def _fingerprint(row: pd.Series) -> str:
    """What identifies a file's content: its sha256 when the manifest has one, else size and mtime.

    Why mtime as well as size: a re-rendered WAV of the same duration has the same size.
    """
    sha = str(row.get("sha256", "") or "")
    if sha:
        return sha
    try:
        st = os.stat(row["path"])
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def cache_digest(items: pd.DataFrame, kind: str = "logmel") -> str:
    """The cache key of ``items`` (columns ``id``, ``path``, optional ``sha256``) for input ``kind``.

    A digest of the ids with their content fingerprints, the feature kind, its front-end configuration and
    the cache version (20 hex digits). Paths are left out so a moved pool keeps its cache.
    """
    fk = _feature_kind(kind)
    payload = {"version": _CACHE_VERSION, "kind": kind, "config": fk.config(),
               "items": [[str(r["id"]), _fingerprint(r)] for _, r in items.iterrows()]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class FeatureCache:
    """A built cache: ONE float16 memmap and the rows of each track in it.

    Attributes:
        root: the cache folder (``…/.musicrep-cache/<digest>``).
        kind: ``"logmel"`` (``features`` is ``[total_frames, 96]``) or ``"waveform"`` (``[total_samples]``).
        width: values per row (96 mel bands; None for the waveform).
        index: one row per cached track: ``id``, ``offset`` and ``rows`` (where its rows are in
            ``features``), ``samples`` (its length at 16 kHz).
        failed: ``(path, reason)`` of every file that could not be read (skipped).
        built: True when this call built the cache, False when an existing one was reused.
    """

    root: Path
    kind: str
    index: pd.DataFrame
    width: int | None = None
    failed: list[tuple[str, str]] = field(default_factory=list)
    built: bool = False
    _features: np.ndarray | None = field(default=None, repr=False)

    FEATURES: ClassVar[str] = "features.f16"
    INDEX: ClassVar[str] = "index.csv"
    META: ClassVar[str] = "meta.json"

    @property
    def digest(self) -> str:
        return self.root.name

    @property
    def total_rows(self) -> int:
        return int(self.index["rows"].sum()) if len(self.index) else 0

    @property
    def features(self) -> np.ndarray:
        """The read-only float16 memmap (opened on first use in each process)."""
        if self._features is None:
            shape = (self.total_rows,) if self.width is None else (self.total_rows, self.width)
            self._features = np.memmap(self.root / self.FEATURES, dtype=np.float16, mode="r", shape=shape)
        return self._features

    def __getstate__(self) -> dict[str, Any]:
        # a memmap would be pickled as a copy of its data; workers reopen the file instead
        state = dict(self.__dict__)
        state["_features"] = None
        return state

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> FeatureCache:
        """Open a built cache folder; :class:`TrainDataError` when it is not a complete cache."""
        folder = Path(root)
        try:
            meta = json.loads((folder / cls.META).read_text(encoding="utf-8"))
            index = pd.read_csv(folder / cls.INDEX, dtype={"id": str}, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise TrainDataError(f"{folder}: not a complete feature cache ({exc}); delete the folder to rebuild it") from None
        cache = cls(folder, str(meta["kind"]), index, meta.get("width"), [tuple(f) for f in meta.get("failed", [])])
        expected = cache.total_rows * (cache.width or 1) * np.dtype(np.float16).itemsize
        if not (folder / cls.FEATURES).is_file() or (folder / cls.FEATURES).stat().st_size != expected:
            raise TrainDataError(f"{folder / cls.FEATURES}: size does not match {cls.INDEX}; delete {folder} to rebuild it")
        return cache

    def crops(self, offsets: np.ndarray, rows: int) -> np.ndarray:
        """Rows ``[offset, offset + rows)`` for each offset (absolute rows), float32 ``[B, rows(, width)]``."""
        feats = self.features
        return np.stack([feats[o : o + rows] for o in offsets.tolist()]).astype(np.float32)


def build_cache(items: pd.DataFrame, kind: str = "logmel", *, cache_dir: str | os.PathLike[str],
                progress: bool = True, block_seconds: float = BLOCK_SECONDS) -> FeatureCache:
    """Compute the features of every file of ``items`` once into ``cache_dir/<digest>/`` (or reuse it).

    Args:
        items: columns ``id``, ``path`` (absolute), optional ``sha256`` and ``duration`` (seconds, for the
            progress bar) — a pool manifest from :func:`load_pool` or a task's items.
        kind: ``"logmel"`` or ``"waveform"`` (``Encoder.input_kind``).
        cache_dir: parent folder of the cache folders (created when missing).
        progress: show a tqdm bar in minutes of audio.
        block_seconds: audio decoded and transformed at a time (memory bound per track).

    Returns:
        The :class:`FeatureCache`. Files that cannot be decoded are named in a :class:`TrainDataWarning`
        (also when an existing cache that skipped them is reused) and left out of its index.

    Layout: ``features.f16`` (raw float16, ``[total_rows, 96]`` or ``[total_rows]``), ``index.csv`` (id,
    offset, rows, samples), ``meta.json`` (kind, front-end config, failures, build time).
    """
    from tqdm.auto import tqdm

    fk = _feature_kind(kind)
    digest = cache_digest(items, kind)
    parent = Path(cache_dir)
    final = parent / digest
    if int(os.environ.get("LOCAL_RANK", "0")) > 0 and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
        # under torchrun the other ranks on this machine wait for local rank 0's cache (which also mends a
        # broken one) instead of building the same one side by side; if rank 0 dies, torchrun stops this one
        while True:
            try:
                cache = FeatureCache.open(final)
            except (TrainDataError, OSError):
                time.sleep(0.5)
                continue
            _warn_failed(cache.failed)
            return cache
    if final.is_dir():
        try:
            cache = FeatureCache.open(final)
        except TrainDataError as exc:
            warnings.warn(f"{exc}; rebuilding it", TrainDataWarning, stacklevel=2)
            shutil.rmtree(final, ignore_errors=True)
        else:
            _warn_failed(cache.failed)
            return cache
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest}.tmp-", dir=parent))
    t0 = time.perf_counter()
    rows_out: list[dict[str, Any]] = []
    failed: list[tuple[str, str]] = []
    offset = 0
    durations = pd.to_numeric(items.get("duration", pd.Series(0.0, index=items.index)), errors="coerce").fillna(0.0)
    bar = tqdm(total=float(durations.sum()) / 60.0, desc=f"{kind} cache", unit="min", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} min [{elapsed}<{remaining}]")
    try:
        with open(tmp / FeatureCache.FEATURES, "wb") as f:
            for (_, row), dur in zip(items.iterrows(), durations):
                start, n_rows = f.tell(), 0
                try:
                    for chunk in fk.chunks(str(row["path"]), block_seconds):
                        f.write(np.ascontiguousarray(chunk, dtype=np.float16).tobytes())
                        n_rows += len(chunk)
                except (AudioError, OSError, RuntimeError, ValueError) as exc:  # one bad file, not a crash
                    f.seek(start)
                    f.truncate()
                    reason = exc.problem if isinstance(exc, AudioError) else f"{type(exc).__name__}: {exc}"
                    failed.append((str(row["path"]), reason))
                else:
                    samples = n_rows if fk.unit == 1 else _samples_of(str(row["path"]), n_rows, fk.unit)
                    rows_out.append({"id": str(row["id"]), "offset": offset, "rows": n_rows, "samples": samples})
                    offset += n_rows
                bar.update(float(dur) / 60.0)
        index = pd.DataFrame(rows_out, columns=["id", "offset", "rows", "samples"])
        index.to_csv(tmp / FeatureCache.INDEX, index=False)
        meta = {"version": _CACHE_VERSION, "kind": kind, "width": fk.width, "config": fk.config(), "digest": digest,
                "tracks": len(index), "rows": offset, "failed": failed,
                "seconds_audio": float(index["samples"].sum()) / DEFAULT_SR if len(index) else 0.0,
                "build_seconds": round(time.perf_counter() - t0, 3)}
        (tmp / FeatureCache.META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, final)  # atomic: a cache folder under its digest is always complete
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same cache first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    _warn_failed(failed)
    cache = FeatureCache.open(final)
    cache.built = True
    return cache


def _samples_of(path: str, n_frames: int, hop: int) -> int:
    """Samples at 16 kHz of a file whose centred frame count was ``n_frames`` (exact for 16 kHz files)."""
    from musicrep.audio import info

    i = info(path)
    samples = round(i.frames * DEFAULT_SR / i.samplerate)
    # the frame count is the truth for crops: keep the sample count consistent with it
    return samples if 1 + samples // hop == n_frames else (n_frames - 1) * hop


def _warn_failed(failed: Sequence[tuple[str, str]]) -> None:
    for path, reason in failed:
        warnings.warn(f"{path}: skipped, cannot be read ({reason})", TrainDataWarning, stacklevel=3)


# ------------------------------------------------------------------------------------------ augmentation


@dataclass(frozen=True)
class NaturalRange:
    """How training draws a deformation's parameters: uniform in ``params[name] = (low, high)``.

    ``reads``: the parameter that makes the transform read ``value ×`` the crop's length of source audio
    (time stretch's ``rate``); it is capped so the source region never runs past the track's end.
    """

    params: dict[str, tuple[float, float]]
    reads: str | None = None


#: Parameter ranges of the natural deformations for training; a natural deformation missing here runs
#: with its registered defaults. Ranges: mild enough to keep the music recognisable (seeds' advice).
NATURAL_RANGES: dict[str, NaturalRange] = {
    "pitch": NaturalRange({"semitones": (-2.0, 2.0)}),
    "stretch": NaturalRange({"rate": (0.8, 1.25)}, reads="rate"),
    "reverb": NaturalRange({"room": (0.1, 0.9)}),
    "gain": NaturalRange({"db": (-12.0, 6.0)}),
    "eq": NaturalRange({"low_db": (-6.0, 6.0), "high_db": (-6.0, 6.0)}),
    "compress": NaturalRange({"threshold_db": (-30.0, -10.0), "ratio": (2.0, 8.0)}),
    "distort": NaturalRange({"drive_db": (5.0, 20.0)}),
}


@dataclass(frozen=True)
class _AugChoice:
    """One entry of the augmentation list: a fixed deformation, or a name whose parameters are drawn."""

    name: str
    fixed: Deformation | None

    def draw(self, u: np.ndarray) -> Deformation:
        if self.fixed is not None:
            return self.fixed
        rng = NATURAL_RANGES.get(self.name)
        if rng is None:
            return Deformation(self.name)
        params = {k: lo + float(u[i]) * (hi - lo) for i, (k, (lo, hi)) in enumerate(rng.params.items())}
        return Deformation(self.name, "", params)


def _aug_choices(augmentations: Sequence[str] | None, label_kind: str | None) -> list[_AugChoice]:
    """The deformations to draw from: a bare name draws its parameters, a full string is fixed."""
    specs = list(augmentations) if augmentations is not None else [n for n, t in DEFORMATIONS.items() if t.natural]
    out = []
    for spec in specs:
        try:
            d = parse(spec)
        except DeformationError as exc:
            raise TrainDataError(f"augmentations: {exc}") from None
        bare = isinstance(spec, str) and "@" not in spec and ":" not in spec
        if label_kind is not None and label_kind in d.transform.changes:
            continue  # it would change the label (a pitch shift on a key task)
        out.append(_AugChoice(d.name, None if bare else d))
    return out


# ------------------------------------------------------------------------------------------ plans


@dataclass(frozen=True)
class CropPlan:
    """Which crops a batch (or its shard) holds, before any audio is read.

    Attributes:
        split: ``"train"`` (rows of ``TrainData.tracks``) or ``"valid"`` (rows of ``TrainData.val_tracks``).
        step: training step, or validation batch number.
        index: ``[b]`` position of each crop in the global batch.
        track: ``[b]`` int64 row of the crop's track.
        start: ``[b]`` int64 first sample (16 kHz) of view 1; the crop is ``[start, start + crop_samples)``.
        start2: ``[b]`` first sample of view 2 (same track), or None without pairs.
        augment, augment2: per crop of view 1 / view 2, the deformation applied to it, or None.
    """

    split: str
    step: int
    index: np.ndarray
    track: np.ndarray
    start: np.ndarray
    start2: np.ndarray | None
    augment: list[Deformation | None]
    augment2: list[Deformation | None] | None

    def __len__(self) -> int:
        return len(self.index)


# ------------------------------------------------------------------------------------------ the data


class TrainData:
    """Cached features + budgeted tracks + labels + crop settings → :class:`Batch` per ``(step, rank)``.

    Args:
        pool: a pool folder (``manifest.csv``), or
        task: a task folder; its ``train`` items are the tracks (targets from it when ``labels``).
        kind: ``"logmel"`` or ``"waveform"`` (the encoder's ``input_kind``).
        minutes: budget in minutes of audio (whole tracks, nested, :func:`subset`); None or ``"all"``: all.
        budget_seed: seed of the budget's track order.
        crop_seconds: crop length (s); 3 s gives ``[1, 96, 301]`` log-mel crops or 48 000 samples.
        batch_size: GLOBAL batch size (split over ranks by :meth:`batch`).
        pairs: fill ``x2`` with a second crop of each track, centres < ``max_pair_seconds`` apart.
        labels: fill ``y`` from the task (multi-hot / one-hot ``[B, C]``); needs ``task``.
        augment_fraction: share of training crops (each view on its own) that get a natural deformation.
        augmentations: deformations to draw from: names (parameters drawn from :data:`NATURAL_RANGES`) or
            full strings (``"pitch@semitones=1"``, fixed); None: every natural one in ``DEFORMATIONS``.
            With labels, those that change the task's labels (``Transform.changes``) are left out.
        seed: seed of the crops and augmentations.
        cache_dir: parent of the cache folders (default ``<pool or task>/.musicrep-cache``).
        validation_fraction: share of tracks held out for validation (at least one).
        per_class: budget of training items per class (labelled tasks; nested, :func:`subset`), instead of
            ``minutes``: what fine-tuning on "N labelled items per class" trains on.
        val_split: a task split (e.g. ``"valid"``) whose items are the validation tracks, instead of holding
            ~2 % of the training items out: fine-tuning then trains on exactly the labelled budget the
            probes get and validates on the task's own validation split.

    Raises:
        TrainDataError: a bad folder or setting (the message names it and the fix).

    Attributes: ``tracks`` (budget tracks: id, path, duration, offset, rows, samples), ``val_tracks``,
    ``cache``, ``digest``, ``n_tracks``, ``minutes`` (audio in the budget), ``kind`` (the task's label
    kind, e.g. ``multilabel``, or None without labels), ``n_classes`` (None without labels),
    ``input_kind``, ``crop_samples``.
    """

    def __init__(
        self,
        pool: str | os.PathLike[str] | None = None,
        task: str | os.PathLike[str] | None = None,
        *,
        kind: str = "logmel",
        minutes: float | str | None = None,
        budget_seed: int = 0,
        crop_seconds: float = 3.0,
        batch_size: int = 32,
        pairs: bool = False,
        labels: bool = False,
        augment_fraction: float = 0.25,
        augmentations: Sequence[str] | None = None,
        seed: int = 0,
        max_pair_seconds: float = 5.0,
        cache_dir: str | os.PathLike[str] | None = None,
        validation_fraction: float = VALIDATION_FRACTION,
        progress: bool = True,
        per_class: int | None = None,
        val_split: str | None = None,
    ) -> None:
        if (pool is None) == (task is None):
            raise TrainDataError("give exactly one of pool: DIR (a music pool) or task: DIR (a task folder)")
        if labels and task is None:
            raise TrainDataError("labels need a task folder: give task: DIR instead of pool: DIR")
        if not 0.0 <= augment_fraction <= 1.0:
            raise TrainDataError(f"augment_fraction: {augment_fraction} must lie in [0, 1]")
        if batch_size < 1:
            raise TrainDataError(f"batch_size: {batch_size} must be ≥ 1")
        self.features = _feature_kind(kind)
        self.input_kind = kind
        self.crop_samples = round(crop_seconds * DEFAULT_SR)
        if self.crop_samples < self.features.unit:
            raise TrainDataError(f"crop_seconds: {crop_seconds} is too short")
        self.crop_rows = self.features.rows(self.crop_samples)
        self.batch_size, self.pairs, self.labels, self.seed = int(batch_size), bool(pairs), bool(labels), int(seed)
        self.augment_fraction = float(augment_fraction)
        # largest start difference (in rows) whose centres are < max_pair_seconds apart
        self.max_pair_rows = max(0, math.ceil(max_pair_seconds * DEFAULT_SR / self.features.unit) - 1)

        if val_split is not None and task is None:
            raise TrainDataError("val_split: needs a task folder (a pool has no splits)")
        if per_class is not None and minutes is not None and minutes != "all":
            raise TrainDataError("give one budget: minutes or per_class, not both")
        self.val_split = val_split
        items, source, self.kind, vocab = self._items(pool, task)
        self._aug = _aug_choices(augmentations, self.kind if self.labels else None)
        if self.augment_fraction > 0 and not self._aug:
            raise TrainDataError("augmentations: none left to draw from (all change this task's labels); "
                                 "set augment_fraction: 0 or list other deformations")
        self.cache = build_cache(items, kind, cache_dir=cache_dir if cache_dir is not None else source / CACHE_FOLDER,
                                 progress=progress)
        table = items.drop(columns=[c for c in ("offset", "rows", "samples") if c in items.columns])
        table = table.merge(self.cache.index, on="id", how="inner")  # corrupt files are not in the index
        table["duration"] = table["samples"] / DEFAULT_SR
        short = table["samples"] < self.crop_samples
        if short.any():
            ids = list(table.loc[short, "id"])
            warnings.warn(f"{len(ids)} track(s) shorter than a {crop_seconds:g} s crop left out (crops are never "
                          f"padded): {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}", TrainDataWarning, stacklevel=2)
            table = table[~short]
        table = table.reset_index(drop=True)
        units = (table["group"].where(table["group"].astype(str) != "", table["id"]) if "group" in table.columns
                 else table["id"]).astype(str)
        if val_split is not None:
            held = (table["split"].astype(str) == val_split).to_numpy()
            if not held.any():
                raise TrainDataError(f"{Path(task) / 'items.csv'}: no usable {val_split!r} items of at least "
                                     f"{crop_seconds:g} s to validate on; set val_split to another split")
            if held.all():
                raise TrainDataError(f"{Path(task) / 'items.csv'}: no usable train items of at least {crop_seconds:g} s")
        else:
            if units.nunique() < 2:
                raise TrainDataError(f"{source}: {units.nunique()} usable track(s) of at least {crop_seconds:g} s; "
                                     "training needs at least 2 (one is held out for validation)")
            held = _held_out(units, validation_fraction)
        self.val_tracks = table[held].reset_index(drop=True)
        candidates = table[~held].reset_index(drop=True)
        if per_class is not None:
            if int(per_class) < 1:
                raise TrainDataError(f"per_class: {per_class!r} must be ≥ 1")
            if not self.labels:
                raise TrainDataError("per_class: a per-class budget needs labels (labels=True on a task)")
            self.tracks = subset(candidates, per_class=int(per_class), seed=budget_seed).reset_index(drop=True)
        elif minutes is None or (isinstance(minutes, str) and minutes == "all"):
            self.tracks = candidates
        else:
            try:
                m = float(minutes)
            except (TypeError, ValueError):
                raise TrainDataError(f"minutes: {minutes!r} is not a number or 'all'") from None
            if m <= 0:
                raise TrainDataError(f"minutes: {minutes!r} must be > 0")
            self.tracks = subset(candidates, minutes=m, seed=budget_seed).reset_index(drop=True)
        self.minutes = float(self.tracks["duration"].sum()) / 60.0
        self.n_tracks = len(self.tracks)
        self.digest = self.cache.digest
        self.n_classes: int | None = None
        self._y = self._y_val = None
        if self.labels:
            self._y, self.n_classes = self._targets(self.tracks, vocab)
            self._y_val, _ = self._targets(self.val_tracks, vocab)
        self.vocabulary = vocab

    # -------------------------------------------------------------- setup
    def _items(self, pool: Any, task: Any) -> tuple[pd.DataFrame, Path, str | None, list[str] | None]:
        if pool is not None:
            try:
                df = load_pool(pool)
            except PoolError as exc:
                raise TrainDataError(str(exc)) from None
            return df.reset_index(drop=True), Path(pool), None, None
        try:
            t = Task.load(task)
        except TaskError as exc:
            raise TrainDataError(str(exc)) from None
        df = t.split("train").copy()
        if df.empty:
            raise TrainDataError(f"{Path(task) / 'items.csv'}: no train items to train on")
        df["path"] = [str(p) for p in t.paths("train")]
        if self.val_split is not None:  # the validation split's items are cached with the training ones
            val = t.split(self.val_split).copy()
            val["path"] = [str(p) for p in t.paths(self.val_split)]
            df = pd.concat([df, val], ignore_index=True)
        if self.labels and get_kind(t.kind).loss == "mse":
            raise TrainDataError(f"{Path(task) / 'task.yaml'}: kind {t.kind} has no classes; supervised pretraining "
                                 "needs a multiclass, multilabel, key or pitch task")
        return df.reset_index(drop=True), Path(task), t.kind, t.vocabulary

    def _targets(self, table: pd.DataFrame, vocab: list[str] | None) -> tuple[np.ndarray, int]:
        """Multi-hot (multilabel) or one-hot (single-label kinds) float32 ``[N, C]`` via ``musicrep.kinds``."""
        k = get_kind(str(self.kind))
        ids = k.class_ids(list(table["label"].astype(str)), vocab or [])
        if k.loss == "bce":
            return np.asarray(ids, dtype=np.float32), int(np.asarray(ids).shape[1])
        classes = k.classes(vocab)
        n = len(classes) if classes else int(ids.max()) + 1
        return np.eye(n, dtype=np.float32)[ids], n

    # -------------------------------------------------------------- plans
    def _n_starts(self, table: pd.DataFrame) -> np.ndarray:
        return ((table["samples"].to_numpy(np.int64) - self.crop_samples) // self.features.unit + 1)

    def _plan(self, rng: np.random.Generator, table: pd.DataFrame, n: int, augment: bool, split: str,
              step: int, lo: int, hi: int) -> CropPlan:
        """The global plan of ``n`` crops from ``rng`` (a fixed sequence of draws), cut to items ``[lo, hi)``."""
        n_starts = self._n_starts(table)
        track = rng.integers(len(table), size=n)
        pos = (rng.random(n) * n_starts[track]).astype(np.int64)
        u_pair = rng.random(n)
        u_aug = rng.random((n, 2))
        which = rng.integers(max(1, len(self._aug)), size=(n, 2))
        u_par = rng.random((n, 2, _MAX_PARAMS))
        sl = slice(lo, hi)
        unit = self.features.unit
        pos2 = None
        if self.pairs:
            a = np.maximum(0, pos - self.max_pair_rows)
            b = np.minimum(n_starts[track] - 1, pos + self.max_pair_rows)
            pos2 = a + (u_pair * (b - a + 1)).astype(np.int64)
        samples = table["samples"].to_numpy(np.int64)

        def augs(view: int, p: np.ndarray) -> list[Deformation | None]:
            out: list[Deformation | None] = []
            for i in range(lo, hi):
                if not augment or not self._aug or u_aug[i, view] >= self.augment_fraction:
                    out.append(None)
                    continue
                choice = self._aug[int(which[i, view])]
                d = self._capped(choice.draw(u_par[i, view]), int(samples[track[i]] - p[i] * unit))
                out.append(d)
            return out

        return CropPlan(split, step, np.arange(lo, hi), track[sl], pos[sl] * unit,
                        None if pos2 is None else pos2[sl] * unit, augs(0, pos),
                        None if pos2 is None else augs(1, pos2))

    def _capped(self, d: Deformation, room: int) -> Deformation:
        """``d`` with its source-reading parameter capped to the ``room`` samples left in the track."""
        r = NATURAL_RANGES.get(d.name)
        if r is None or r.reads is None:
            return d
        cap = max(1.0, (room - _LOOKAHEAD) / self.crop_samples)
        value = float(d.params[r.reads])
        return d if value <= cap else Deformation(d.name, d.variant, {**d.params, r.reads: cap})

    def _shard(self, rank: int, world_size: int, n: int) -> tuple[int, int]:
        if world_size < 1 or not 0 <= rank < world_size:
            raise TrainDataError(f"rank {rank} / world_size {world_size}: need 0 ≤ rank < world_size")
        if n % world_size:
            raise TrainDataError(f"batch_size: {n} is not divisible by the {world_size} processes; "
                                 "choose a multiple of the world size")
        b = n // world_size
        return rank * b, (rank + 1) * b

    def plan(self, step: int, rank: int = 0, world_size: int = 1) -> CropPlan:
        """The training crops of ``step`` for shard ``rank`` of ``world_size`` (pure function of seed, step, shard)."""
        lo, hi = self._shard(rank, world_size, self.batch_size)
        rng = np.random.default_rng([_TRAIN_STREAM, self.seed, int(step)])
        return self._plan(rng, self.tracks, self.batch_size, True, "train", int(step), lo, hi)

    def val_plan(self, i: int, batch_size: int | None = None, rank: int = 0, world_size: int = 1) -> CropPlan:
        """Validation batch ``i``: crops of the held-out tracks, never augmented; independent of ``seed``
        (so validation losses of runs with different seeds compare)."""
        n = int(batch_size or self.batch_size)
        lo, hi = self._shard(rank, world_size, n)
        rng = np.random.default_rng([_VAL_STREAM, int(i)])
        return self._plan(rng, self.val_tracks, n, False, "valid", int(i), lo, hi)

    # -------------------------------------------------------------- materialise
    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> Batch:
        """Training batch of ``step`` (rank ``rank``'s ``batch_size / world_size`` items of the global batch)."""
        return self.materialise(self.plan(step, rank, world_size))

    def val_batch(self, i: int, batch_size: int | None = None, rank: int = 0, world_size: int = 1) -> Batch:
        """Validation batch ``i`` (no augmentation)."""
        return self.materialise(self.val_plan(i, batch_size, rank, world_size))

    def materialise(self, plan: CropPlan) -> Batch:
        """Read (and augment) the crops of ``plan`` → a :class:`Batch` in the encoder's input form."""
        table = self.tracks if plan.split == "train" else self.val_tracks
        y_all = self._y if plan.split == "train" else self._y_val
        x = self._view(plan, table, plan.start, plan.augment, 0)
        x2 = None if plan.start2 is None else self._view(plan, table, plan.start2, plan.augment2 or [], 1)
        half = self.crop_samples / 2
        return Batch(
            x=x, x2=x2,
            y=None if y_all is None else torch.from_numpy(y_all[plan.track]),
            track=torch.from_numpy(plan.track.astype(np.int64)),
            centre=torch.from_numpy(((plan.start + half) / DEFAULT_SR).astype(np.float32)),
            centre2=None if plan.start2 is None else torch.from_numpy(((plan.start2 + half) / DEFAULT_SR).astype(np.float32)),
        )

    def _view(self, plan: CropPlan, table: pd.DataFrame, start: np.ndarray, augment: Sequence[Deformation | None],
              view: int) -> Tensor:
        unit = self.features.unit
        offsets = table["offset"].to_numpy(np.int64)[plan.track] + start // unit
        rows = self.cache.crops(offsets, self.crop_rows)
        for j, d in enumerate(augment):
            if d is not None:
                rows[j] = self._augmented(table.iloc[int(plan.track[j])], int(start[j]), d,
                                          f"{plan.split}{plan.step}:{int(plan.index[j])}:{view}")
        return self.features.to_input(rows)

    def _augmented(self, track: pd.Series, start: int, d: Deformation, key: str) -> np.ndarray:
        """The crop at ``start`` of ``track`` deformed by ``d`` on its waveform, as cache rows (float32)."""
        r = NATURAL_RANGES.get(d.name)
        factor = float(d.params[r.reads]) if r is not None and r.reads is not None else 1.0
        length = self.crop_samples if factor <= 1.0 else min(int(track["samples"]) - start,
                                                             math.ceil(self.crop_samples * factor) + _LOOKAHEAD)
        audio = self._source(track, start, length)
        out = apply(d, audio, DEFAULT_SR, item_id=f"{track['id']}@{key}", seed=self.seed)[: self.crop_samples]
        return self.features.from_audio(out)

    def _source(self, track: pd.Series, start: int, length: int) -> np.ndarray:
        """``length`` samples of ``track`` from ``start`` (16 kHz float32): the cache for waveform features,
        else decoded from the source file (the log-mel cache holds no waveform)."""
        if self.features.unit == 1:
            o = int(track["offset"]) + start
            return np.asarray(self.cache.features[o : o + length], dtype=np.float32)
        try:
            audio = load(track["path"], DEFAULT_SR, offset=start / DEFAULT_SR, duration=length / DEFAULT_SR)
        except AudioError as exc:
            raise TrainDataError(f"{exc}; it was readable when the cache was built — restore it or rebuild the "
                                 "pool, or set augment_fraction: 0") from None
        if len(audio) < length:  # resampled files may round a few samples short
            audio = np.concatenate([audio, np.zeros(length - len(audio), np.float32)])
        return audio[:length]


def _held_out(units: pd.Series, fraction: float) -> np.ndarray:
    """Rows whose unit is held out for validation: unit hash below ``fraction`` of the range, at least one unit."""
    if not 0.0 < fraction < 1.0:
        raise TrainDataError(f"validation_fraction: {fraction} must lie in (0, 1)")
    uniq = pd.unique(units.to_numpy())
    r = hash_rank(uniq, 0, salt="validation")
    held = set(uniq[r.astype(np.float64) / 2.0**64 < fraction])
    if not held:
        held = {uniq[int(np.argmin(r))]}
    if len(held) == len(uniq):  # keep at least one unit to train on
        held.discard(uniq[int(np.argmax(r))])
    return units.isin(held).to_numpy()


# ------------------------------------------------------------------------------------------ loading


class StepDataset(torch.utils.data.Dataset):
    """Map-style dataset whose item ``i`` is the WHOLE batch of step ``start_step + i`` for one shard.

    Why batches as items (``DataLoader(batch_size=None)``): the order and content are fixed by the step,
    whatever the number of workers, and resuming is starting at another ``start_step``.
    """

    def __init__(self, data: TrainData, start_step: int, total_steps: int, rank: int = 0, world_size: int = 1) -> None:
        self.data, self.start, self.stop = data, int(start_step), int(total_steps)
        self.rank, self.world_size = int(rank), int(world_size)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> Batch:
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.data.batch(self.start + i, self.rank, self.world_size)


def _worker_init(_: int) -> None:
    # each worker makes whole batches; more torch threads per worker would only fight over the cores
    torch.set_num_threads(1)


def loader(data: TrainData, start_step: int, total_steps: int, *, rank: int = 0, world_size: int = 1,
           workers: int = 0, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """Batches of steps ``start_step, …, total_steps - 1`` (``total_steps`` is the run's END, not a count),
    in step order, for shard ``rank`` of ``world_size``; ``workers`` DataLoader processes (0: in-process).

    Identical batches whatever ``workers`` is (each is ``data.batch(step, rank, world_size)``).
    """
    return torch.utils.data.DataLoader(
        StepDataset(data, start_step, total_steps, rank, world_size), batch_size=None, shuffle=False,
        num_workers=int(workers), worker_init_fn=_worker_init if workers else None, pin_memory=pin_memory,
        prefetch_factor=2 if workers else None, persistent_workers=False,
    )


def val_batches(data: TrainData, n: int, batch_size: int | None = None, *, rank: int = 0,
                world_size: int = 1) -> list[Batch]:
    """``n`` fixed validation batches (held-out tracks, no augmentation), the same for every call and seed."""
    return [data.val_batch(i, batch_size, rank, world_size) for i in range(int(n))]

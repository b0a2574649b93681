"""Running an importer: resolve and check the audio, drop byte-identical copies, write the task folder(s)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicrep.audio import AudioError
from musicrep.audio import info as audio_info
from musicrep.data.files import Duplicate, find_duplicates, resolve_path, warn_duplicates
from musicrep.data.importers.base import IMPORTERS, DatasetError, ImportedItem, ImportedTask, ImportOptions
from musicrep.data.task import SPLITS, TaskSpec, write_task

__all__ = ["ImportReport", "import_dataset"]


@dataclass
class ImportReport:
    """What an import wrote, and every file it left out (with the reason)."""

    tasks: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    minutes: dict[str, float] = field(default_factory=dict)
    #: ``(file, reason)``: referenced audio that is missing or unreadable (a problem with the copy).
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: ``(track, reason)``: annotations deliberately not used (ambiguous key, low confidence).
    left_out: list[tuple[str, str]] = field(default_factory=list)
    #: ``(task, duplicate)``: items dropped because their audio is byte-identical to a kept item's.
    duplicates: list[tuple[str, Duplicate]] = field(default_factory=list)


def _check_audio(task: ImportedTask, skipped: list[tuple[str, str]], progress: bool) -> Counter[int]:
    """Read every item's header (duration); drop and report missing or unreadable files.

    Returns how many items have each native sample rate (the most common goes into task.yaml).
    """
    from tqdm.auto import tqdm

    keep: list[ImportedItem] = []
    cache: dict[Path, tuple[float, int] | str] = {}
    rates: Counter[int] = Counter()
    for it in tqdm(task.items, desc=f"check {task.name}", unit="file", disable=not progress):
        if it.path not in cache:
            try:
                i = audio_info(it.path)
                cache[it.path] = (i.duration, i.samplerate)
            except AudioError as exc:
                cache[it.path] = exc.problem
        got = cache[it.path]
        if isinstance(got, str):
            skipped.append((str(it.path), got))
            continue
        it.duration, rate = got
        rates[rate] += 1
        keep.append(it)
    task.items = keep
    return rates


def import_dataset(
    name: str,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    task: str | None = None,
    options: ImportOptions | None = None,
    progress: bool = True,
    check_audio: bool = True,
) -> ImportReport:
    """Import dataset ``name`` from ``root`` and write task folder(s) under ``out``.

    Args:
        name: a key of :data:`IMPORTERS`.
        root: the dataset's folder (``csv``: the CSV file).
        out: output task folder; when the importer gives several tasks and ``task`` is None, each is
            written to ``out/<task>/``.
        task: keep only this task of a multi-task importer (e.g. ``pitch`` for NSynth).
        options: :class:`ImportOptions` (split/audio folders, seed, kind).
        progress: show a progress bar while headers are read.
        check_audio: read each file's header (duration, rate) and leave out missing/unreadable files;
            without it durations are written as 0 and ``Task.load`` still checks that files exist.

    Returns:
        :class:`ImportReport`: task folders written, items per split, minutes, files left out and why,
        items dropped as byte-identical duplicates.

    Raises:
        DatasetError: unknown name, missing root / annotation / split files, or no usable item.
    """
    if name not in IMPORTERS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(IMPORTERS))}")
    base = Path(root).expanduser()
    if not base.exists():
        raise DatasetError(f"{base}: --root does not exist")
    opts = options or ImportOptions()
    tasks = IMPORTERS[name].fn(base.resolve(), opts)
    if task is not None:
        if task not in tasks:
            raise DatasetError(f"{name} has no task {task!r}; it gives: {', '.join(tasks)}")
        tasks = {task: tasks[task]}
    report = ImportReport()
    out_dir = Path(out)
    for key, t in tasks.items():
        before = len(report.skipped)
        report.left_out.extend(t.left_out)
        listings: dict[Path, Any] = {}
        for it in t.items:  # names in metadata may be in another Unicode form than on disk
            it.path = resolve_path(it.path, listings)
        rates = _check_audio(t, report.skipped, progress) if check_audio else Counter()
        dups = _drop_duplicates(t)
        report.duplicates.extend((t.name, d) for d in dups)
        if not t.items:
            raise DatasetError(f"{name}: no usable items for task {t.name} "
                               f"({len(report.skipped)} left out; first: {report.skipped[:1]})")
        if t.kind == "pitch":  # the vocabulary lists only pitches that survived the audio check
            t.vocabulary = sorted({str(it.labels[0]) for it in t.items}, key=lambda x: int(float(x)))
        dest = out_dir if len(tasks) == 1 else out_dir / key
        spec = TaskSpec(
            name=t.name,
            kind=t.kind,  # type: ignore[arg-type]
            vocabulary=t.vocabulary,
            metrics=t.metrics,
            sample_rate=rates.most_common(1)[0][0] if rates else 16_000,
            description=IMPORTERS[name].description,
            provenance={**t.provenance, "importer": name, "root": str(base.resolve()),
                        "left_out": len(t.left_out), "unreadable_or_missing": len(report.skipped) - before,
                        **({"duplicates_dropped": [d.as_dict() for d in dups]} if dups else {})},
        )
        order = {v: i for i, v in enumerate(t.vocabulary)}
        rows = [{"id": it.id, "path": str(it.path.resolve()), "split": it.split,
                 "label": (sorted({str(x) for x in it.labels}, key=lambda x: order.get(x, -1))
                           if t.kind == "multilabel" else _one_label(it)),
                 "duration": it.duration or 0.0, "group": it.group} for it in t.items]
        write_task(dest, spec, rows)
        report.tasks[t.name] = dest
        report.counts[t.name] = {s: n for s in SPLITS if (n := sum(it.split == s for it in t.items))}
        report.minutes[t.name] = sum(it.duration or 0.0 for it in t.items) / 60
    report.skipped = list(dict.fromkeys(report.skipped))  # tasks sharing files report a bad one once
    report.left_out = list(dict.fromkeys(report.left_out))
    return report


def _drop_duplicates(task: ImportedTask) -> list[Duplicate]:
    """Drop items whose audio is byte-identical to another's (keeping the earliest split's); warn by id."""
    dups = find_duplicates([it.id for it in task.items], [it.path for it in task.items],
                           [it.split for it in task.items])
    if dups:
        warn_duplicates(f"import of {task.name}", dups)
        dropped = {d.dropped for d in dups}
        task.items = [it for it in task.items if it.id not in dropped]
    return dups


def _one_label(it: ImportedItem) -> str:
    if len(it.labels) != 1:
        raise DatasetError(f"{it.path}: expected exactly one label, got {it.labels!r}")
    x = it.labels[0]
    return repr(float(x)) if isinstance(x, float) else str(x)

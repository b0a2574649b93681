"""What the importers share: the data model, the registry and the readers of dataset folders.

Gives :class:`ImportedItem` / :class:`ImportedTask` (a task as an importer builds it, in plain Python),
:class:`ImportOptions`, the registry :data:`IMPORTERS` filled by :func:`register`, and the helpers more
than one dataset family uses: finding split files and audio, reading CSV/TSV, made-up splits
(:func:`split_items`, through :func:`musicrep.data.splits.grouped_split`), key spelling.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicrep.audio import find_audio
from musicrep.data.splits import grouped_split

__all__ = [
    "IMPORTERS",
    "DatasetError",
    "ImportOptions",
    "ImportedItem",
    "ImportedTask",
    "Importer",
    "audio_index",
    "dir_with",
    "drop_leaky_groups",
    "first_existing",
    "need",
    "read_csv",
    "register",
    "split_items",
    "tertiles",
]


class DatasetError(Exception):
    """The dataset cannot be imported (wrong root, missing annotation/split file). Names the file and fix."""


@dataclass
class ImportedItem:
    """One labelled audio file before it is written. ``labels`` holds one or more class names, or the
    regression targets as floats (in the task's vocabulary order)."""

    id: str
    path: Path
    split: str
    labels: list[Any]
    group: str = ""
    duration: float | None = None


@dataclass
class ImportedTask:
    """A task as an importer sees it: what :func:`musicrep.data.write_task` needs, in plain Python."""

    name: str
    kind: str  # multiclass | multilabel | regression | key | pitch
    vocabulary: list[str]
    items: list[ImportedItem]
    metrics: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: ``(file or id, reason)`` for annotations the importer could not use (reported, not written).
    left_out: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ImportOptions:
    """Options every importer may read (each documents which it uses)."""

    #: Folder holding the split files when they are not inside ``root`` (MTAT, GTZAN).
    splits: Path | None = None
    #: Folder holding the audio when it is not inside ``root`` (MTAT, Jamendo; ``csv``: what relative paths
    #: are relative to, instead of the CSV's folder).
    audio: Path | None = None
    #: Seed of the deterministic splits made when a dataset has none.
    seed: int = 0
    #: ``csv`` importer: the task kind (default: multilabel if any label holds ``;``, else multiclass).
    kind: str | None = None
    #: Fractions (train, valid, test) of made-up splits.
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Importer:
    name: str
    description: str
    fn: Callable[[Path, ImportOptions], dict[str, ImportedTask]]

    @property
    def layout(self) -> str:
        """The on-disk layout this importer expects (its docstring)."""
        import inspect

        return inspect.cleandoc(self.fn.__doc__ or "")


#: name → :class:`Importer`. Filled by :func:`register`.
IMPORTERS: dict[str, Importer] = {}


def register(name: str, description: str) -> Callable[[Callable[..., dict[str, ImportedTask]]], Callable[..., dict[str, ImportedTask]]]:
    """Decorator adding an importer to :data:`IMPORTERS` under ``name``."""

    def deco(fn: Callable[..., dict[str, ImportedTask]]) -> Callable[..., dict[str, ImportedTask]]:
        if name in IMPORTERS:
            raise ValueError(f"importer {name!r} registered twice")
        IMPORTERS[name] = Importer(name, description, fn)
        return fn

    return deco


def split_items(items: list[ImportedItem], opts: ImportOptions) -> None:
    """Give ``items`` made-up stratified (grouped when they carry a group) splits, in place."""
    keys = [it.id for it in items]
    labels = [str(it.labels[0]) if it.labels else "" for it in items]
    groups = [it.group or it.id for it in items]
    split = grouped_split(keys, labels, groups, fractions=opts.fractions, seed=opts.seed)
    for it in items:
        it.split = split[it.id]


def drop_leaky_groups(task: ImportedTask) -> None:
    """Keep the group column only if no group straddles two splits.

    Official splits are taken as published; when they put one group (e.g. an instrument shared by
    NSynth's valid and test) in two splits, the groups are dropped (and the fact recorded) rather than
    the split rewritten, so results stay comparable with the literature.
    """
    seen: dict[str, str] = {}
    for it in task.items:
        if it.group and seen.setdefault(it.group, it.split) != it.split:
            for other in task.items:
                other.group = ""
            task.provenance["groups"] = "dropped: the official split shares groups between splits"
            return


def tertiles(values: Sequence[float]) -> list[str]:
    """Label each value low/mid/high by tertile — a stratification key for regression targets."""
    import numpy as np

    if not values:
        return []
    lo, hi = np.quantile(values, [1 / 3, 2 / 3])
    return ["low" if v <= lo else "high" if v > hi else "mid" for v in values]


def need(path: Path, what: str, fix: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: {what} not found; {fix}")
    return path


def first_existing(candidates: Iterable[Path]) -> Path | None:
    for c in candidates:
        if c.exists():
            return c
    return None


def dir_with(candidates: Iterable[Path], filename: str) -> Path | None:
    """The first candidate folder that holds ``filename`` (split files live in a few known places)."""
    return next((c for c in candidates if (c / filename).exists()), None)


def audio_index(root: Path) -> dict[str, Path]:
    """Audio files under ``root`` by lower-cased stem (``blues.00000``) — for datasets whose lists name
    files with another extension or folder than the copy on disk (GTZAN .au vs .wav)."""
    index: dict[str, Path] = {}
    for f in find_audio(root):
        index.setdefault(f.stem.lower(), f)
    return index


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV/TSV with header names and values stripped (EmoMusic's header has stray spaces)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DatasetError(f"{path}: empty file") from None
        return [{h: v.strip() for h, v in zip(header, row)} for row in reader if any(c.strip() for c in row)]

"""The task format: a folder with ``task.yaml`` + ``items.csv`` + audio, read and written here.

Takes a folder and gives a validated :class:`Task` (spec, an items table, label targets per split);
takes a :class:`TaskSpec` and item rows and writes such a folder (:func:`write_task`). Every loader,
importer and the renderer write this format and every study reads it, so it is deliberately plain::

    my_task/
      task.yaml     name, kind, vocabulary, metrics, sample_rate, provenance (+ optional window settings)
      items.csv     id, path, split, label, duration, group   (+ any extra columns, kept as they are)
      audio/…       the files ``path`` points to (relative to the task folder)

Why a folder of plain text rather than a database or pickles: people inspect, diff, hand-edit and
commit manifests; a CSV and a short YAML survive all of that, and anything downstream can rebuild
its own caches from them.

Why validate everything at load time: a label typo, a duplicated id or a chorale that sits in both
train and test silently inflates every number computed later. :meth:`Task.load` therefore checks the
whole folder and raises :class:`TaskError` naming the file, the row (CSV line number) and the fix.

Label conventions in ``items.csv`` (always text):

=============  ===============================  ===========================================
kind           ``label`` column                 :meth:`Task.targets`
=============  ===============================  ===========================================
multiclass     one vocabulary entry             int index into ``vocabulary``
multilabel     entries joined by ``;``          float32 multi-hot ``[N, len(vocabulary)]``
regression     a number                         float32
key            any spelling, e.g. ``Db major``  int index into :data:`musicrep.theory.KEYS` (24 keys)
pitch          MIDI note number, e.g. ``60``    int MIDI number
=============  ===============================  ===========================================

What each kind means (label rules, targets, metrics, loss) lives in :mod:`musicrep.kinds`; key names in
any enharmonic spelling (``Db major``, ``G# minor``, ``Dbm``) are canonicalised to
:data:`musicrep.theory.KEYS` on load, in the vocabulary and in every row.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from musicrep.data.files import find_duplicates, resolve_path, warn_duplicates
from musicrep.kinds import KIND_NAMES, LABEL_SEP, get_kind, split_labels
from musicrep.util import read_yaml_mapping, validation_problems

__all__ = [
    "COLUMNS",
    "SPLITS",
    "Task",
    "TaskError",
    "TaskSpec",
    "write_task",
]

#: The only split names allowed (``valid`` is used for early stopping / probe model selection).
SPLITS = ("train", "valid", "test")
#: Required columns of ``items.csv``, in the order they are written.
COLUMNS = ("id", "path", "split", "label", "duration", "group")

TASK_YAML = "task.yaml"
ITEMS_CSV = "items.csv"


class TaskError(Exception):
    """A task folder is malformed. The message names the file (and row/key) and how to fix it."""


class TaskSpec(BaseModel):
    """The content of ``task.yaml``. Unknown keys are errors, so a typo names itself."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short task name, e.g. 'key' or 'nsynth-pitch'.")
    kind: str = Field(description="How labels are read and scored: one of musicrep.kinds.KINDS "
                      "(multiclass, multilabel, regression, key, pitch).")
    vocabulary: list[str] = Field(
        default_factory=list,
        description="Allowed labels, in target-index order (empty for regression). "
        "For kind=pitch the MIDI numbers as text; for kind=key a subset of the 24 keys in any spelling.",
    )
    metrics: list[str] = Field(default_factory=list, description="Metric names the studies report, e.g. ['mirex'].")
    sample_rate: int = Field(16_000, gt=0, description="Rate of the audio files (Hz).")
    description: str = Field("", description="One or two sentences on what the task asks.")
    provenance: dict[str, Any] = Field(
        default_factory=dict,
        description="Where the items came from: source corpus, soundfont, seed, command, licence, …",
    )
    window_seconds: float | None = Field(
        None, gt=0, description="Analysis window to embed items with, when the task needs one (single notes)."
    )
    hop_seconds: float | None = Field(None, gt=0, description="Hop between analysis windows (seconds).")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in KIND_NAMES:
            raise ValueError(f"unknown task kind {v!r}; choose one of {', '.join(KIND_NAMES)}")
        return v


@dataclass(frozen=True)
class Task:
    """A validated task folder: its spec, its items table and the accessors studies need.

    ``items`` is a DataFrame with at least :data:`COLUMNS` (``duration`` float, others text; an empty
    ``group`` is replaced by the item id so every item belongs to a group).
    """

    root: Path
    spec: TaskSpec
    items: pd.DataFrame

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, folder: str | os.PathLike[str], check_audio: bool = True) -> Task:
        """Read and validate a task folder; raise :class:`TaskError` on the first kind of problem found.

        ``check_audio=False`` skips the existence check of every audio file (for manifests whose audio
        lives elsewhere, e.g. when only labels are needed). Paths match files whose names are in another
        Unicode form (NFC/NFD, :func:`musicrep.data.files.resolve_path`).

        With ``check_audio``, items whose audio is byte-identical to another item's are dropped (in
        memory; ``items.csv`` is not touched): the copy in the earliest split (train, valid, test) is kept,
        a :class:`~musicrep.data.files.DuplicateAudioWarning` names the ids, and the returned spec's
        ``provenance["duplicates_dropped"]`` lists ``{kept, kept_split, dropped, split}`` per dropped item.
        """
        root = Path(folder)
        spec = _read_spec(root)
        items = _read_items(root / ITEMS_CSV)
        task = cls(root=root, spec=spec, items=items)
        task.validate(check_audio=check_audio)
        return _drop_duplicate_audio(task) if check_audio else task

    def validate(self, check_audio: bool = True) -> None:
        """Check ids, splits, labels, durations, group leakage and (optionally) that the audio exists.

        Key names are canonicalised in place (vocabulary and rows: ``Db major`` → ``C# major``), so every
        later step compares one spelling.
        """
        csv = self.root / ITEMS_CSV
        df = self.items
        try:
            self.spec.vocabulary = get_kind(self.spec.kind).canonical_vocabulary(self.spec.vocabulary)
        except ValueError as exc:
            raise TaskError(f"{self.root / TASK_YAML}: {exc}") from None
        if len(set(self.spec.vocabulary)) != len(self.spec.vocabulary):
            raise TaskError(f"{self.root / TASK_YAML}: vocabulary has duplicate entries")
        dup = df["id"].duplicated(keep="first")
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            first = int(np.flatnonzero((df["id"] == df["id"].iloc[i]).to_numpy())[0])
            raise TaskError(
                f"{csv}: duplicate id {df['id'].iloc[i]!r} on lines {_line(first)} and {_line(i)} "
                f"({int(dup.sum())} duplicate ids in all); ids must be unique"
            )
        empty = df["id"] == ""
        if empty.any():
            raise TaskError(f"{csv}: line {_line(int(np.flatnonzero(empty.to_numpy())[0]))}: empty id")
        bad_split = ~df["split"].isin(SPLITS)
        if bad_split.any():
            i = int(np.flatnonzero(bad_split.to_numpy())[0])
            raise TaskError(
                f"{csv}: line {_line(i)} (id {df['id'].iloc[i]!r}): split {df['split'].iloc[i]!r} "
                f"is not one of {', '.join(SPLITS)}"
            )
        bad_dur = ~np.isfinite(df["duration"].to_numpy()) | (df["duration"].to_numpy() < 0)
        if bad_dur.any():
            i = int(np.flatnonzero(bad_dur)[0])
            raise TaskError(f"{csv}: line {_line(i)} (id {df['id'].iloc[i]!r}): duration must be a number ≥ 0")
        self._check_labels(csv)
        self._check_groups(csv)
        if check_audio:
            self._check_audio(csv)

    def _check_labels(self, csv: Path) -> None:
        kind, vocab = get_kind(self.spec.kind), set(self.spec.vocabulary)
        canonical = []
        for i, (item_id, label) in enumerate(zip(self.items["id"], self.items["label"], strict=True)):
            try:
                canonical.append(kind.canonical_label(label, vocab))
            except ValueError as exc:
                fix = f" of {self.root / TASK_YAML}; add it there or fix the row" if "vocabulary" in str(exc) else ""
                raise TaskError(f"{csv}: line {_line(i)} (id {item_id!r}): {exc}{fix}") from None
        self.items["label"] = canonical

    def _check_groups(self, csv: Path) -> None:
        splits_per_group = self.items.groupby("group", sort=True)["split"].nunique()
        leaking = splits_per_group[splits_per_group > 1]
        if len(leaking):
            g = leaking.index[0]
            rows = self.items[self.items["group"] == g]
            where = ", ".join(f"line {_line(int(i))} ({s})" for i, s in zip(rows.index[:4], rows["split"][:4]))
            raise TaskError(
                f"{csv}: group {g!r} appears in more than one split ({where}); "
                f"{len(leaking)} group(s) leak. Put every item of a group in the same split"
            )

    def _check_audio(self, csv: Path) -> None:
        listings: dict[Path, Any] = {}
        missing = [i for i, p in enumerate(self.items["path"]) if not resolve_path(self.root / p, listings).is_file()]
        if missing:
            i = missing[0]
            raise TaskError(
                f"{csv}: line {_line(i)} (id {self.items['id'].iloc[i]!r}): audio file "
                f"{self.root / self.items['path'].iloc[i]} does not exist ({len(missing)} missing in all); "
                f"paths are relative to the task folder"
            )

    # ------------------------------------------------------------------ accessors
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def vocabulary(self) -> list[str]:
        return list(self.spec.vocabulary)

    def __len__(self) -> int:
        return len(self.items)

    def split(self, name: str) -> pd.DataFrame:
        """Items of one split (``train`` | ``valid`` | ``test``), in file order."""
        if name not in SPLITS:
            raise TaskError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return self.items[self.items["split"] == name]

    def _rows(self, split: str | None) -> pd.DataFrame:
        return self.items if split is None else self.split(split)

    def audio_path(self, item: str | Mapping[str, Any]) -> Path:
        """Absolute path of an item's audio, given its id or its row (the name on disk, whatever its Unicode form)."""
        if isinstance(item, str):
            rows = self.items[self.items["id"] == item]
            if rows.empty:
                raise TaskError(f"{self.root / ITEMS_CSV}: no item with id {item!r}")
            rel = rows["path"].iloc[0]
        else:
            rel = item["path"]
        return resolve_path(self.root / rel).resolve()

    def paths(self, split: str | None = None) -> list[Path]:
        """Absolute audio paths of a split (or all items), in file order (names as on disk, see :meth:`audio_path`)."""
        listings: dict[Path, Any] = {}
        return [resolve_path(self.root / p, listings).resolve() for p in self._rows(split)["path"]]

    def labels(self, split: str | None = None) -> list[str] | list[list[str]]:
        """Raw labels as text (a list of labels per item for multilabel)."""
        raw = list(self._rows(split)["label"])
        return [split_labels(x) for x in raw] if self.kind == "multilabel" else raw

    def targets(self, split: str | None = None) -> np.ndarray:
        """Numeric targets of a split (or all items); see the table in the module docstring."""
        raw = self._rows(split)["label"]
        return get_kind(self.kind).targets(list(raw), self.vocabulary)

    def class_index(self, split: str | None = None) -> np.ndarray:
        """Class id per item for single-label kinds: the index into ``vocabulary`` (multiclass, pitch).

        For ``key`` it is the index into :data:`musicrep.theory.KEYS` — the same numbers as
        :meth:`targets` — even when the task's vocabulary lists only some keys or another order. Why:
        key ids must mean the same key on every key task, for the probes and the metrics, which all read
        them in that fixed 24-key order. This is :meth:`musicrep.kinds.Kind.class_ids`.
        """
        if self.kind in ("multilabel", "regression"):
            raise TaskError(f"task {self.name!r} is {self.kind}; class_index is for single-label tasks")
        return get_kind(self.kind).class_ids(list(self._rows(split)["label"]), self.vocabulary)

    def minutes(self, split: str | None = None) -> float:
        """Total audio duration of a split (or all items) in minutes."""
        return float(self._rows(split)["duration"].sum()) / 60.0

    def label_counts(self, split: str | None = None) -> dict[str, int]:
        """How many items carry each vocabulary entry (regression: empty)."""
        if self.kind == "regression":
            return {}
        counts = dict.fromkeys(self.vocabulary, 0)
        for lab in self.labels(split):
            for x in lab if isinstance(lab, list) else [lab]:
                counts[x] += 1
        return counts

    def classes_without_training_items(self) -> list[str]:
        """Vocabulary entries that label valid or test items but no training item (regression: none).

        A probe never sees such a class in training, so it can only be guessed; the caller warns by name.
        """
        if self.kind == "regression":
            return []
        train = self.label_counts("train")
        later = {k for s in ("valid", "test") for k, v in self.label_counts(s).items() if v}
        return [k for k in self.vocabulary if k in later and not train[k]]

    def summary(self) -> dict[str, Any]:
        """Sizes, minutes and label counts per split: what a report or the issue note lists."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "items": len(self), "minutes": self.minutes()}
        for s in SPLITS:
            out[s] = {
                "items": int((self.items["split"] == s).sum()),
                "groups": int(self.split(s)["group"].nunique()),
                "minutes": round(self.minutes(s), 2),
                "labels": {k: v for k, v in self.label_counts(s).items() if v},
            }
        return out

    def with_items(self, items: pd.DataFrame) -> Task:
        """The same task restricted to (or re-ordered as) ``items`` — used by budgets/subsets."""
        return replace(self, items=items.reset_index(drop=True))

    # ------------------------------------------------------------------ writing
    @staticmethod
    def write(folder: str | os.PathLike[str], spec: TaskSpec | Mapping[str, Any],
              items: pd.DataFrame | Iterable[Mapping[str, Any]], check_audio: bool = True) -> Task:
        """Write ``task.yaml`` and ``items.csv`` into ``folder`` and return the validated task."""
        return write_task(folder, spec, items, check_audio=check_audio)


def write_task(folder: str | os.PathLike[str], spec: TaskSpec | Mapping[str, Any],
               items: pd.DataFrame | Iterable[Mapping[str, Any]], check_audio: bool = True) -> Task:
    """Write a task folder's manifests (audio must already be in place) and validate the result.

    ``items`` rows need ``id``, ``path`` (relative to ``folder``), ``split``, ``label`` and
    ``duration``; ``group`` defaults to the id. A multilabel ``label`` may be given as a list.
    Output is byte-stable: same spec and rows → same files (durations written with 4 decimals).
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    if not isinstance(spec, TaskSpec):
        try:
            spec = TaskSpec.model_validate(dict(spec))
        except ValidationError as exc:
            raise TaskError(f"task spec for {root}: {_pydantic_message(exc)}") from None
    df = pd.DataFrame(list(items)) if not isinstance(items, pd.DataFrame) else items.copy()
    missing = [c for c in COLUMNS if c not in df.columns and c != "group"]
    if missing:
        raise TaskError(f"items for {root / ITEMS_CSV} lack column(s) {missing}; need {list(COLUMNS)}")
    if "group" not in df.columns:
        df["group"] = df["id"]
    df["label"] = [LABEL_SEP.join(x) if isinstance(x, list | tuple) else str(x) for x in df["label"]]
    df["duration"] = [f"{float(d):.4f}" for d in df["duration"]]
    df = df[list(COLUMNS) + [c for c in df.columns if c not in COLUMNS]]
    text = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    (root / TASK_YAML).write_text(text, encoding="utf-8")
    df.to_csv(root / ITEMS_CSV, index=False, lineterminator="\n")
    return Task.load(root, check_audio=check_audio)


# ---------------------------------------------------------------------- helpers
def _line(i: int) -> int:
    """CSV line number (1-based, header is line 1) of the i-th data row."""
    return i + 2


def _pydantic_message(exc: ValidationError) -> str:
    return "; ".join(f"key {k!r}: {m}" for k, m in validation_problems(exc))


def _read_spec(root: Path) -> TaskSpec:
    path = root / TASK_YAML
    if not root.is_dir():
        raise TaskError(f"{root}: task folder does not exist")
    if not path.is_file():
        raise TaskError(f"{path}: missing; a task folder needs task.yaml and items.csv")
    data = read_yaml_mapping(path, TaskError, "keys (name, kind, vocabulary, …)")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise TaskError(f"{path}: {_pydantic_message(exc)}") from None


def _read_items(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise TaskError(f"{path}: missing; a task folder needs task.yaml and items.csv")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot be read as CSV ({exc})") from None
    if "group" not in df.columns:
        df["group"] = ""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TaskError(f"{path}: missing column(s) {missing}; the header must contain {', '.join(COLUMNS)}")
    for c in ("id", "path", "split", "label", "group"):
        df[c] = df[c].str.strip()
    df["group"] = df["group"].where(df["group"] != "", df["id"])
    durations = pd.to_numeric(df["duration"], errors="coerce")
    bad = durations.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TaskError(f"{path}: line {_line(i)}: duration {df['duration'].iloc[i]!r} is not a number (seconds)")
    df["duration"] = durations.astype(float)
    return df.reset_index(drop=True)


def _drop_duplicate_audio(task: Task) -> Task:
    """``task`` without the items whose audio duplicates another's; warns and records them in provenance."""
    items = task.items
    dups = find_duplicates(list(items["id"]), task.paths(), list(items["split"]))
    if not dups:
        return task
    warn_duplicates(str(task.root / ITEMS_CSV), dups)
    dropped = {d.dropped for d in dups}
    provenance = dict(task.spec.provenance)
    provenance["duplicates_dropped"] = [*provenance.get("duplicates_dropped", []), *(d.as_dict() for d in dups)]
    return replace(task, spec=task.spec.model_copy(update={"provenance": provenance}),
                   items=items[~items["id"].isin(dropped)].reset_index(drop=True))

"""Importers: a local copy of a public dataset → musicrep task folder(s), audio left in place.

Takes the root folder of a dataset as its authors distribute it (plus the split files the literature
uses) and gives task folders (``task.yaml`` + ``items.csv``, written by :func:`musicrep.data.write_task`)
whose ``path`` column points at the original audio files (absolute paths), so nothing is copied.

Registry: :data:`IMPORTERS` maps a name (``mtat``, ``gtzan``, ``nsynth``, ``giantsteps``, ``jamendo``,
``emomusic``, ``tinysol``, ``folder``, ``csv``) to a function ``(root, options) -> {task name:
ImportedTask}``; adding a dataset is adding one decorated function. :func:`import_dataset` runs one and
writes the result: a single task goes to ``OUT/``, several (e.g. NSynth's pitch and instrument) to
``OUT/<task>/`` (or pick one with ``task=``).

Splits: official ones when the dataset has them (MTAT, GTZAN fault-filtered, NSynth, MTG-Jamendo
split-0, EmoMusic's MediaEval sets, TinySOL folds, GiantSteps test vs MTG train); otherwise
:func:`musicrep.data.splits.grouped_split` — deterministic (hash of seed and group, not of file order),
stratified by label and grouped by artist/track/instrument when one is known, so no group straddles two
splits.

Why audio is checked at import: a task that names a missing or unreadable file fails late, inside a long
extraction. Every referenced file's header is read here (duration comes from it); bad or missing files
are reported by name and left out, the rest is imported.

Names and copies: a path from a CSV or metadata matches the file on disk even when one is in NFC and the
other in NFD Unicode form (:func:`musicrep.data.files.resolve_path`). Items with byte-identical audio
(datasets that hold one track under two ids) are kept once, in the earliest split (train, valid, test);
the pairs are warned about by id and listed under ``duplicates_dropped`` in the task's provenance.

The expected on-disk layouts are written in each importer's docstring (``musicrep data import --list``).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicrep.audio import AudioError, find_audio
from musicrep.audio import info as audio_info
from musicrep.data.files import Duplicate, find_duplicates, resolve_path, warn_duplicates
from musicrep.data.splits import grouped_split
from musicrep.data.task import KEY_VOCABULARY, KINDS, PITCH_CLASSES, SPLITS, TaskSpec, write_task

__all__ = [
    "IMPORTERS",
    "DatasetError",
    "ImportOptions",
    "ImportReport",
    "ImportedItem",
    "ImportedTask",
    "Importer",
    "canonical_key",
    "import_dataset",
    "register",
]


class DatasetError(Exception):
    """The dataset cannot be imported (wrong root, missing annotation/split file). Names the file and fix."""


# ------------------------------------------------------------------------------------------ data model


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
    #: Folder holding the audio when it is not inside ``root`` (MTAT, Jamendo).
    audio: Path | None = None
    #: Seed of the deterministic splits made when a dataset has none.
    seed: int = 0
    #: ``csv`` importer: the task kind (default: multilabel if any label holds ``;``, else multiclass).
    kind: str | None = None
    #: Fractions (train, valid, test) of made-up splits.
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)


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


# ------------------------------------------------------------------------------------------ helpers


def _split_items(items: list[ImportedItem], opts: ImportOptions) -> None:
    """Give ``items`` made-up stratified (grouped when they carry a group) splits, in place."""
    keys = [it.id for it in items]
    labels = [str(it.labels[0]) if it.labels else "" for it in items]
    groups = [it.group or it.id for it in items]
    split = grouped_split(keys, labels, groups, fractions=opts.fractions, seed=opts.seed)
    for it in items:
        it.split = split[it.id]


def _drop_leaky_groups(task: ImportedTask) -> None:
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


def canonical_key(text: str) -> str | None:
    """A key name in the task format's mir_eval spelling (``"A# major"`` → ``"Bb major"``), or None.

    Accepts ``"e minor"``, ``"Eb minor"``, ``"D#min"``, ``"C:maj"``; rejects ambiguous annotations such
    as ``"C minor / F# minor"``, ``"-"`` or a missing mode, because a single-label key task cannot
    represent them.
    """
    s = text.strip()
    m = re.fullmatch(r"([A-Ga-g])\s*([#b♯♭]?)\s*[: ]?\s*(major|minor|maj|min)", s, flags=re.IGNORECASE)
    if not m:
        return None
    names = PITCH_CLASSES
    base = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[m.group(1).upper()]
    acc = {"#": 1, "♯": 1, "b": -1, "♭": -1, "": 0}[m.group(2)]
    mode = "major" if m.group(3).lower().startswith("maj") else "minor"
    return f"{names[(base + acc) % 12]} {mode}"




def _need(path: Path, what: str, fix: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: {what} not found; {fix}")
    return path


def _first_existing(candidates: Iterable[Path]) -> Path | None:
    for c in candidates:
        if c.exists():
            return c
    return None


def _dir_with(candidates: Iterable[Path], filename: str) -> Path | None:
    """The first candidate folder that holds ``filename`` (split files live in a few known places)."""
    return next((c for c in candidates if (c / filename).exists()), None)


def _audio_index(root: Path) -> dict[str, Path]:
    """Audio files under ``root`` by lower-cased stem (``blues.00000``) — for datasets whose lists name
    files with another extension or folder than the copy on disk (GTZAN .au vs .wav)."""
    index: dict[str, Path] = {}
    for f in find_audio(root):
        index.setdefault(f.stem.lower(), f)
    return index


def _read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV/TSV with header names and values stripped (EmoMusic's header has stray spaces)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DatasetError(f"{path}: empty file") from None
        return [{h: v.strip() for h, v in zip(header, row)} for row in reader if any(c.strip() for c in row)]


# ------------------------------------------------------------------------------------------ importers


@register("mtat", "MagnaTagATune, top-50 tags (multilabel), the standard split of Won et al. / Lee et al.")
def _mtat(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """MagnaTagATune (top-50 tags, multilabel; mAP / ROC-AUC).

    Expected layout (ROOT = the MTAT folder)::

        ROOT/mp3/0/ … ROOT/mp3/f/*.mp3     the audio (ROOT/0/… also works; or --audio DIR)
        ROOT/split/mtat/train.npy          Won et al.'s sota-music-tagging-models split files
        ROOT/split/mtat/valid.npy          (also found in ROOT/split/ or ROOT/; or --splits DIR):
        ROOT/split/mtat/test.npy             each entry "ix<TAB>d/file.mp3"
        ROOT/split/mtat/tags.npy           the 50 tag names (column order of binary.npy)
        ROOT/split/mtat/binary.npy         [25863, 50] multi-hot, row ix = annotations_final.csv row
        ROOT/annotations_final.csv         only needed without binary.npy (labels are read from it)

    Without split files, the older directory split (folders 0–b train, c valid, d–f test; Dieleman &
    Schrauwen 2014) with the 50 most frequent tags of annotations_final.csv is used.
    Group = the source track (file name without the clip's segment numbers).
    """
    import numpy as np

    audio_root = opts.audio or _first_existing([root / "mp3", root / "audio", root]) or root
    split_dir = Path(opts.splits or _dir_with([root / "split" / "mtat", root / "split", root], "train.npy") or root)
    annotations = root / "annotations_final.csv"

    def track_of(rel: str) -> str:
        return re.sub(r"-\d+-\d+\.mp3$", "", Path(rel).name)  # "<artist>-<album>-<nn>-<title>-<start>-<end>.mp3"

    items: list[ImportedItem] = []
    if (split_dir / "train.npy").exists():
        tags = [str(t) for t in np.load(_need(split_dir / "tags.npy", "MTAT tags.npy", "it comes with the split files"),
                                        allow_pickle=True)]
        binary = np.load(split_dir / "binary.npy", allow_pickle=True) if (split_dir / "binary.npy").exists() else None
        by_row: dict[int, list[str]] = {}
        if binary is None:
            rows = _read_csv(_need(annotations, "annotations_final.csv", "put it in ROOT or give binary.npy"), "\t")
            for i, r in enumerate(rows):
                by_row[i] = [t for t in tags if r.get(t, "0") == "1"]
        for split, fname in (("train", "train.npy"), ("valid", "valid.npy"), ("test", "test.npy")):
            entries = np.load(_need(split_dir / fname, f"MTAT split file {fname}",
                                    "give --splits DIR with train/valid/test/tags/binary.npy"), allow_pickle=True)
            for entry in entries:
                ix_text, rel = str(entry).split("\t", 1)
                ix = int(ix_text)
                labels = ([t for t, v in zip(tags, binary[ix]) if v] if binary is not None else by_row.get(ix, []))
                rel = rel.strip()
                items.append(ImportedItem(Path(rel).with_suffix("").as_posix(), audio_root / rel, split,
                                          labels, group=track_of(rel)))
        prov = {"split": f"Won et al. split files in {split_dir}"}
    else:
        rows = _read_csv(_need(annotations, "annotations_final.csv",
                               "give the MTAT root (or --splits with Won et al.'s train/valid/test.npy)"), "\t")
        tag_cols = [c for c in rows[0] if c not in ("clip_id", "mp3_path")] if rows else []
        counts = Counter({t: sum(r.get(t) == "1" for r in rows) for t in tag_cols})
        tags = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]]
        for r in rows:
            rel = r.get("mp3_path", "")
            if not rel:
                continue
            folder = rel.split("/", 1)[0].lower()
            split = "test" if folder in ("d", "e", "f") else "valid" if folder == "c" else "train"
            items.append(ImportedItem(Path(rel).with_suffix("").as_posix(), audio_root / rel, split,
                                      [t for t in tags if r.get(t) == "1"], group=track_of(rel)))
        prov = {"split": "directory split 0-b/c/d-f (no split files found)"}
    task = ImportedTask("mtat", "multilabel", sorted(tags), items, ["map", "roc_auc"], {"dataset": "MagnaTagATune", **prov})
    _drop_leaky_groups(task)
    return {"mtat": task}


@register("gtzan", "GTZAN genres (10 classes), Kereliuk/Sturm fault-filtered split")
def _gtzan(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """GTZAN (10 genres, multiclass; accuracy).

    Expected layout::

        ROOT/**/<genre>.000NN.au|wav      audio anywhere under ROOT (genres/<genre>/ in the original
                                          tarball, Data/genres_original/<genre>/ in the Kaggle copy)
        ROOT/train_filtered.txt           the fault-filtered split of Kereliuk et al. 2015 / Sturm
        ROOT/valid_filtered.txt           (coreyker/dnn-mgr), lines "blues/blues.00029.wav";
        ROOT/test_filtered.txt            also found in ROOT/splits/ or --splits DIR

    Files are matched by stem, so .au and .wav copies both work. Without the split files every clip is
    imported with a deterministic stratified 80/10/10 split (not fault-filtered; recorded in task.yaml).
    """
    split_dir = Path(opts.splits or _dir_with(
        [root, root / "splits", root / "split", root / "split" / "gtzan", root / "GTZAN_split"],
        "train_filtered.txt") or root)
    index = _audio_index(root)
    items: list[ImportedItem] = []
    if (split_dir / "train_filtered.txt").exists():
        for split, fname in (("train", "train_filtered.txt"), ("valid", "valid_filtered.txt"), ("test", "test_filtered.txt")):
            lines = _need(split_dir / fname, f"GTZAN split file {fname}", "give all three *_filtered.txt").read_text().split()
            for line in lines:
                stem = Path(line).stem.lower()
                genre = stem.split(".")[0]
                path = index.get(stem, root / line)
                items.append(ImportedItem(stem, path, split, [genre]))
        prov = {"split": "fault-filtered (Kereliuk et al. 2015)"}
    else:
        for stem, path in sorted(index.items()):
            if re.fullmatch(r"[a-z]+\.\d{5}", stem):
                items.append(ImportedItem(stem, path, "", [stem.split(".")[0]]))
        if not items:
            raise DatasetError(f"{root}: no GTZAN files (<genre>.000NN.wav/.au) found; give the folder holding genres/")
        _split_items(items, opts)
        prov = {"split": f"stratified 80/10/10, seed {opts.seed} (no *_filtered.txt found; NOT fault-filtered)"}
    vocab = sorted({it.labels[0] for it in items})
    return {"gtzan": ImportedTask("gtzan", "multiclass", vocab, items, ["accuracy"], {"dataset": "GTZAN", **prov})}


@register("nsynth", "NSynth: pitch (MIDI number) and instrument family tasks, official train/valid/test")
def _nsynth(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """NSynth (tasks ``pitch`` and ``instrument``; official splits).

    Expected layout (the official tarballs unpacked side by side)::

        ROOT/nsynth-train/examples.json   {note_str: {pitch, instrument_str, instrument_family_str, …}}
        ROOT/nsynth-train/audio/<note_str>.wav
        ROOT/nsynth-valid/…               same
        ROOT/nsynth-test/…                same

    A missing split folder is skipped (e.g. only nsynth-test unpacked); at least one is required.
    ``pitch``: label = MIDI pitch (vocabulary = pitches present), kind ``pitch``. ``instrument``: label =
    instrument family (bass, brass, …), multiclass. Group = instrument (e.g. ``guitar_acoustic_001``).
    """
    found = {s: root / f"nsynth-{s}" for s in SPLITS if (root / f"nsynth-{s}" / "examples.json").exists()}
    if not found:
        raise DatasetError(f"{root}: no nsynth-{{train,valid,test}}/examples.json found; "
                           "unpack the official NSynth json/wav tarballs into ROOT")
    pitch_items: list[ImportedItem] = []
    family_items: list[ImportedItem] = []
    for split, folder in found.items():
        with open(folder / "examples.json", encoding="utf-8") as f:
            examples = json.load(f)
        for note, meta in sorted(examples.items()):
            path = folder / "audio" / f"{note}.wav"
            group = str(meta.get("instrument_str", ""))
            pitch_items.append(ImportedItem(note, path, split, [str(int(meta["pitch"]))], group))
            family_items.append(ImportedItem(note, path, split, [str(meta["instrument_family_str"])], group))
    pitches = sorted({it.labels[0] for it in pitch_items}, key=int)
    families = sorted({it.labels[0] for it in family_items})
    prov = {"dataset": "NSynth", "split": "official", "splits_found": sorted(found)}
    tasks = {
        "pitch": ImportedTask("nsynth_pitch", "pitch", pitches, pitch_items, ["pitch_accuracy", "chroma_accuracy"], dict(prov)),
        "instrument": ImportedTask("nsynth_instrument", "multiclass", families, family_items, ["accuracy"], dict(prov)),
    }
    for t in tasks.values():
        _drop_leaky_groups(t)
    return tasks


def _read_key_file(path: Path) -> tuple[str | None, int | None]:
    """(key, confidence) from a GiantSteps ``.key`` file: plain ``"Bb major"`` or the tagged
    ``key<TAB>0<TAB>e minor<TAB>2<TAB>comment`` form."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if fields[0] == "key" and len(fields) >= 3:
            conf = int(fields[3]) if len(fields) > 3 and fields[3].strip().isdigit() else None
            return canonical_key(fields[2]), conf
        return canonical_key(line), None
    return None, None


@register("giantsteps", "GiantSteps key (24 keys; MIREX weighted score): MTG-key train, GiantSteps-key test")
def _giantsteps(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """GiantSteps key (24 classes, kind ``key``; MIREX weighted score).

    Expected layout: either both datasets side by side (the usual protocol: train on MTG-key, test on
    GiantSteps-key)::

        ROOT/giantsteps-mtg-key-dataset/audio/<id>.LOFI.mp3
        ROOT/giantsteps-mtg-key-dataset/annotations/annotations.txt   ID<TAB>MANUAL KEY<TAB>C (confidence)
        ROOT/giantsteps-key-dataset/audio/<id>.LOFI.mp3
        ROOT/giantsteps-key-dataset/annotations/key/<id>.LOFI.key     "Bb major"

    → MTG-key tracks with confidence 2 and one unambiguous key become train (10 % held out as valid,
    stratified by key), GiantSteps-key becomes test. Or ROOT is one dataset folder (audio/ +
    annotations/key/ or annotations/giantsteps/ ``*.key`` files, or annotations.txt): all its tracks
    with a usable key, split 80/10/10 stratified. Keys are written in the task format's spelling
    (:data:`musicrep.data.task.KEY_VOCABULARY`: ``Bb major``, ``F# minor``; enharmonics mapped);
    ambiguous or missing keys ("-", "C minor / F# minor") are left out and reported.
    """

    def one_dataset(folder: Path, min_conf: int) -> tuple[list[ImportedItem], list[tuple[str, str]]]:
        audio = {p.name.split(".")[0]: p for p in find_audio(folder / "audio")} if (folder / "audio").exists() else {}
        keys: dict[str, tuple[str | None, int | None, str]] = {}
        for sub in ("key", "giantsteps"):
            for kf in sorted((folder / "annotations" / sub).glob("*.key")):
                k, c = _read_key_file(kf)
                keys.setdefault(kf.name.split(".")[0], (k, c, kf.read_text(errors="replace").strip()))
        table = folder / "annotations" / "annotations.txt"
        if table.exists():
            for r in _read_csv(table, "\t"):
                conf = r.get("C", "")
                keys[r["ID"]] = (canonical_key(r.get("MANUAL KEY", "")),
                                 int(conf) if conf.isdigit() else None, r.get("MANUAL KEY", ""))
        items, skipped = [], []
        for tid, (k, conf, raw) in sorted(keys.items()):
            if k is None:
                skipped.append((tid, f"no single key in annotation {raw!r}"))
            elif conf is not None and conf < min_conf:
                skipped.append((tid, f"annotation confidence {conf} < {min_conf}"))
            elif tid not in audio:
                skipped.append((str(folder / "audio" / f"{tid}.LOFI.mp3"), "audio file missing"))
            else:
                items.append(ImportedItem(tid, audio[tid], "", [k]))
        return items, skipped

    mtg, gs = root / "giantsteps-mtg-key-dataset", root / "giantsteps-key-dataset"
    skipped: list[tuple[str, str]] = []
    if mtg.exists() and gs.exists():
        train, s1 = one_dataset(mtg, min_conf=2)
        test, s2 = one_dataset(gs, min_conf=0)
        skipped = s1 + s2
        split = grouped_split([i.id for i in train], [i.labels[0] for i in train],
                                 fractions=(0.9, 0.1, 0.0), seed=opts.seed)
        for it in train:
            it.split = split[it.id]
        for it in test:
            it.split = "test"
        items = train + test
        prov = {"split": "train/valid = GiantSteps-MTG-key (confidence 2), test = GiantSteps-key"}
    else:
        items, skipped = one_dataset(root, min_conf=0)
        if not items:
            raise DatasetError(f"{root}: no GiantSteps tracks found (expected audio/<id>.LOFI.mp3 with "
                               "annotations/key/<id>.LOFI.key, or both dataset folders side by side)")
        _split_items(items, opts)
        prov = {"split": f"stratified 80/10/10, seed {opts.seed}"}
    task = ImportedTask("giantsteps_key", "key", list(KEY_VOCABULARY), items, ["mirex", "accuracy"],
                        {"dataset": "GiantSteps key", **prov}, left_out=skipped)
    return {"giantsteps": task}


_JAMENDO_SUBSETS = {"top50": "autotagging_top50tags", "moodtheme": "autotagging_moodtheme"}


@register("jamendo", "MTG-Jamendo: top-50 tags and mood/theme (multilabel), official split-0")
def _jamendo(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """MTG-Jamendo (tasks ``top50`` and ``moodtheme``, multilabel; mAP / ROC-AUC; split-0).

    Expected layout (a clone of mtg-jamendo-dataset with the audio downloaded)::

        ROOT/data/splits/split-0/autotagging_top50tags-{train,validation,test}.tsv
        ROOT/data/splits/split-0/autotagging_moodtheme-{train,validation,test}.tsv
        ROOT/audio/<NN>/<track>.mp3       the audio (or --audio DIR); *.low.mp3 copies are also found

    TSV rows: TRACK_ID, ARTIST_ID, ALBUM_ID, PATH (e.g. ``14/214.mp3``), DURATION, TAGS… (one tag per
    extra column, e.g. ``genre---rock``, ``mood/theme---happy``; labels keep that full name).
    ``--splits DIR`` may point straight at a split-N folder. Group = artist (split-0 is artist-filtered).
    """
    split_dir = opts.splits or _first_existing(
        [root / "data" / "splits" / "split-0", root / "splits" / "split-0", root / "split-0", root])
    split_dir = Path(split_dir or root)
    audio_root = opts.audio or _first_existing([root / "audio", root / "raw_30s" / "audio", root]) or root
    tasks: dict[str, ImportedTask] = {}
    for name, prefix in _JAMENDO_SUBSETS.items():
        files = {s: split_dir / f"{prefix}-{tsv}.tsv" for s, tsv in (("train", "train"), ("valid", "validation"), ("test", "test"))}
        if not all(f.exists() for f in files.values()):
            continue
        items: list[ImportedItem] = []
        for split, f in files.items():
            with open(f, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh, delimiter="\t"))
            for row in rows[1:]:
                if len(row) < 5:
                    continue
                track, artist, _album, rel = row[0], row[1], row[2], row[3]
                path = resolve_path(audio_root / rel)
                if not path.exists():
                    low = resolve_path(path.with_name(path.name.replace(".mp3", ".low.mp3")))
                    path = low if low.exists() else path
                items.append(ImportedItem(track, path, split, [t.strip() for t in row[5:] if t.strip()], artist))
        vocab = sorted({t for it in items for t in it.labels})
        task = ImportedTask(f"jamendo_{name}", "multilabel", vocab, items, ["map", "roc_auc"],
                            {"dataset": "MTG-Jamendo", "split": f"official ({split_dir.name})"})
        _drop_leaky_groups(task)
        tasks[name] = task
    if not tasks:
        raise DatasetError(f"{split_dir}: no autotagging_top50tags-*.tsv / autotagging_moodtheme-*.tsv split files; "
                           "give the mtg-jamendo-dataset clone as --root or --splits data/splits/split-0")
    return tasks


@register("emomusic", "EmoMusic (1000 songs): arousal and valence regression tasks, MediaEval 2013 sets")
def _emomusic(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """EmoMusic / "1000 songs for emotional analysis of music" (tasks ``arousal`` and ``valence``,
    regression on the static per-song means; r²).

    Expected layout::

        ROOT/clips_45seconds/<song_id>.mp3
        ROOT/annotations/static_annotations.csv   song_id, mean_arousal, std_arousal, mean_valence, std_valence
        ROOT/annotations/songs_info.csv           song_id, file_name, Artist, …, Mediaeval 2013 set

    Split: the MediaEval 2013 ``evaluation`` set is test; the ``development`` set is train with 1/6
    held out as valid (grouped by artist, deterministic) — the usual 619/124/187 protocol size. Without
    songs_info.csv, a stratified 80/10/10 split on arousal tertiles is made. Targets are on the 1–9 scale.
    """
    ann_dir = root / "annotations" if (root / "annotations").exists() else root
    static = _need(ann_dir / "static_annotations.csv", "static_annotations.csv",
                   "give the EmoMusic root holding annotations/ and clips_45seconds/")
    info_rows = {r["song_id"]: r for r in _read_csv(ann_dir / "songs_info.csv")} if (ann_dir / "songs_info.csv").exists() else {}
    clips = root / "clips_45seconds" if (root / "clips_45seconds").exists() else root
    items: list[ImportedItem] = []
    for r in _read_csv(static):
        sid = r["song_id"]
        info = info_rows.get(sid, {})
        fname = info.get("file_name") or f"{sid}.mp3"
        artist = info.get("Artist", "").strip().lower()
        set_name = next((v for k, v in info.items() if k.lower().startswith("mediaeval")), "").lower()
        split = "test" if set_name.startswith("eval") else "train" if set_name.startswith("dev") else ""
        items.append(ImportedItem(sid, clips / fname, split,
                                  [float(r["mean_arousal"]), float(r["mean_valence"])], artist))
    if items and all(it.split for it in items):
        dev = [it for it in items if it.split == "train"]
        tert = _tertiles([it.labels[0] for it in dev])
        split = grouped_split([it.id for it in dev], tert, [it.group or it.id for it in dev],
                                 fractions=(5, 1, 0), seed=opts.seed)
        for it in dev:
            it.split = split[it.id]
        prov = {"split": "MediaEval 2013: evaluation = test; development = train + 1/6 valid (by artist)"}
    else:
        tert = _tertiles([it.labels[0] for it in items])
        split = grouped_split([it.id for it in items], tert, [it.group or it.id for it in items],
                                 fractions=opts.fractions, seed=opts.seed)
        for it in items:
            it.split = split[it.id]
        prov = {"split": f"stratified 80/10/10 on arousal tertiles, seed {opts.seed} (no songs_info.csv)"}
    tasks: dict[str, ImportedTask] = {}
    for col, target in enumerate(("arousal", "valence")):
        its = [ImportedItem(it.id, it.path, it.split, [it.labels[col]], it.group) for it in items]
        task = ImportedTask(f"emomusic_{target}", "regression", [], its, ["r2"],
                            {"dataset": "EmoMusic (MediaEval 2013)", "target": f"mean {target}",
                             "scale": "1-9", **prov})
        _drop_leaky_groups(task)
        tasks[target] = task
    return tasks


def _tertiles(values: Sequence[float]) -> list[str]:
    """Label each value low/mid/high by tertile — a stratification key for regression targets."""
    import numpy as np

    if not values:
        return []
    lo, hi = np.quantile(values, [1 / 3, 2 / 3])
    return ["low" if v <= lo else "high" if v > hi else "mid" for v in values]


@register("tinysol", "TinySOL: instrument (14 classes) and pitch of single notes, official 5 folds")
def _tinysol(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """TinySOL (tasks ``instrument`` and ``pitch``).

    Expected layout (the Zenodo archive and metadata)::

        ROOT/TinySOL_metadata.csv     Path, Fold, Family, Instrument (abbr.), Instrument (in full),
                                      Technique…, Pitch (e.g. "A#3"), Pitch ID (MIDI), Dynamics, …
        ROOT/TinySOL/<Family>/<Instrument>/ordinario/<file>.wav   (Path is relative to ROOT/TinySOL/,
                                      or to ROOT; both are tried)

    Splits from the official folds: fold 0 = test, fold 1 = valid, folds 2–4 = train.
    ``instrument``: label = instrument in full (e.g. "Violin"); ``pitch``: label = MIDI number (Pitch ID).
    """
    meta = _need(root / "TinySOL_metadata.csv", "TinySOL_metadata.csv", "give the folder holding it as --root")
    rows = _read_csv(meta)
    audio_base = root / "TinySOL" if (root / "TinySOL").exists() else root

    def col(r: dict[str, str], *names: str) -> str:
        for n in names:
            if n in r:
                return r[n]
        raise DatasetError(f"{meta}: none of the columns {names} found (got {', '.join(r)})")

    fold_split = {"0": "test", "1": "valid"}
    inst_items, pitch_items = [], []
    for r in rows:
        rel = col(r, "Path")
        path = resolve_path(audio_base / rel)
        path = path if path.exists() else root / rel
        split = fold_split.get(col(r, "Fold"), "train")
        iid = Path(rel).with_suffix("").as_posix()
        instrument = col(r, "Instrument (in full)", "Instrument Name", "Instrument (abbr.)", "Instrument")
        inst_items.append(ImportedItem(iid, path, split, [instrument]))
        pitch_items.append(ImportedItem(iid, path, split, [str(int(float(col(r, "Pitch ID"))))]))
    prov = {"dataset": "TinySOL", "split": "official folds: 0 test, 1 valid, 2-4 train"}
    return {
        "instrument": ImportedTask("tinysol_instrument", "multiclass", sorted({i.labels[0] for i in inst_items}),
                                   inst_items, ["accuracy"], dict(prov)),
        "pitch": ImportedTask("tinysol_pitch", "pitch", sorted({i.labels[0] for i in pitch_items}, key=int),
                              pitch_items, ["pitch_accuracy", "chroma_accuracy"], dict(prov)),
    }


@register("folder", "Any folder with one sub-folder per class (multiclass), stratified splits")
def _folder(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """Generic: one sub-folder per class.

    Expected layout::

        ROOT/<class>/**/<file>.<wav|flac|mp3|ogg|…>

    Label = the first folder under ROOT. If ROOT/<class>/ holds sub-folders, the second level is used
    as the group (e.g. ROOT/rock/<artist>/song.mp3 keeps an artist inside one split). Splits:
    deterministic, stratified, grouped 80/10/10 (--seed).
    """
    items: list[ImportedItem] = []
    for f in find_audio(root):
        rel = f.relative_to(root)
        if len(rel.parts) < 2:
            continue  # a file directly in ROOT has no class
        group = f"{rel.parts[0]}/{rel.parts[1]}" if len(rel.parts) > 2 else ""
        items.append(ImportedItem(rel.with_suffix("").as_posix(), f, "", [rel.parts[0]], group))
    if not items:
        raise DatasetError(f"{root}: no audio in sub-folders; expected ROOT/<class>/<file>")
    _split_items(items, opts)
    vocab = sorted({it.labels[0] for it in items})
    name = _task_name(root)
    return {name: ImportedTask(name, "multiclass", vocab, items, ["accuracy"],
                               {"dataset": f"folder {root}", "split": f"stratified 80/10/10, seed {opts.seed}"})}


@register("csv", "Any CSV with path,label[,split][,group] columns (multiclass or multilabel with ';')")
def _csv(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """Generic: a CSV listing files and labels.

    Expected layout: ROOT is the CSV file (or a folder holding exactly one ``*.csv``) with columns::

        path,label[,split][,group]

    ``path`` is absolute or relative to the CSV's folder. ``label`` is one class, several classes
    separated by ``;`` (multilabel), a number (``kind=regression``), a key such as ``F# minor``
    (``kind=key``) or a MIDI number (``kind=pitch``).
    ``split`` (train/valid/test; ``validation`` and ``val`` are accepted) is used when present on every
    row, else a deterministic stratified (grouped by ``group``) 80/10/10 split is made.
    """
    if root.is_dir():
        cands = sorted(root.glob("*.csv"))
        if len(cands) != 1:
            raise DatasetError(f"{root}: expected exactly one *.csv in the folder (found {len(cands)}); give the file")
        root = cands[0]
    rows = _read_csv(_need(root, "CSV file", "give --root path/to/list.csv"))
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise DatasetError(f"{root}: needs a header with at least `path` and `label` columns")
    kind = opts.kind or ("multilabel" if any(";" in r["label"] for r in rows) else "multiclass")
    if kind not in KINDS:
        raise DatasetError(f"--kind {kind!r} is not a task kind; choose one of {', '.join(KINDS)}")
    aliases = {"validation": "valid", "val": "valid", "dev": "valid", "training": "train", "eval": "test"}
    items: list[ImportedItem] = []
    seen: Counter[str] = Counter()
    for r in rows:
        p = Path(r["path"])
        path = p if p.is_absolute() else root.parent / p
        raw = [x.strip() for x in r["label"].split(";") if x.strip()] if kind == "multilabel" else [r["label"]]
        labels: list[Any] = raw
        if kind == "regression":
            try:
                labels = [float(r["label"])]
            except ValueError:
                raise DatasetError(f"{root}: label {r['label']!r} of {r['path']} is not a number (kind=regression)") from None
        elif kind == "key":
            k = canonical_key(r["label"])
            if k is None:
                raise DatasetError(f"{root}: label {r['label']!r} of {r['path']} is not a key like 'F# minor'")
            labels = [k]
        split = r.get("split", "").lower()
        iid = p.with_suffix("").as_posix()
        seen[iid] += 1
        if seen[iid] > 1:
            iid = f"{iid}#{seen[iid]}"
        items.append(ImportedItem(iid, path, aliases.get(split, split), labels, r.get("group", "")))
    bad = sorted({it.split for it in items} - {"train", "valid", "test", ""})
    if bad:
        raise DatasetError(f"{root}: unknown split value(s) {bad}; use train, valid or test")
    if not all(it.split for it in items):
        if kind == "regression":
            tert = _tertiles([float(it.labels[0]) for it in items])
            split = grouped_split([it.id for it in items], tert, [it.group or it.id for it in items],
                                     fractions=opts.fractions, seed=opts.seed)
            for it in items:
                it.split = split[it.id]
        else:
            _split_items(items, opts)
        how = f"stratified 80/10/10, seed {opts.seed}"
    else:
        how = "from the CSV"
    if kind == "regression":
        vocab: list[str] = []
    elif kind == "key":
        vocab = list(KEY_VOCABULARY)
    elif kind == "pitch":
        vocab = sorted({lab for it in items for lab in it.labels}, key=lambda x: int(float(x)))
    else:
        vocab = sorted({lab for it in items for lab in it.labels})
    from musicrep.metrics import TASK_METRICS

    metrics = list(TASK_METRICS[kind])
    name = _task_name(root.with_suffix(""))
    return {name: ImportedTask(name, kind, vocab, items, metrics, {"dataset": f"csv {root}", "split": how})}


def _task_name(p: Path) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", p.resolve().name.lower()).strip("_") or "task"


# ------------------------------------------------------------------------------------------ runner


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

"""Datasets of one's own: a folder with one sub-folder per class, or a CSV of paths and labels."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from musicrep.audio import find_audio
from musicrep.data.importers.base import (
    DatasetError,
    ImportedItem,
    ImportedTask,
    ImportOptions,
    need,
    read_csv,
    register,
    split_items,
    tertiles,
)
from musicrep.data.splits import grouped_split
from musicrep.kinds import KIND_NAMES, get_kind
from musicrep.theory import KEYS, canonical_key


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
    split_items(items, opts)
    vocab = sorted({it.labels[0] for it in items})
    name = _task_name(root)
    return {name: ImportedTask(name, "multiclass", vocab, items, ["accuracy"],
                               {"dataset": f"folder {root}", "split": f"stratified 80/10/10, seed {opts.seed}"})}


@register("csv", "Any CSV with path,label[,split][,group] columns (multiclass or multilabel with ';')")
def _csv(root: Path, opts: ImportOptions) -> dict[str, ImportedTask]:
    """Generic: a CSV listing files and labels.

    Expected layout: ROOT is the CSV file (or a folder holding exactly one ``*.csv``) with columns::

        path,label[,split][,group]

    ``path`` is absolute or relative to the CSV's folder (or to ``--audio`` when given). ``label`` is one class, several classes
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
    rows = read_csv(need(root, "CSV file", "give --root path/to/list.csv"))
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise DatasetError(f"{root}: needs a header with at least `path` and `label` columns")
    kind = opts.kind or ("multilabel" if any(";" in r["label"] for r in rows) else "multiclass")
    if kind not in KIND_NAMES:
        raise DatasetError(f"--kind {kind!r} is not a task kind; choose one of {', '.join(KIND_NAMES)}")
    aliases = {"validation": "valid", "val": "valid", "dev": "valid", "training": "train", "eval": "test"}
    items: list[ImportedItem] = []
    seen: Counter[str] = Counter()
    base = opts.audio if opts.audio is not None else root.parent
    for r in rows:
        p = Path(r["path"])
        path = p if p.is_absolute() else base / p
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
            tert = tertiles([float(it.labels[0]) for it in items])
            split = grouped_split([it.id for it in items], tert, [it.group or it.id for it in items],
                                  fractions=opts.fractions, seed=opts.seed)
            for it in items:
                it.split = split[it.id]
        else:
            split_items(items, opts)
        how = f"stratified 80/10/10, seed {opts.seed}"
    else:
        how = "from the CSV"
    if kind == "regression":
        vocab: list[str] = []
    elif kind == "key":
        vocab = list(KEYS)
    elif kind == "pitch":
        vocab = sorted({lab for it in items for lab in it.labels}, key=lambda x: int(float(x)))
    else:
        vocab = sorted({lab for it in items for lab in it.labels})
    metrics = list(get_kind(kind).metrics)
    name = _task_name(root.with_suffix(""))
    return {name: ImportedTask(name, kind, vocab, items, metrics, {"dataset": f"csv {root}", "split": how})}


def _task_name(p: Path) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", p.resolve().name.lower()).strip("_") or "task"

"""GTZAN genres: the fault-filtered split when its files are there, else a made-up grouped split."""

from __future__ import annotations

import re
from pathlib import Path

from musicrep.data.importers.base import (
    DatasetError,
    ImportedItem,
    ImportedTask,
    ImportOptions,
    audio_index,
    dir_with,
    need,
    register,
    split_items,
)


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
    split_dir = Path(opts.splits or dir_with(
        [root, root / "splits", root / "split", root / "split" / "gtzan", root / "GTZAN_split"],
        "train_filtered.txt") or root)
    index = audio_index(root)
    items: list[ImportedItem] = []
    if (split_dir / "train_filtered.txt").exists():
        for split, fname in (("train", "train_filtered.txt"), ("valid", "valid_filtered.txt"), ("test", "test_filtered.txt")):
            lines = need(split_dir / fname, f"GTZAN split file {fname}", "give all three *_filtered.txt").read_text().split()
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
        split_items(items, opts)
        prov = {"split": f"stratified 80/10/10, seed {opts.seed} (no *_filtered.txt found; NOT fault-filtered)"}
    vocab = sorted({it.labels[0] for it in items})
    return {"gtzan": ImportedTask("gtzan", "multiclass", vocab, items, ["accuracy"], {"dataset": "GTZAN", **prov})}

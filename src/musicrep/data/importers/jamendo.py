"""MTG-Jamendo: top-50 tags and mood/theme (multilabel) on the official split-0."""

from __future__ import annotations

import csv
from pathlib import Path

from musicrep.data.files import resolve_path
from musicrep.data.importers.base import (
    DatasetError,
    ImportedItem,
    ImportedTask,
    ImportOptions,
    drop_leaky_groups,
    first_existing,
    register,
)


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
    split_dir = opts.splits or first_existing(
        [root / "data" / "splits" / "split-0", root / "splits" / "split-0", root / "split-0", root])
    split_dir = Path(split_dir or root)
    audio_root = opts.audio or first_existing([root / "audio", root / "raw_30s" / "audio", root]) or root
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
        drop_leaky_groups(task)
        tasks[name] = task
    if not tasks:
        raise DatasetError(f"{split_dir}: no autotagging_top50tags-*.tsv / autotagging_moodtheme-*.tsv split files; "
                           "give the mtg-jamendo-dataset clone as --root or --splits data/splits/split-0")
    return tasks

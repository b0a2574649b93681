"""MagnaTagATune: top-50 tags (multilabel), Won et al.'s split files or the older directory split."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from musicrep.data.importers.base import (
    ImportedItem,
    ImportedTask,
    ImportOptions,
    dir_with,
    drop_leaky_groups,
    first_existing,
    need,
    read_csv,
    register,
)


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

    audio_root = opts.audio or first_existing([root / "mp3", root / "audio", root]) or root
    split_dir = Path(opts.splits or dir_with([root / "split" / "mtat", root / "split", root], "train.npy") or root)
    annotations = root / "annotations_final.csv"

    def track_of(rel: str) -> str:
        return re.sub(r"-\d+-\d+\.mp3$", "", Path(rel).name)  # "<artist>-<album>-<nn>-<title>-<start>-<end>.mp3"

    items: list[ImportedItem] = []
    if (split_dir / "train.npy").exists():
        tags = [str(t) for t in np.load(need(split_dir / "tags.npy", "MTAT tags.npy", "it comes with the split files"),
                                        allow_pickle=True)]
        binary = np.load(split_dir / "binary.npy", allow_pickle=True) if (split_dir / "binary.npy").exists() else None
        by_row: dict[int, list[str]] = {}
        if binary is None:
            rows = read_csv(need(annotations, "annotations_final.csv", "put it in ROOT or give binary.npy"), "\t")
            for i, r in enumerate(rows):
                by_row[i] = [t for t in tags if r.get(t, "0") == "1"]
        for split, fname in (("train", "train.npy"), ("valid", "valid.npy"), ("test", "test.npy")):
            entries = np.load(need(split_dir / fname, f"MTAT split file {fname}",
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
        rows = read_csv(need(annotations, "annotations_final.csv",
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
    drop_leaky_groups(task)
    return {"mtat": task}

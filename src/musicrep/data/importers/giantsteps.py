"""GiantSteps key: train on GiantSteps-MTG-key, test on GiantSteps-key (or one dataset, split 80/10/10)."""

from __future__ import annotations

from pathlib import Path

from musicrep.audio import find_audio
from musicrep.data.importers.base import (
    DatasetError,
    ImportedItem,
    ImportedTask,
    ImportOptions,
    read_csv,
    register,
    split_items,
)
from musicrep.data.splits import grouped_split
from musicrep.theory import KEYS, canonical_key


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
    (:data:`musicrep.theory.KEYS`: ``Bb major``, ``F# minor``; enharmonics mapped);
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
            for r in read_csv(table, "\t"):
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
        split_items(items, opts)
        prov = {"split": f"stratified 80/10/10, seed {opts.seed}"}
    task = ImportedTask("giantsteps_key", "key", list(KEYS), items, ["mirex", "accuracy"],
                        {"dataset": "GiantSteps key", **prov}, left_out=skipped)
    return {"giantsteps": task}

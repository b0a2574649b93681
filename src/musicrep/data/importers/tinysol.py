"""TinySOL: instrument and pitch of single notes on the official folds."""

from __future__ import annotations

from pathlib import Path

from musicrep.data.files import resolve_path
from musicrep.data.importers.base import DatasetError, ImportedItem, ImportedTask, ImportOptions, need, read_csv, register


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
    meta = need(root / "TinySOL_metadata.csv", "TinySOL_metadata.csv", "give the folder holding it as --root")
    rows = read_csv(meta)
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

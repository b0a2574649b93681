"""NSynth: pitch and instrument-family tasks on the official splits."""

from __future__ import annotations

import json
from pathlib import Path

from musicrep.data.importers.base import DatasetError, ImportedItem, ImportedTask, ImportOptions, drop_leaky_groups, register
from musicrep.data.task import SPLITS


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
        drop_leaky_groups(t)
    return tasks

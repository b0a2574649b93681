"""Importers: a local copy of a public dataset → musicrep task folder(s), audio left in place.

Takes the root folder of a dataset as its authors distribute it (plus the split files the literature
uses) and gives task folders (``task.yaml`` + ``items.csv``, written by :func:`musicrep.data.write_task`)
whose ``path`` column points at the original audio files (absolute paths), so nothing is copied.

Registry: :data:`IMPORTERS` maps a name (``mtat``, ``gtzan``, ``nsynth``, ``giantsteps``, ``jamendo``,
``emomusic``, ``tinysol``, ``folder``, ``csv``) to a function ``(root, options) -> {task name:
ImportedTask}``; adding a dataset is adding one file here with one decorated function, and its name in
the import list below. :func:`import_dataset` runs one and writes the result: a single task goes to ``OUT/``, several (e.g. NSynth's pitch and instrument) to
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

Files: ``base.py`` (data model, registry, shared readers), ``run.py`` (:func:`import_dataset`), one file
per dataset family (``mtat``, ``gtzan``, ``nsynth``, ``giantsteps``, ``jamendo``, ``emomusic``,
``tinysol``; ``generic`` for ``folder`` and ``csv``).
"""

from __future__ import annotations

# Each family module registers its importers when imported; this order is the order of ``--list``.
from musicrep.data.importers import (  # noqa: F401
    mtat,
    gtzan,
    nsynth,
    giantsteps,
    jamendo,
    emomusic,
    tinysol,
    generic,
)
from musicrep.data.importers.base import (
    IMPORTERS,
    DatasetError,
    ImportedItem,
    ImportedTask,
    Importer,
    ImportOptions,
    register,
)
from musicrep.data.importers.run import ImportReport, import_dataset

__all__ = [
    "IMPORTERS",
    "DatasetError",
    "ImportOptions",
    "ImportReport",
    "ImportedItem",
    "ImportedTask",
    "Importer",
    "import_dataset",
    "register",
]

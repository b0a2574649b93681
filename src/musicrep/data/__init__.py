"""Data for musicrep: the task format, the offline renderer, budgets, the unlabelled pool, importers.

Takes nothing from the network. Gives *task folders* (``task.yaml`` + ``items.csv`` + audio, see
:mod:`musicrep.data.task`) that every study reads, whether they were rendered here
(:mod:`musicrep.data.render`), imported from a local copy of a public dataset
(:mod:`musicrep.data.importers`) or assembled by hand, plus an unlabelled pool for pretraining
(:mod:`musicrep.data.pool`; named recipes such as the non-music pool in
:mod:`musicrep.data.pool_presets`, built by :mod:`musicrep.data.pool_staging`) and nested minute/per-class budgets (:mod:`musicrep.data.subset`).
Made-up splits come from one place (:mod:`musicrep.data.splits`); which file an item names (across
Unicode forms) and which items share byte-identical audio are decided in :mod:`musicrep.data.files`.

Submodules are imported on first use so ``import musicrep.data`` stays cheap (no music21, no synth).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Task", "TaskError", "TaskSpec", "render_task", "subset", "write_task"]

_LAZY = {
    "Task": "musicrep.data.task",
    "TaskError": "musicrep.data.task",
    "TaskSpec": "musicrep.data.task",
    "write_task": "musicrep.data.task",
    "subset": "musicrep.data.subset",
    "render_task": "musicrep.data.render",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'musicrep.data' has no attribute {name!r}")

"""Budgets: nested, reproducible subsets of a task or a pool by minutes of audio or items per class.

Takes a :class:`~musicrep.data.task.Task` or an items/manifest ``DataFrame`` (columns ``id`` and
``duration``; ``group`` and ``label`` when present) and gives the same kind of object restricted to a
budget, rows in their original order.

Why ranks from a hash rather than a shuffled list: every unit (a track, i.e. a ``group`` — or the
item itself when there is no group) gets a rank :func:`musicrep.data.splits.rank` (a hash of seed and
unit) that depends on nothing else — the same ranks the grouped split is made from, with another salt.
Taking the lowest-ranked units until the budget is met therefore gives *nested* budgets (the 5-minute
set is inside the 10-minute set, the 5-per-class set inside the 10-per-class set) and the choice of a
track does not change when unrelated tracks are added to or removed from the pool. Limited-data
learning curves need exactly that: each larger budget adds data, it never swaps it.

Why whole tracks: excerpts of one recording are near-duplicates; a budget counted in minutes of
*distinct* music must never split a track across budgets or across train/test.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pandas as pd

from musicrep.data.splits import rank
from musicrep.data.task import Task, TaskError
from musicrep.kinds import LABEL_SEP

__all__ = ["subset"]

T = TypeVar("T", Task, pd.DataFrame)


def subset(task_or_items: T, minutes: float | None = None, per_class: int | None = None, seed: int = 0,
           split: str | None = None) -> T:
    """Restrict a task or manifest to a budget: ``minutes`` of audio by whole tracks, or ``per_class`` items.

    - ``minutes``: the smallest prefix of tracks (in seeded rank order) holding at least that much audio;
      a budget larger than the data returns all of it.
    - ``per_class``: walking items in seeded rank order (tracks first, then items within a track), keep an
      item while its class has fewer than ``per_class`` items. For multilabel items, keep it while *any*
      of its labels is below the count (greedy, so nesting is exact for single-label data only).
    - ``split``: budget only that split and keep every other split whole (e.g. budget the training set
      and still evaluate on the full valid and test sets).

    Returns the same type as given (a :class:`Task` keeps its spec and root).
    """
    if (minutes is None) == (per_class is None):
        raise ValueError("subset: give exactly one of minutes=… or per_class=…")
    is_task = isinstance(task_or_items, Task)
    df = task_or_items.items if is_task else task_or_items
    for col in ("id", "duration"):
        if col not in df.columns:
            raise TaskError(f"subset: items need an {col!r} column (have {list(df.columns)})")
    full = df
    in_split = np.ones(len(full), dtype=bool)
    if split is not None:
        if "split" not in full.columns:
            raise TaskError(f"subset: split={split!r} needs a 'split' column (have {list(full.columns)})")
        in_split = (full["split"].astype(str) == split).to_numpy()
        df = full[in_split]
    units = df["group"].where(df["group"].astype(str) != "", df["id"]) if "group" in df.columns else df["id"]
    units = units.astype(str)
    order = np.lexsort((rank(df["id"].astype(str), seed), rank(units, seed)))  # last key sorts first

    if minutes is not None:
        if minutes <= 0:
            raise ValueError("subset: minutes must be > 0")
        per_unit = df.groupby(units.to_numpy(), sort=False)["duration"].sum()
        unit_order = pd.unique(units.to_numpy()[order])
        cum = np.cumsum(per_unit.loc[unit_order].to_numpy(dtype=float))
        n_units = int(np.searchsorted(cum, minutes * 60.0 - 1e-9) + 1)
        keep_units = set(unit_order[:n_units])
        mask = units.isin(keep_units).to_numpy()
    else:
        if per_class <= 0:
            raise ValueError("subset: per_class must be > 0")
        kind = task_or_items.kind if is_task else None
        if kind == "regression":
            raise TaskError("subset: per_class needs class labels; this task is a regression")
        if "label" not in df.columns:
            raise TaskError("subset: per_class needs a 'label' column")
        multilabel = kind == "multilabel" or (kind is None and df["label"].astype(str).str.contains(LABEL_SEP).any())
        counts: dict[str, int] = {}
        mask = np.zeros(len(df), dtype=bool)
        labels = df["label"].astype(str).to_numpy()
        for i in order:
            labs = [x for x in labels[i].split(LABEL_SEP) if x] if multilabel else [labels[i]]
            if any(counts.get(x, 0) < per_class for x in labs):
                mask[i] = True
                for x in labs:
                    counts[x] = counts.get(x, 0) + 1
    keep = ~in_split  # rows outside the budgeted split stay whole
    keep[np.flatnonzero(in_split)[mask]] = True
    chosen = full[keep]
    return task_or_items.with_items(chosen) if is_task else chosen

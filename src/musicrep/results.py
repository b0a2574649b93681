"""The results table: its columns, reading it, appending to it atomically, and the leaderboard view of it.

Takes rows (dicts named like the columns) and a run folder; gives ``results.csv`` (one tidy row per
representation, pretraining budget, layer, task, probe, deformation, seed and metric, with a bootstrap
95 % CI) and ``leaderboard.csv``. ``evaluate``, every study and the report read and write it only through
this module, so a column is added in one place and no caller keeps its own list.

Why one tidy table: every plot and report is a view of it (filter, group, pivot), so adding a
representation, a probe, a deformation or a budget is adding rows, never a new file format.
Why atomic writes: a run killed mid-write must leave the previous table intact, because re-runs read it
to skip finished units.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrep.metrics import primary_metric
from musicrep.util import default_file_mode

__all__ = [
    "CONDITION_COLUMNS",
    "CONDITION_DEFAULTS",
    "RESULT_COLUMNS",
    "UNIT_COLUMNS",
    "append_rows",
    "best_line",
    "done_units",
    "leaderboard",
    "print_leaderboard",
    "read_results",
    "write_csv_atomic",
]

#: Columns of ``results.csv``, in order. ``evaluate`` leaves the study columns at their clean defaults:
#: ``study`` (which study wrote the row: evaluate, robustness, augmentation, layerwise, …), ``budget_minutes``
#: (pretraining minutes behind the weights), ``deformation`` (what was done to the *test* audio, a
#: :mod:`musicrep.augment` string, ``none`` for clean), ``train_deformation`` (what the probe's training
#: audio got: ``none``, or ``+`` joined augmentation strings), ``labelled_per_class`` (the labelled budget,
#: empty for all), ``augment_fraction`` (share of training items given an augmented copy),
#: ``sample_weight`` (the loss weight of those copies), ``pretrain_data`` (what the weights were pretrained
#: on: ``none``, or the pool / task name, e.g. ``music``, ``nonmusic``) and ``pretrain_seed`` (the seed of
#: that pretraining run, or of the random twin's initialisation; empty when not applicable).
RESULT_COLUMNS: list[str] = [
    "study", "representation", "rep_id", "budget_minutes", "pretrain_data", "pretrain_seed", "layer", "task",
    "kind", "probe", "deformation",
    "train_deformation", "labelled_per_class", "augment_fraction", "sample_weight", "seed",
    "metric", "value", "ci_low", "ci_high", "valid_value", "n_train", "n_test", "n_failed", "selection",
    "best_config", "layer_weights", "unit_key",
]
#: The columns that say under which condition a number was measured (besides representation, task,
#: layer, probe and seed): the leaderboard ranks within each condition, never across them.
CONDITION_COLUMNS: list[str] = ["study", "budget_minutes", "pretrain_data", "pretrain_seed", "deformation",
                                "train_deformation", "labelled_per_class", "augment_fraction", "sample_weight"]
#: What a row gets for a condition column a caller leaves out (clean audio, every labelled item).
CONDITION_DEFAULTS: dict[str, Any] = {"study": "evaluate", "pretrain_data": "none", "deformation": "none",
                                      "train_deformation": "none", "augment_fraction": 0.0, "sample_weight": 1.0}
#: The columns that identify a finished unit of work. ``unit_key`` hashes every other setting behind the
#: numbers (representation config, grid, layer mode, window, bootstrap, deformation, …), so a re-run with
#: other settings recomputes, never reuses.
UNIT_COLUMNS: list[str] = ["representation", "task", "probe", "seed", "unit_key"]


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``df`` to ``path`` through a temporary file and ``os.replace`` (never a half-written table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False, float_format="%.6g")
        default_file_mode(tmp)  # mkstemp makes 0600; a results table is for everyone who may read the run
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``results.csv`` as a DataFrame with :data:`RESULT_COLUMNS` first (empty table if the file is absent).

    A table written by an older musicrep lacks newer columns: its rows are kept (they never match a
    unit key, so their units are recomputed) and the missing columns are added empty.
    """
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    df = pd.read_csv(path, dtype={"representation": str, "task": str, "probe": str, "layer": str, "unit_key": str,
                                  "deformation": str, "train_deformation": str, "study": str,
                                  "pretrain_data": str})
    df = df.reindex(columns=RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS])
    for col, default in CONDITION_DEFAULTS.items():  # rows of older tables were measured under the defaults
        df[col] = df[col].fillna(default)
    return df


def done_units(results: pd.DataFrame) -> set[tuple[str, ...]]:
    """The :data:`UNIT_COLUMNS` tuples (as text) already present in ``results``."""
    if results.empty:
        return set()
    return set(map(tuple, results[UNIT_COLUMNS].astype(str).to_numpy()))


def append_rows(results: pd.DataFrame, rows: Iterable[Mapping[str, Any]],
                path: str | os.PathLike[str]) -> pd.DataFrame:
    """Append ``rows`` (dicts keyed by :data:`RESULT_COLUMNS`) to ``results``, write ``path`` atomically,
    and return the new table. Unknown keys raise ``KeyError`` naming them (a typo must not vanish)."""
    rows = list(rows)
    extra = sorted({k for r in rows for k in r} - set(RESULT_COLUMNS))
    if extra:
        raise KeyError(f"result rows have keys that are not results.csv columns: {extra}")
    new = pd.DataFrame([{**CONDITION_DEFAULTS, **{k: v for k, v in r.items() if v is not None}} for r in rows],
                       columns=RESULT_COLUMNS)
    out = pd.concat([results, new], ignore_index=True) if len(results) else new
    write_csv_atomic(out, path)
    return out


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """Best (layer, probe) per task, representation and condition (:data:`CONDITION_COLUMNS`) on the primary metric.

    Scores are averaged over seeds first; the (layer, probe) is then chosen by the mean validation score
    (``valid_value``), never by the test score, so the leaderboard does not peek at the test split. Rows
    without a validation score cannot be ranked and are left out. Sorted by test value within each task.
    """
    if results.empty:
        return results
    rows = []
    keys = ["task", "representation", *CONDITION_COLUMNS]
    for _, g in results.groupby(keys, sort=False, dropna=False):
        primary = primary_metric(str(g["kind"].iloc[0])).name
        cand = g[(g["metric"] == primary) & g["valid_value"].notna()]
        if cand.empty:
            continue
        agg = cand.groupby(["layer", "probe"], sort=False).agg(
            valid_value=("valid_value", "mean"), value=("value", "mean"), ci_low=("ci_low", "mean"),
            ci_high=("ci_high", "mean"), seeds=("seed", "nunique"))
        best = agg["valid_value"].idxmax()
        first = cand[(cand["layer"] == best[0]) & (cand["probe"] == best[1])].iloc[0]
        rows.append({**first.to_dict(), **agg.loc[best].to_dict(), "layer": best[0], "probe": best[1]})
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    return board.sort_values(["task", "value"], ascending=[True, False]).reset_index(drop=True)


def best_line(rows: pd.DataFrame) -> str:
    """One line for a log: the primary metric of the layer chosen on validation, with its CI."""
    prim = rows[rows["metric"] == primary_metric(str(rows["kind"].iloc[0])).name]
    if prim.empty:
        return f"{len(rows)} rows"
    r = prim.loc[prim["valid_value"].fillna(-np.inf).idxmax()] if prim["valid_value"].notna().any() else prim.iloc[0]
    ci = "" if pd.isna(r["ci_low"]) else f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
    return f"{r['metric']} {r['value']:.3f}{ci} (layer {r['layer']})"


def print_leaderboard(board: pd.DataFrame, console: Any = None) -> None:
    """Print the leaderboard with rich: one table per task, with a column for each condition that varies
    (a study's rows differ by training condition, budget, …; rows that look alike would mislead)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for task, g in board.groupby("task", sort=True):
        metric = g["metric"].iloc[0]
        varying = [c for c in CONDITION_COLUMNS if c != "study" and c in g and g[c].astype(str).nunique() > 1]
        table = Table(title=f"{task} — {metric} (test, 95 % CI)", title_justify="left")
        for col in ("representation", *varying, "probe", "layer", metric, "95 % CI", "valid"):
            table.add_column(col, justify="right" if col in (metric, "95 % CI", "valid") else "left")
        for _, r in g.iterrows():
            ci = "" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            valid = "" if pd.isna(r["valid_value"]) else f"{r['valid_value']:.3f}"
            conds = ["all" if pd.isna(r[c]) else str(r[c]) for c in varying]
            table.add_row(str(r["representation"]), *conds, str(r["probe"]), str(r["layer"]), f"{r['value']:.3f}",
                          ci, valid)
        console.print(table)

"""The results table: its columns, reading it, appending to it atomically, and the leaderboard view of it.

Takes rows (dicts named like the columns) and a run folder; gives ``results.csv`` (one tidy row per
representation, pretraining budget, layer, task, probe, deformation, seed and metric, with a bootstrap
95 % CI), ``leaderboard.csv``, the per-unit test predictions behind the numbers
(``predictions/<task>/*.npz``, :func:`write_predictions`) and, from those, which representations a task's
test set cannot tell apart from its winner (:func:`tied_with_winner`, ``ties.csv``, :func:`tie_sentence`). ``evaluate``, every study and the report read and write it only through
this module, so a column is added in one place and no caller keeps its own list.

Why one tidy table: every plot and report is a view of it (filter, group, pivot), so adding a
representation, a probe, a deformation or a budget is adding rows, never a new file format.
Why atomic writes: a run killed mid-write must leave the previous table intact, because re-runs read it
to skip finished units.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrep.metrics import paired_bootstrap, primary_metric
from musicrep.util import atomic_path

__all__ = [
    "CONDITION_COLUMNS",
    "CONDITION_DEFAULTS",
    "PREDICTIONS_DIR",
    "PREDICTIONS_KEY",
    "RESULT_COLUMNS",
    "TIES_COLUMNS",
    "TIES_FILE",
    "UNIT_COLUMNS",
    "append_rows",
    "best_line",
    "done_units",
    "leaderboard",
    "predictions_path",
    "print_leaderboard",
    "read_predictions",
    "read_results",
    "seed_spread",
    "tie_sentence",
    "tied_with_winner",
    "write_csv_atomic",
    "write_predictions",
    "write_ties",
]

#: Columns of ``results.csv``, in order. ``evaluate`` leaves the study columns at their clean defaults:
#: ``study`` (which study wrote the row: evaluate, robustness, augmentation, layerwise, …), ``budget_minutes``
#: (pretraining minutes behind the weights), ``deformation`` (what was done to the *test* audio, a
#: :mod:`musicrep.augment` string, ``none`` for clean), ``train_deformation`` (what the probe's training
#: audio got: ``none``, or ``+`` joined augmentation strings), ``labelled_per_class`` (the labelled budget,
#: empty for all), ``augment_fraction`` (share of training items given an augmented copy),
#: ``sample_weight`` (the loss weight of those copies), ``pretrain_data`` (what the weights were pretrained
#: on: ``none``, or the pool / task name, e.g. ``music``, ``nonmusic``) and ``pretrain_seed`` (the seed of
#: that pretraining run, or of the random twin's initialisation; empty when not applicable). ``method`` (the
#: fine-tune study: how the labels met the representation — ``probe`` (linear/MLP on frozen embeddings),
#: ``knn`` (the embeddings used directly), ``finetune-all`` / ``finetune-lastN`` (the encoder trained with its
#: own head, probe ``head``); empty elsewhere).
RESULT_COLUMNS: list[str] = [
    "study", "representation", "rep_id", "budget_minutes", "pretrain_data", "pretrain_seed", "layer", "task",
    "kind", "probe", "deformation",
    "train_deformation", "labelled_per_class", "augment_fraction", "sample_weight", "method", "seed",
    "metric", "value", "ci_low", "ci_high", "valid_value", "n_train", "n_test", "n_failed", "selection",
    "best_config", "layer_weights", "unit_key",
]
#: The columns that say under which condition a number was measured (besides representation, task,
#: layer, probe and seed): the leaderboard ranks within each condition, never across them.
CONDITION_COLUMNS: list[str] = ["study", "budget_minutes", "pretrain_data", "pretrain_seed", "deformation",
                                "train_deformation", "labelled_per_class", "augment_fraction", "sample_weight", "method"]
#: What a row gets for a condition column a caller leaves out (clean audio, every labelled item).
CONDITION_DEFAULTS: dict[str, Any] = {"study": "evaluate", "pretrain_data": "none", "deformation": "none",
                                      "train_deformation": "none", "augment_fraction": 0.0, "sample_weight": 1.0}
#: The columns that identify a finished unit of work. ``unit_key`` hashes every other setting behind the
#: numbers (representation config, grid, layer mode, window, bootstrap, deformation, …), so a re-run with
#: other settings recomputes, never reuses.
UNIT_COLUMNS: list[str] = ["representation", "task", "probe", "seed", "unit_key"]
#: Where a run folder keeps each unit's test predictions: ``OUT/predictions/<task>/<unit>.npz``.
PREDICTIONS_DIR = "predictions"
#: The key of a result row (not a column) that carries the ``(reference, estimate)`` of the test items, in
#: the form its metric takes; :func:`musicrep.probe.evaluate_probe` fills it, ``Run.add`` moves it into
#: the unit's predictions file (with the test item ids under ``"ids"`` when the caller knows them).
PREDICTIONS_KEY = "predictions"
#: Columns of ``ties.csv``: per task (and condition), each leaderboard entry against the task's winner.
#: ``status``: ``winner``, ``tied`` (the paired 95 % CI of the difference contains 0), ``worse`` or
#: ``no predictions`` (the unit's predictions file is missing, e.g. a run from before they were kept).
TIES_COLUMNS: list[str] = ["task", *CONDITION_COLUMNS, "representation", "probe", "layer", "metric", "value",
                           "ci_low", "ci_high", "seeds", "value_min", "value_max", "winner", "difference",
                           "diff_low", "diff_high", "n_items", "status"]
#: The file in a run folder that holds :func:`tied_with_winner`'s table (the report shows it where present).
TIES_FILE = "ties.csv"


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``df`` to ``path`` through a temporary file and ``os.replace`` (never a half-written table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


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
                                  "pretrain_data": str, "method": str})
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
    ``seeds`` counts the probe seeds behind a row and ``value_min``/``value_max`` give their spread; the
    other columns are those of the row's first seed (``seed``, ``unit_key``).
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
            ci_high=("ci_high", "mean"), seeds=("seed", "nunique"), value_min=("value", "min"),
            value_max=("value", "max"))
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


#: Short headers for the condition columns in a printed leaderboard (an 80-column terminal fits ~8 columns).
CONDITION_HEADERS: dict[str, str] = {"budget_minutes": "budget (min)", "pretrain_data": "data",
                                     "pretrain_seed": "pt seed", "train_deformation": "trained on",
                                     "labelled_per_class": "per class", "augment_fraction": "aug %",
                                     "sample_weight": "aug weight"}


def _condition_text(col: str, value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–" if col in ("budget_minutes", "pretrain_seed") else "all"  # not pretrained / every item
    if isinstance(value, float):
        return f"{value:g}" if col != "budget_minutes" else f"{value:.4g}"
    return str(value)


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
        left = ("representation", *(CONDITION_HEADERS.get(c, c) for c in varying), "probe", "layer")
        # the validation score that chose each layer and probe stays in leaderboard.csv (valid_value)
        for col in (*left, f"{metric} [95 % CI]", "seeds"):
            # fold, never ellipsise: a cut "finet…" would hide the very condition a study compares
            table.add_column(col, justify="left" if col in left else "right", overflow="fold")
        for _, r in g.iterrows():
            ci = "" if pd.isna(r["ci_low"]) else f"\n[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"  # 14 characters wide
            conds = [_condition_text(c, r[c]) for c in varying]
            table.add_row(str(r["representation"]), *conds, str(r["probe"]), str(r["layer"]), f"{r['value']:.3f}{ci}",
                          seed_spread(r))
        console.print(table)


def seed_spread(row: Mapping[str, Any]) -> str:
    """A leaderboard row's probe seeds and the spread of their test values: ``3: 0.801–0.832`` (``1 seed``
    alone: no spread to show)."""
    seeds = row.get("seeds")
    if seeds is None or pd.isna(seeds):
        return "—"
    if int(seeds) < 2 or pd.isna(row.get("value_min")) or pd.isna(row.get("value_max")):
        return f"{int(seeds)} seed" if int(seeds) == 1 else f"{int(seeds)} seeds"
    return f"{int(seeds)}: {float(row['value_min']):.3f}–{float(row['value_max']):.3f}"


# ---------------------------------------------------------------------- per-item predictions
def predictions_path(out: str | os.PathLike[str], representation: str, task: str, probe: str, seed: Any,
                     unit_key: str) -> Path:
    """Where the unit (representation, task, probe, seed, unit_key) keeps its test predictions in run ``out``.

    The name is readable (labels with odd characters made file-safe) plus a hash of the five values, so
    two labels that read alike never share a file.
    """
    def safe(x: Any) -> str:
        return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(x))[:80]

    digest = hashlib.sha256(json.dumps([str(representation), str(task), str(probe), str(seed), str(unit_key)])
                            .encode()).hexdigest()[:10]
    return Path(out) / PREDICTIONS_DIR / safe(task) / f"{safe(representation)}-{safe(probe)}-seed{safe(seed)}-{digest}.npz"


def _plain(a: Any) -> np.ndarray:
    """An array ``np.load(allow_pickle=False)`` can read back: text as unicode, never objects."""
    arr = np.asarray(a)
    return arr.astype(str) if arr.dtype == object else arr


def write_predictions(out: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path | None:
    """Write the :data:`PREDICTIONS_KEY` entries of one unit's rows to its file (atomically); return the path.

    ``rows``: the rows of one (representation, task, probe, seed, unit_key), each with ``deformation``,
    ``layer`` and ``metric``; an entry is ``(reference, estimate)`` or ``{"ref", "est", "ids"}``. The file
    holds one reference per (deformation, metric), one estimate per (deformation, layer, metric) and the
    item ids per deformation where known, plus a JSON ``index`` saying which array is which. ``None``
    when no row carries predictions.
    """
    rows = [r for r in rows if r.get(PREDICTIONS_KEY) is not None]
    if not rows:
        return None
    first = rows[0]
    path = predictions_path(out, first["representation"], first["task"], first["probe"], first["seed"],
                            first["unit_key"])
    arrays: dict[str, np.ndarray] = {}
    index, refs, ids = [], {}, {}
    for r in rows:
        p = r[PREDICTIONS_KEY]
        ref, est, item_ids = (p["ref"], p["est"], p.get("ids")) if isinstance(p, Mapping) else (*p, None)
        d, metric = str(r.get("deformation") or "none"), str(r["metric"])
        if (d, metric) not in refs:
            refs[(d, metric)] = f"ref{len(refs)}"
            arrays[refs[(d, metric)]] = _plain(ref)
        if item_ids is not None and d not in ids:
            ids[d] = f"ids{len(ids)}"
            arrays[ids[d]] = np.asarray([str(i) for i in item_ids])
        name = f"est{len(index)}"
        arrays[name] = _plain(est)
        index.append({"deformation": d, "layer": str(r["layer"]), "metric": metric, "ref": refs[(d, metric)],
                      "est": name, "ids": ids.get(d)})
    for e in index:  # ids may arrive with a later row of the same deformation
        e["ids"] = e["ids"] or ids.get(e["deformation"])
    arrays["index"] = np.asarray(json.dumps(index))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def read_predictions(out: str | os.PathLike[str], row: Mapping[str, Any]
                     ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray] | None:
    """``(ids, reference, estimate)`` behind one results row (its unit, deformation, layer and metric), read
    from run ``out``; ``ids`` is ``None`` where they were not recorded. ``None`` when there is no such file
    or entry (a run from before predictions were kept, or a probe runner that gives none)."""
    path = predictions_path(out, row["representation"], row["task"], row["probe"], _seed_text(row["seed"]),
                            row["unit_key"])
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        want = (str(row.get("deformation") or "none"), str(row["layer"]), str(row["metric"]))
        for e in json.loads(str(f["index"])):
            if (e["deformation"], e["layer"], e["metric"]) == want:
                return (f[e["ids"]] if e["ids"] else None), f[e["ref"]], f[e["est"]]
    return None


def _seed_text(seed: Any) -> str:
    """A seed as the text it had when written (results.csv may read it back as a float)."""
    try:
        return str(int(seed))
    except (TypeError, ValueError):
        return str(seed)


# ---------------------------------------------------------------------- ties with the winner
def _aligned(a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(reference, estimate a, estimate b) on the test items both were scored on, in a's order."""
    ids_a, ref_a, est_a = a
    ids_b, _, est_b = b
    if ids_a is None or ids_b is None:  # no ids: only the same number of items can be paired, in order
        return (ref_a, est_a, est_b) if len(est_a) == len(est_b) else None
    pos_b = {str(i): j for j, i in enumerate(ids_b)}
    keep = [(i, pos_b[str(x)]) for i, x in enumerate(ids_a) if str(x) in pos_b]
    if not keep:
        return None
    ia, ib = (np.array(v) for v in zip(*keep, strict=True))
    return ref_a[ia], est_a[ia], est_b[ib]


def tied_with_winner(results: pd.DataFrame, out: str | os.PathLike[str], n: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> pd.DataFrame:
    """Every leaderboard entry against its task's winner, by a paired bootstrap over the same test items.

    For each task and condition, the winner is the leaderboard's top entry; every other entry's primary
    metric is compared with it on the test items both were scored on, at the (layer, probe) the
    leaderboard chose on validation and the lowest probe seed they share (else each one's first seed),
    with :func:`musicrep.metrics.paired_bootstrap` (``n`` resamples, ``1 − alpha`` interval). An entry
    is ``tied`` when that interval of ``winner − entry`` contains 0: this test set cannot tell the two
    apart. Each comparison is at level ``alpha`` on its own (no correction for comparing several).
    Predictions are read from the run folder ``out`` (:func:`read_predictions`). Columns: :data:`TIES_COLUMNS`.
    """
    board = leaderboard(results)
    if board.empty:
        return pd.DataFrame(columns=TIES_COLUMNS)
    rows = []
    for _, g in board.groupby(["task", *CONDITION_COLUMNS], sort=True, dropna=False):
        g = g.sort_values("value", ascending=False, kind="stable")
        top = g.iloc[0]
        for _, r in g.iterrows():
            entry = {c: r.get(c) for c in TIES_COLUMNS if c in r}
            entry.update(winner=top["representation"], difference=np.nan, diff_low=np.nan, diff_high=np.nan,
                         n_items=np.nan)
            if r.name == top.name:
                rows.append({**entry, "status": "winner"})
                continue
            pair = _paired_rows(results, top, r)
            a = None if pair is None else read_predictions(out, pair[0])
            b = None if pair is None else read_predictions(out, pair[1])
            both = None if a is None or b is None else _aligned(a, b)
            if both is None:
                rows.append({**entry, "status": "no predictions"})
                continue
            d = paired_bootstrap(str(r["metric"]), *both, n=n, alpha=alpha, seed=seed)
            rows.append({**entry, "difference": d.difference, "diff_low": d.low, "diff_high": d.high,
                         "n_items": d.n_items, "status": "tied" if d.tied else "worse"})
    return pd.DataFrame(rows).reindex(columns=TIES_COLUMNS)


def write_ties(results: pd.DataFrame, out: str | os.PathLike[str], n: int = 1000) -> pd.DataFrame:
    """:func:`tied_with_winner` on run ``out`` (``n`` paired resamples), written to ``out/``:data:`TIES_FILE`
    atomically; returns the table."""
    ties = tied_with_winner(results, out, n=n)
    write_csv_atomic(ties, Path(out) / TIES_FILE)
    return ties


def _paired_rows(results: pd.DataFrame, a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """The results rows of leaderboard entries ``a`` and ``b`` (their chosen layer and probe, primary
    metric) at the lowest seed both have, else at each one's lowest seed."""
    def rows_of(e: pd.Series) -> pd.DataFrame:
        m = ((results["task"] == e["task"]) & (results["representation"] == e["representation"])
             & (results["probe"] == e["probe"]) & (results["layer"].astype(str) == str(e["layer"]))
             & (results["metric"] == e["metric"]))
        for c in CONDITION_COLUMNS:
            m &= (results[c].astype(str) == str(e[c])) | (results[c].isna() & pd.isna(e[c]))
        return results[m]

    ra, rb = rows_of(a), rows_of(b)
    if ra.empty or rb.empty:
        return None
    common = sorted(set(ra["seed"]) & set(rb["seed"]))
    sa = common[0] if common else ra["seed"].min()
    sb = common[0] if common else rb["seed"].min()
    return ra[ra["seed"] == sa].iloc[0], rb[rb["seed"] == sb].iloc[0]


def tie_sentence(rows: pd.DataFrame) -> str:
    """One plain sentence on one task's :func:`tied_with_winner` rows: the winner, its CI and seed spread,
    the entries tied with it, and how many are worse."""
    top = rows[rows["status"] == "winner"].iloc[0]
    metric = str(top["metric"])
    ci = "" if pd.isna(top["ci_low"]) else f", 95 % CI [{float(top['ci_low']):.3f}, {float(top['ci_high']):.3f}]"
    spread = seed_spread(top)
    seeds = "" if ":" not in spread else f", {int(top['seeds'])} probe seeds {spread.split(': ')[1]}"
    head = (f"{top['task']}: {top['representation']} ({top['probe']}) wins with {metric} "
            f"{float(top['value']):.3f}{ci}{seeds}")
    tied = rows[rows["status"] == "tied"]
    worse = rows[rows["status"] == "worse"]
    missing = rows[rows["status"] == "no predictions"]
    compared = pd.concat([tied, worse])
    n_items = int(compared["n_items"].max()) if len(compared) else 0
    how = f"a paired bootstrap over the same {n_items} test items"
    if len(compared) == 0:
        body = "; nothing else could be compared with it"
    elif len(tied) == 0:
        body = (f"; {how} tells it apart from the only other representation, which is worse" if len(worse) == 1
                else f"; {how} tells it apart from every other representation (all {len(worse)} are worse)")
    else:
        names = ", ".join(f"{t} ({float(v):.3f})" for t, v in zip(tied["representation"], tied["value"], strict=True))
        verb = "is" if len(tied) == 1 else "are"
        body = (f"; {names} {verb} statistically indistinguishable from it ({how}: the 95 % CI of the "
                f"difference contains 0)" + ("" if worse.empty else ", and the other one is worse" if len(worse) == 1
                                            else f", and the other {len(worse)} are worse"))
    tail = ("" if missing.empty else
            f"; not compared (no per-item predictions kept): {', '.join(map(str, missing['representation']))}")
    return head + body + tail + "."

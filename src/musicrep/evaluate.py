"""``musicrep evaluate``: representations × tasks × probes → one tidy ``results.csv`` and a leaderboard.

Takes an :class:`~musicrep.config.EvaluateConfig`; gives ``OUT/results.csv`` (one row per
representation, layer, task, probe, seed and metric, with a bootstrap 95 % CI), ``OUT/leaderboard.csv``,
the resolved config (``OUT/config.resolved.yaml``), package versions (``OUT/versions.json``) and
``OUT/errors.csv`` (files that could not be read).

Why one tidy table: every study, plot and report downstream is a view of it (filter, group, pivot),
so adding a representation, a probe or a deformation is adding rows, never a new file format.

Why resumable at (representation, task, probe, seed) granularity: extraction is cached by the store,
and finished probe results are read back from ``results.csv``; a re-run (or a run after a kill) only
does what is missing. Results are written atomically after every unit of work.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rich.markup import escape

from musicrep.config import EvaluateConfig, RepresentationConfig
from musicrep.data.task import KEY_VOCABULARY, Task
from musicrep.embed import RepSpec, WindowConfig, extract
from musicrep.probe import PROBES

__all__ = ["RESULT_COLUMNS", "evaluate", "leaderboard", "print_leaderboard"]

log = logging.getLogger(__name__)

#: Columns of results.csv, in order. ``deformation`` and ``budget_minutes`` are filled by studies.
RESULT_COLUMNS = [
    "representation", "rep_id", "budget_minutes", "layer", "task", "kind", "probe", "deformation", "seed",
    "metric", "value", "ci_low", "ci_high", "valid_value", "n_train", "n_test", "n_failed", "selection",
    "best_config", "layer_weights", "unit_key",
]
#: A finished unit of work; ``unit_key`` hashes everything else that changes its numbers (representation
#: config, grid, layer mode, window, bootstrap), so a re-run with other settings recomputes, never reuses.
_UNIT = ["representation", "task", "probe", "seed", "unit_key"]


def unit_key(cfg: EvaluateConfig, rc: RepresentationConfig, window: WindowConfig) -> str:
    """Hash of the settings behind a (representation, task, probe, seed) unit, besides those four."""
    import hashlib

    blob = json.dumps({"rep": rc.name, "config": rc.config, "budget": rc.budget_minutes, "grid": cfg.grid,
                       "layers": cfg.layers, "window": window.model_dump(), "bootstrap": cfg.bootstrap},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("musicrep", "torch", "numpy", "scipy", "scikit-learn", "librosa", "mir_eval", "soundfile", "soxr",
                "pandas", "pydantic", "ray", "onnxruntime", "essentia"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False, float_format="%.6g")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_results(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    df = pd.read_csv(path, dtype={"representation": str, "task": str, "probe": str, "layer": str, "unit_key": str})
    # a table written by an older musicrep lacks newer columns: keep its rows (they never match a unit key,
    # so their units are recomputed) and add the columns empty
    return df.reindex(columns=RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS])


def _task_window(task: Task, default: WindowConfig) -> WindowConfig:
    upd: dict[str, Any] = {}
    if task.spec.window_seconds is not None:
        upd["window_seconds"] = task.spec.window_seconds
    if task.spec.hop_seconds is not None:
        upd["hop_seconds"] = task.spec.hop_seconds
    return default.model_copy(update=upd) if upd else default


def _targets(task: Task, split: str) -> np.ndarray:
    """Targets in the probe's convention: class ids for single-label kinds (pitch: index into the
    task's vocabulary of MIDI numbers), multi-hot for multilabel, floats for regression."""
    return task.class_index(split) if task.kind == "pitch" else task.targets(split)


def _task_metrics(task: Task) -> list[str] | None:
    """The metrics task.yaml asks for (known ones only), or None for the task kind's defaults."""
    from musicrep.metrics import METRICS

    wanted = [m for m in task.spec.metrics if m in METRICS]
    return wanted or None


def _probe_vocabulary(task: Task) -> list[Any]:
    """What class id ``i`` means, for metrics that need labels (key strings, MIDI numbers)."""
    if task.kind == "key":
        return list(KEY_VOCABULARY)  # Task.targets gives indices into the 24-key vocabulary
    if task.kind == "pitch":
        return [int(v) for v in task.vocabulary]
    return list(task.vocabulary)


def _split_arrays(task: Task, keys: list[str | None],
                  store: Any) -> dict[str, tuple[np.ndarray, np.ndarray, int, np.ndarray]]:
    """Per split: embeddings ``[n, L, H]``, targets, number of failed items and group ids (items whose
    audio failed are dropped). The store is read once for the whole task, not once per split."""
    good = [i for i, k in enumerate(keys) if k is not None]
    x_all, _ = store.get([keys[i] for i in good])
    row = {i: j for j, i in enumerate(good)}
    out = {}
    for split in ("train", "valid", "test"):
        idx = np.flatnonzero((task.items["split"] == split).to_numpy())
        keep = np.array([keys[i] is not None for i in idx], dtype=bool)
        x = x_all[[row[i] for i in idx[keep]]] if keep.any() else x_all[:0]
        groups = task.items["group"].to_numpy()[idx][keep]
        out[split] = (x, _targets(task, split)[keep], int((~keep).sum()), groups)
    return out


ProbeRunner = Callable[..., list[dict[str, Any]]]
_LAYER_MODE: dict[str, int | str] = {"all": "all", "weighted": "weighted", "last": -1}


def run_probe(*, kind: str, vocabulary: list[Any], probe: str, grid: str, layers: str, seed: int,
              layer_dims: list[int], n_bootstrap: int, train: tuple[np.ndarray, np.ndarray],
              valid: tuple[np.ndarray, np.ndarray] | None, test: tuple[np.ndarray, np.ndarray],
              groups_train: np.ndarray | None = None, metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """Fit one probe (grid search, selection on valid or grouped k-fold) and score test: rows for results.csv."""
    from musicrep.probe import evaluate_probe

    xv, yv = valid if valid is not None else (None, None)
    rows = evaluate_probe(kind, train[0], train[1], xv, yv, test[0], test[1], layer_dims=layer_dims, probe=probe,
                          grid=grid, layer=_LAYER_MODE[layers], seeds=[seed], vocabulary=vocabulary,
                          n_bootstrap=n_bootstrap, groups_train=groups_train, metrics=metrics)
    return [{"layer": r["layer"], "metric": r["metric"], "value": r["value"], "ci_low": r["ci_low"],
             "ci_high": r["ci_high"], "valid_value": r["valid_score"], "best_config": r["config"],
             "layer_weights": r.get("layer_weights", "")} for r in rows]


def evaluate(
    cfg: EvaluateConfig,
    *,
    progress: bool = True,
    probe_runner: ProbeRunner | None = None,
    console: Any = None,
) -> pd.DataFrame:
    """Run every (representation, task, probe, seed) not yet in ``OUT/results.csv``; return the full table."""
    probe_fn = probe_runner or run_probe
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.resolved.yaml").write_text(yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False))
    (out / "versions.json").write_text(json.dumps(_versions(), indent=2))
    results_path = out / "results.csv"
    results = _read_results(results_path)
    done = set(map(tuple, results[_UNIT].astype(str).to_numpy())) if len(results) else set()
    tasks = [Task.load(t) for t in cfg.tasks]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"tasks share the name(s) {dup} (task.yaml `name`); rename one so results do not merge")
    error_rows: list[dict[str, str]] = []
    say = console.print if console is not None else (lambda *a, **k: None)

    for rc in cfg.representations:
        label = rc.display
        pending = [(t, p, s) for t in tasks for p in (rc.probes or cfg.probes) for s in cfg.seeds
                   if (label, t.name, p, str(s), unit_key(cfg, rc, _task_window(t, cfg.window))) not in done
                   and _applies(p, t.kind, cfg.layers) and (rc.tasks is None or t.name in rc.tasks)]
        if not pending:
            say(f"[dim]{label}: all results present, skipped[/dim]")
            continue
        spec = RepSpec(name=rc.name, config=rc.config)
        rep = spec.build()
        rep_id = rep.id  # hashing the weights once, not once per row
        for task in tasks:
            todo = [(p, s) for (t, p, s) in pending if t is task]
            if not todo:
                continue
            window = _task_window(task, cfg.window)
            ukey = unit_key(cfg, rc, window)
            t0 = time.perf_counter()
            ext = extract(spec if cfg.executor != "local" else rep, task.paths(), cfg.store_dir, window,
                          batch_size=cfg.batch_size, executor=cfg.executor, progress=progress)
            for e in ext.errors:
                error_rows.append({"representation": label, "task": task.name, "path": e["path"], "error": e["error"]})
            say(f"{label} on {task.name}: embedded {len(ext.ok())}/{len(task)} items "
                f"({time.perf_counter() - t0:.1f} s){'' if not ext.errors else f', {len(ext.errors)} unreadable'}")
            data = _split_arrays(task, ext.keys, ext.store)
            layer_dims = list(ext.store.meta.get("layer_dims", []))
            layer_names = list(ext.store.meta.get("layer_names", []))
            empty = [s for s in ("train", "test") if len(data[s][1]) == 0]
            if empty:
                say(f"[red]{label} on {task.name}: no readable {' or '.join(empty)} items; skipped[/red]")
                continue
            n_failed = sum(d[2] for d in data.values())
            selection = "valid" if len(data["valid"][1]) else "kfold"
            for probe, seed in todo:
                t1 = time.perf_counter()
                rows = probe_fn(
                    kind=task.kind, vocabulary=_probe_vocabulary(task), probe=probe, grid=cfg.grid, layers=cfg.layers,
                    seed=seed, layer_dims=layer_dims, n_bootstrap=cfg.bootstrap,
                    train=data["train"][:2], valid=data["valid"][:2] if len(data["valid"][1]) else None,
                    test=data["test"][:2], groups_train=data["train"][3], metrics=_task_metrics(task),
                )
                new = pd.DataFrame([{
                    "representation": label, "rep_id": rep_id, "budget_minutes": rc.budget_minutes,
                    "task": task.name, "kind": task.kind, "probe": probe, "deformation": "none", "seed": seed,
                    "n_train": len(data["train"][1]), "n_test": len(data["test"][1]), "n_failed": n_failed,
                    "selection": selection, "unit_key": ukey,
                    **{k: v for k, v in r.items() if k != "layer"},
                    "layer": _layer_label(r.get("layer"), layer_names),
                } for r in rows], columns=RESULT_COLUMNS)
                results = pd.concat([results, new], ignore_index=True) if len(results) else new
                _write_csv_atomic(results, results_path)
                say(escape(f"  {_best_line(new)}  [{probe}, seed {seed}, {time.perf_counter() - t1:.1f} s]"))
    if error_rows:  # merged with earlier runs' records, so no representation's failures are lost
        errors_path = out / "errors.csv"
        old = pd.read_csv(errors_path, dtype=str) if errors_path.exists() else pd.DataFrame()
        _write_csv_atomic(pd.concat([old, pd.DataFrame(error_rows)]).drop_duplicates(), errors_path)
    board = leaderboard(results)
    _write_csv_atomic(board, out / "leaderboard.csv")
    return results


def _applies(probe: str, kind: str, layers: str) -> bool:
    """Whether a probe can run on a task kind under the layer mode (a learned layer mix needs a trained
    probe, so kNN, centroid and zero-shot probes are skipped with ``layers: weighted``)."""
    spec = PROBES[probe]
    return spec.applies_to(kind) and not (layers == "weighted" and spec.build is not None)


def _best_line(rows: pd.DataFrame) -> str:
    """One line for the log: the primary metric of the layer chosen on validation, with its CI."""
    from musicrep.metrics import primary_metric

    prim = rows[rows["metric"] == primary_metric(str(rows["kind"].iloc[0])).name]
    if prim.empty:
        return f"{len(rows)} rows"
    r = prim.loc[prim["valid_value"].fillna(-np.inf).idxmax()] if prim["valid_value"].notna().any() else prim.iloc[0]
    ci = "" if pd.isna(r["ci_low"]) else f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
    return f"{r['metric']} {r['value']:.3f}{ci} (layer {r['layer']})"


def _layer_label(layer: Any, names: list[str]) -> str:
    if layer is None or layer == "" or (isinstance(layer, float) and np.isnan(layer)):
        return "all"
    if isinstance(layer, (int, np.integer)) and 0 <= int(layer) < len(names):
        return f"{int(layer)}:{names[int(layer)]}"
    return str(layer)


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """Best (layer, probe) per task, representation, budget and deformation on the primary metric.

    Scores are averaged over seeds first; the (layer, probe) is then chosen by the mean validation score
    (``valid_value``), never by the test score, so the leaderboard does not peek at the test split. Rows
    without a validation score cannot be ranked and are left out. Sorted by test value within each task.
    """
    if results.empty:
        return results
    from musicrep.metrics import primary_metric

    rows = []
    keys = ["task", "representation", "budget_minutes", "deformation"]
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


def print_leaderboard(board: pd.DataFrame, console: Any = None) -> None:
    """Print the leaderboard with rich: one table per task."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for task, g in board.groupby("task", sort=True):
        metric = g["metric"].iloc[0]
        table = Table(title=f"{task} — {metric} (test, 95 % CI)", title_justify="left")
        for col in ("representation", "probe", "layer", metric, "95 % CI", "valid"):
            table.add_column(col, justify="right" if col in (metric, "95 % CI", "valid") else "left")
        for _, r in g.iterrows():
            ci = "" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            valid = "" if pd.isna(r["valid_value"]) else f"{r['valid_value']:.3f}"
            table.add_row(str(r["representation"]), str(r["probe"]), str(r["layer"]), f"{r['value']:.3f}", ci, valid)
        console.print(table)


def representation_configs(names: list[str]) -> list[RepresentationConfig]:
    """Plain names → configs (used by the CLI's ``--rep`` shortcut)."""
    return [RepresentationConfig(name=n) for n in names]

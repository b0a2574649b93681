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

import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rich.markup import escape

from musicrep.config import EvaluateConfig, RepresentationConfig
from musicrep.data.task import SPLITS, Task
from musicrep.embed import RepSpec, WindowConfig, extract
from musicrep.kinds import get_kind
from musicrep.metrics import METRICS
from musicrep.probe import PROBES, ProbeData, ProbeSetup, Split, cross_validate_probe, evaluate_probe
from musicrep.results import (
    PREDICTIONS_KEY,
    RESULT_COLUMNS,
    append_rows,
    best_line,
    done_units,
    leaderboard,
    read_results,
    write_csv_atomic,
    write_predictions,
)

__all__ = ["WINNER_SEEDS", "Run", "TaskEmbeddings", "Unit", "embed_for_run", "embed_task", "evaluate", "refit_winners",
           "run_unit", "task_window", "unit_key"]

log = logging.getLogger(__name__)

#: Probe seeds each task's winner is re-fitted with by :func:`refit_winners` (seed 0 is the one every entry gets).
WINNER_SEEDS = (0, 1, 2)
#: What fits and scores one unit's probe: ``(data, setup) -> rows`` (tests replace it with a spy).
ProbeRunner = Callable[[ProbeData, ProbeSetup], list[dict[str, Any]]]


def unit_key(cfg: EvaluateConfig, rc: RepresentationConfig, window: WindowConfig, deformation: str = "none") -> str:
    """Hash of the settings behind a (representation, task, probe, seed) unit, besides those four."""
    settings: dict[str, Any] = {"rep": rc.name, "config": rc.config, "budget": rc.budget_minutes, "grid": cfg.grid,
                                "layers": cfg.layers, "window": window.model_dump(), "bootstrap": cfg.bootstrap}
    if deformation != "none":  # absent for clean audio, so keys of runs before deformations existed still match
        settings["deformation"] = deformation
    if cfg.folds:  # likewise absent without cross-validation
        settings["folds"] = cfg.folds
    blob = json.dumps(settings, sort_keys=True, default=str)
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


def task_window(task: Task, default: WindowConfig) -> WindowConfig:
    """The window a task is embedded with: ``default`` with the task's own window/hop where it sets them."""
    upd: dict[str, Any] = {}
    if task.spec.window_seconds is not None:
        upd["window_seconds"] = task.spec.window_seconds
    if task.spec.hop_seconds is not None:
        upd["hop_seconds"] = task.spec.hop_seconds
    return default.model_copy(update=upd) if upd else default


def _task_metrics(task: Task) -> list[str] | None:
    """The metrics task.yaml asks for (known ones only), or None for the task kind's defaults."""
    wanted = [m for m in task.spec.metrics if m in METRICS]
    return wanted or None


@dataclass
class TaskEmbeddings:
    """One representation's embeddings of one task, per split, as the probes read them.

    ``splits[name]``: :class:`~musicrep.probe.Split` with ``x [n, L, H]``, the probe targets
    (:meth:`musicrep.kinds.Kind.class_ids`) and group ids; items whose audio failed are left out and
    counted in ``n_failed``. ``errors``: ``{"path", "error"}`` per unreadable file.
    """

    splits: dict[str, Split]
    layer_dims: list[int]
    layer_names: list[str]
    n_failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    #: item ids of each split's rows, in row order
    ids: dict[str, list[str]] = field(default_factory=dict)

    def n(self, split: str) -> int:
        return len(self.splits[split])


def embed_task(rep: Any, task: Task, window: WindowConfig, store_dir: Any, *, batch_size: int = 16,
               executor: str = "local", progress: bool = False, splits: tuple[str, ...] = SPLITS,
               deformation: str = "none", deformation_seed: int = 0,
               ids: Collection[str] | None = None) -> TaskEmbeddings:
    """Extract ``rep`` (a Representation, or a RepSpec for remote executors) on the items of ``splits``
    (cached in the store) and read the embeddings back once, split by split.

    ``deformation`` (a :mod:`musicrep.augment` string) deforms each file's audio first; deformed audio has
    its own store folder. Splits not asked for come back empty; ``ids`` restricts the items further.
    """
    wanted = task.items["split"].isin(splits).to_numpy()
    if ids is not None:
        wanted = wanted & task.items["id"].isin(set(ids)).to_numpy()
    paths = task.paths()
    ext = extract(rep, [p for p, w in zip(paths, wanted) if w], store_dir, window, batch_size=batch_size,
                  executor=executor, progress=progress, deformation=deformation, deformation_seed=deformation_seed)
    keys: list[str | None] = [None] * len(paths)
    for i, k in zip(np.flatnonzero(wanted), ext.keys):
        keys[i] = k
    good = [i for i, k in enumerate(keys) if k is not None]
    x_all, _ = ext.store.get([keys[i] for i in good])
    row = {i: j for j, i in enumerate(good)}
    kind = get_kind(task.kind)
    out: dict[str, Split] = {}
    kept_ids: dict[str, list[str]] = {}
    n_failed = 0
    for split in SPLITS:
        idx = np.flatnonzero(((task.items["split"] == split).to_numpy()) & wanted)
        keep = np.array([keys[i] is not None for i in idx], dtype=bool)
        x = x_all[[row[i] for i in idx[keep]]] if keep.any() else x_all[:0]
        labels = task.items["label"].to_numpy()[idx][keep]
        y = kind.class_ids(list(labels), task.vocabulary)
        out[split] = Split(x, y, task.items["group"].to_numpy()[idx][keep])
        kept_ids[split] = [str(i) for i in task.items["id"].to_numpy()[idx][keep]]
        n_failed += int((~keep).sum())
    return TaskEmbeddings(out, list(ext.store.meta.get("layer_dims", [])),
                          list(ext.store.meta.get("layer_names", [])), n_failed,
                          [{"path": e["path"], "error": e["error"]} for e in ext.errors], kept_ids)


@dataclass(frozen=True)
class Unit:
    """One unit of work: one probe with one seed, on one representation's embeddings of one task.

    ``representation`` is the label in the results; ``unit_key`` hashes every setting behind the numbers
    besides (representation, task, probe, seed); ``conditions`` fills the study columns of the rows
    (:data:`~musicrep.results.CONDITION_COLUMNS`, e.g. ``{"study": "robustness", "train_deformation": …}``).
    """

    representation: str
    rep_id: str
    task: Task
    setup: ProbeSetup
    unit_key: str
    budget_minutes: float | None = None
    conditions: dict[str, Any] = field(default_factory=dict)


def run_unit(unit: Unit, emb: TaskEmbeddings, tests: dict[str, Split] | None = None,
             probe_runner: ProbeRunner | None = None, n_failed: int = 0) -> list[dict[str, Any]]:
    """Fit and score one unit; return its rows, every :data:`~musicrep.results.RESULT_COLUMNS` filled.

    The probe is fitted once on ``emb``'s train (and valid) split, then scored on each test set of
    ``tests`` (deformation string → the test split's embeddings of that audio; default ``{"none": emb's
    own test split}``), the key filling the ``deformation`` column. Selection is on the valid split when it
    has items, else grouped k-fold on train. ``n_failed`` adds items lost elsewhere (e.g. in a deformed copy).
    With ``unit.setup.cv_folds`` (k ≥ 3) the task's splits are pooled instead and every item is scored out
    of fold (:func:`musicrep.probe.cross_validate_probe`; ``tests`` must then be ``None``).
    ``probe_runner`` replaces the probe (default: :func:`~musicrep.probe.evaluate_probe`, or
    :func:`~musicrep.probe.cross_validate_probe` under cross-validation).
    Each row also carries the test predictions under :data:`~musicrep.results.PREDICTIONS_KEY` (with the
    item ids where the test set is ``emb``'s own), which :meth:`Run.add` writes beside the results.
    """
    task = unit.task
    has_valid = emb.n("valid") > 0
    vocabulary = get_kind(task.kind).classes(task.vocabulary)
    if unit.setup.cv_folds:
        if tests is not None:
            raise ValueError("cross-validation scores the task's own items; deformed test sets need cv_folds=0")
        parts = [s for s in SPLITS if emb.n(s)]
        pooled = Split(np.concatenate([emb.splits[s].x for s in parts]),
                       np.concatenate([np.asarray(emb.splits[s].y) for s in parts]),
                       np.concatenate([np.asarray(emb.splits[s].groups) for s in parts]))
        data = ProbeData(task.kind, pooled, layer_dims=emb.layer_dims, vocabulary=vocabulary,
                         metrics=_task_metrics(task))
        test_ids: dict[str, list[str] | None] = {"none": [i for s in parts for i in emb.ids.get(s, [])]}
        rows = (probe_runner or cross_validate_probe)(data, unit.setup)
        selection = f"cv{unit.setup.cv_folds}"
    else:
        tests = tests if tests is not None else {"none": emb.splits["test"]}
        data = ProbeData(task.kind, emb.splits["train"], emb.splits["valid"] if has_valid else None, tests,
                         layer_dims=emb.layer_dims, vocabulary=vocabulary, metrics=_task_metrics(task))
        # item ids are known for the task's own test split; a deformed copy's items are paired in order only
        test_ids = {name: emb.ids.get("test") if split is emb.splits["test"] else None
                    for name, split in tests.items()}
        rows = (probe_runner or evaluate_probe)(data, unit.setup)
        selection = "valid" if has_valid else "kfold"
    fixed = {**unit.conditions, "representation": unit.representation, "rep_id": unit.rep_id,
             "budget_minutes": unit.budget_minutes, "task": task.name, "kind": task.kind,
             "n_failed": emb.n_failed + n_failed, "unit_key": unit.unit_key}
    out = []
    for r in rows:
        # the probe may say how it selected (cross-validation: cv<k>, the folds actually cut)
        row = {**{c: None for c in RESULT_COLUMNS}, "deformation": "none", "selection": selection, **r, **fixed,
               "layer": _layer_label(r.get("layer"), emb.layer_names)}
        pred = r.get(PREDICTIONS_KEY)
        if pred is not None:
            ref, est = pred
            row[PREDICTIONS_KEY] = {"ref": ref, "est": est, "ids": test_ids.get(row["deformation"])}
        out.append(row)
    return out


class Run:
    """A run folder that evaluate and every study write alike, resumable unit by unit.

    Opening it writes ``config.resolved.yaml`` and ``versions.json`` and reads ``results.csv``;
    :meth:`add` appends a unit's rows atomically; :meth:`finish` merges ``errors.csv`` with earlier runs'
    records and writes ``leaderboard.csv``. Why one class: a study must resume, log and rank exactly as
    ``evaluate`` does, without a copy of its loop.
    """

    def __init__(self, out: Path, config: Any, console: Any = None) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.resolved.yaml").write_text(
            yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False))
        (self.out / "versions.json").write_text(json.dumps(_versions(), indent=2))
        self.results_path = self.out / "results.csv"
        self.results = read_results(self.results_path)
        self.done = done_units(self.results)
        self.errors: list[dict[str, str]] = []
        self.say = console.print if console is not None else (lambda *a, **k: None)

    def is_done(self, label: str, task: str, probe: str, seed: int, ukey: str) -> bool:
        return (label, task, probe, str(seed), ukey) in self.done

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Append one unit's rows; their test predictions (if any) go to the unit's predictions file first,
        so a unit present in ``results.csv`` has its file too."""
        write_predictions(self.out, rows)
        self.results = append_rows(self.results, [{k: v for k, v in r.items() if k != PREDICTIONS_KEY}
                                                  for r in rows], self.results_path)

    def error(self, representation: str, task: str, path: str, error: str) -> None:
        self.errors.append({"representation": representation, "task": task, "path": path, "error": error})

    def check_tasks(self, tasks: list[Task]) -> None:
        """Refuse two tasks of one name; warn by name about classes that have no training items."""
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"tasks share the name(s) {dup} (task.yaml `name`); rename one so results do not merge")
        for task in tasks:  # a class the probe never sees in training can only be guessed: say so, keep scoring
            for cls in task.classes_without_training_items():
                msg = (f"class {cls!r} has test/valid items but no training items; "
                       f"probes cannot predict it (add training items or drop the class)")
                log.info("%s: %s", task.name, msg)
                self.say(escape(f"[warning] {task.name}: {msg}"))
                self.error("", task.name, str(task.root), msg)

    def finish(self) -> pd.DataFrame:
        if self.errors:  # merged with earlier runs' records, so no representation's failures are lost
            path = self.out / "errors.csv"
            old = pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else pd.DataFrame()
            write_csv_atomic(pd.concat([old, pd.DataFrame(self.errors)]).astype(str).drop_duplicates(), path)
        write_csv_atomic(leaderboard(self.results), self.out / "leaderboard.csv")
        return self.results


def evaluate(
    cfg: EvaluateConfig,
    *,
    progress: bool = True,
    probe_runner: ProbeRunner | None = None,
    console: Any = None,
    extra_seeds: Mapping[tuple[str, str, str], Collection[int]] | None = None,
) -> pd.DataFrame:
    """Run every (representation, task, probe, seed) not yet in ``OUT/results.csv``; return the full table.

    ``extra_seeds``: (representation label, task name, probe) → probe seeds to fit besides ``cfg.seeds``,
    e.g. the demo re-fitting each task's winner with 3 seeds without re-fitting everything else.
    """
    run = Run(cfg.out, cfg, console)
    tasks = [Task.load(t) for t in cfg.tasks]
    run.check_tasks(tasks)
    extra = extra_seeds or {}
    for rc in cfg.representations:
        label = rc.display
        pending = [(t, p, s) for t in tasks for p in (rc.probes or cfg.probes)
                   for s in sorted(set(cfg.seeds) | set(extra.get((label, t.name, p), ())))
                   if not run.is_done(label, t.name, p, s, unit_key(cfg, rc, task_window(t, cfg.window)))
                   and _applies(p, t.kind, cfg.layers, rc.name) and (rc.tasks is None or t.name in rc.tasks)]
        if not pending:
            run.say(f"[dim]{label}: all results present, skipped[/dim]")
            continue
        spec = RepSpec(name=rc.name, config=rc.config)
        rep = rc.build()
        rep_id = rep.id  # hashing the weights once, not once per row
        for task in tasks:
            todo = [(p, s) for (t, p, s) in pending if t is task]
            if not todo:
                continue
            window = task_window(task, cfg.window)
            emb = embed_for_run(run, spec if cfg.executor != "local" else rep, label, task, window, cfg, progress)
            if emb is None:
                continue
            for probe, seed in todo:
                t1 = time.perf_counter()
                setup = ProbeSetup(probe=probe, grid=cfg.grid, layer=cfg.layer_choice, seed=seed,
                                   n_bootstrap=cfg.bootstrap, cv_folds=cfg.folds)
                unit = Unit(label, rep_id, task, setup, unit_key(cfg, rc, window), rc.budget_minutes)
                rows = run_unit(unit, emb, probe_runner=probe_runner)
                run.add(rows)
                run.say(escape(f"  {best_line(pd.DataFrame(rows))}  [{probe}, seed {seed}, "
                               f"{time.perf_counter() - t1:.1f} s]"))
    return run.finish()


def refit_winners(cfg: EvaluateConfig, results: pd.DataFrame, console: Any = None,
                  seeds: tuple[int, ...] = WINNER_SEEDS, rounds: int = 3, progress: bool = True) -> pd.DataFrame:
    """Fit each task's leaderboard winner with probe ``seeds`` (:func:`evaluate` with ``extra_seeds``); return
    the updated results.

    Why: the spread over probe seeds says how much of the winning score is the probe's initialisation (the
    demo and ``musicrep compare`` print it). Every probe of the winner is re-fitted (the layer and probe are
    chosen by mean validation score, so all of them must have the same seeds). Another round follows when
    the seed mean lets another entry take the top (at most ``rounds``).
    """
    say = console.print if console is not None else (lambda *a, **k: None)
    wanted: dict[tuple[str, str, str], tuple[int, ...]] = {}
    for _ in range(rounds):
        board = leaderboard(results)
        if board.empty:
            break
        tops = board.sort_values("value", ascending=False).groupby("task", sort=True).head(1)
        # every probe of the winning representation, not only the one that won: the leaderboard picks the
        # (layer, probe) by mean validation score, and a probe left at one seed would compete on one draw
        new = {(str(r.representation), str(r.task), str(p)): tuple(seeds) for r in tops.itertuples()
               for p in results.loc[(results["representation"] == r.representation) & (results["task"] == r.task),
                                    "probe"].unique()
               if (str(r.representation), str(r.task), str(p)) not in wanted
               and results.loc[(results["representation"] == r.representation) & (results["task"] == r.task)
                               & (results["probe"] == p), "seed"].nunique() < len(seeds)}
        if not new:
            break
        wanted.update(new)
        say(f"re-fitting each task's winner with probe seeds {list(seeds)}: "
            + ", ".join(f"{t}: {rep} ({p})" for rep, t, p in new))
        results = evaluate(cfg, console=console, extra_seeds=wanted, progress=progress)
    return results


def embed_for_run(run: Run, rep: Any, label: str, task: Task, window: WindowConfig, cfg: EvaluateConfig,
                  progress: bool, **kw: Any) -> TaskEmbeddings | None:
    """:func:`embed_task` with the run's logging: unreadable files go to ``errors.csv``; ``None`` (and a red
    line) when a split the probes need has no readable item. ``kw`` goes to :func:`embed_task`."""
    t0 = time.perf_counter()
    emb = embed_task(rep, task, window, cfg.store_dir, batch_size=cfg.batch_size, executor=cfg.executor,
                     progress=progress, **kw)
    for e in emb.errors:
        run.error(label, task.name, e["path"], e["error"])
    what = f" ({kw['deformation']})" if kw.get("deformation", "none") != "none" else ""
    n = sum(emb.n(s) for s in kw.get("splits", SPLITS))
    run.say(f"{label} on {task.name}{what}: embedded {n} items ({time.perf_counter() - t0:.1f} s)"
            f"{'' if not emb.errors else f', {len(emb.errors)} unreadable'}")
    needed = [s for s in ("train", "test") if s in kw.get("splits", SPLITS) and emb.n(s) == 0]
    if cfg.folds:  # cross-validation pools the splits: any readable item will do
        needed = [] if sum(emb.n(s) for s in SPLITS) else ["readable"]
    if needed:
        run.say(f"[red]{label} on {task.name}{what}: no {' or '.join(needed)} items (none in the task, or none "
                f"readable: see errors.csv); skipped[/red]")
        return None
    return emb


def _applies(probe: str, kind: str, layers: str, representation: str | None = None) -> bool:
    """Whether a probe can run on a task kind and representation under the layer mode (a learned layer
    mix needs a trained probe, so kNN, centroid and zero-shot probes are skipped with ``layers: weighted``;
    a zero-shot rule runs only on the representations it reads)."""
    spec = PROBES[probe]
    return spec.applies_to(kind, representation) and not (layers == "weighted" and spec.build is not None)


def _layer_label(layer: Any, names: list[str]) -> str:
    if layer is None or layer == "" or (isinstance(layer, float) and np.isnan(layer)):
        return "all"
    if isinstance(layer, (int, np.integer)) and 0 <= int(layer) < len(names):
        return f"{int(layer)}:{names[int(layer)]}"
    return str(layer)


def representation_configs(names: list[str]) -> list[RepresentationConfig]:
    """Plain names → configs (used by the CLI's ``--rep`` shortcut)."""
    return [RepresentationConfig(name=n) for n in names]

"""Limited data: how much music does representation learning need? Learning curves over pretraining minutes.

The central study of the limited-data paper (``shared/seeds``: five encoders pretrained on 5 to ~7,400
minutes, each against its untrained twin and handcrafted features, probed linearly and with an MLP). For
every curve (encoder × objective) × pretraining data (the music pool, a non-music pool, or a labelled task
for supervised training) × pretraining seed × budget, the study makes sure a checkpoint exists — training
it with :func:`musicrep.train.trainer.pretrain`, resuming a half-finished one, reusing a finished one —
then evaluates it as a representation on every task. Budget ``0`` is the random-init twin (the same seed's
untrained weights); ``all`` is the whole pool, written as its real minutes so the log axis holds it.
Handcrafted baselines (``representations``) are evaluated once each and drawn as horizontal lines.

Rows carry ``budget_minutes``, ``pretrain_data`` and ``pretrain_seed``; the representation label is the
curve's (``vgg-simclr``), so a curve is one label across budgets and its band spans the seeds. With
``layers: all`` every layer of every checkpoint is scored too (does the best layer move with the budget?).

Why budgets are nested (:func:`musicrep.data.subset.subset`) and the number of optimiser steps fixed:
budgets then differ only in which audio the encoder saw, as in the paper, not in how long it trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator
from rich.markup import escape

from musicrep.config import ConfigError, RepresentationConfig
from musicrep.data.task import Task
from musicrep.evaluate import Unit, embed_for_run, run_unit, task_window
from musicrep.models.base import CHECKPOINT_WEIGHTS
from musicrep.probe import PROBES, ProbeSetup
from musicrep.results import best_line
from musicrep.studies.base import (
    RenderedTask,
    StudyConfig,
    pairs,
    register,
    start,
    study_unit_key,
)
from musicrep.util import sha256_file

__all__ = ["CurveSpec", "LimitedDataConfig", "run_limited_data"]

#: The ``pretrain_data`` name of the random-init twins' rows would be misleading (they saw no data): the
#: twin's rows carry the curve's data name so each curve has its 0-minute point, and ``budget_minutes = 0``.
TWIN_BUDGET = 0.0


def _check_budgets(v: list[float | str]) -> list[float | str]:
    bad = [b for b in v if b != "all" and float(b) < 0]
    if bad:
        raise ValueError(f"budgets must be ≥ 0 minutes or 'all' (got {bad})")
    return v


class CurveSpec(BaseModel):
    """One learning curve: an encoder trained with one objective (on each of ``data``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(description="Trainable encoder (registry name): vgg, musicnn, samplecnn, ast, tmae, nfnet, "
                       "conformer.")
    objective: str = Field(description="Pretraining objective: supervised, simclr, masked, bestrq.")
    size: str = Field("small", description="Encoder size (small | paper).")
    encoder: dict[str, Any] = Field(default_factory=dict, description="Other encoder settings.")
    objective_config: dict[str, Any] = Field(default_factory=dict, description="Objective settings.")
    data: list[str] | None = Field(None, description="Pretraining data: names of `pools` (default: the first "
                                   "pool; supervised: the supervised task).")
    label: str | None = Field(None, description="Curve name in results (default: MODEL-OBJECTIVE).")
    pretrain: dict[str, Any] = Field(default_factory=dict, description="This curve's pretrain settings over the "
                                     "study's `pretrain` (e.g. {steps: 300}: encoders differ ~30x in step time).")
    budgets: list[float | Literal["all"]] | None = Field(None, description="This curve's budgets (default: the "
                                                         "study's), e.g. fewer for a side comparison.")
    seeds: list[int] | None = Field(None, description="This curve's pretraining seeds (default: the study's).")

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: list[float | str] | None) -> list[float | str] | None:
        return v if v is None else _check_budgets(v)

    @property
    def display(self) -> str:
        return self.label or f"{self.model}-{self.objective}"


class LimitedDataConfig(StudyConfig):
    """``musicrep study limited-data``: curves × pretraining data × seeds × budgets × probes × tasks."""

    representations: list[RepresentationConfig] = Field(  # type: ignore[assignment]
        default_factory=list, description="Baselines evaluated once each (handcrafted features, pretrained "
        "models): the horizontal lines of the curves.")
    pools: dict[str, Path | RenderedTask] = Field(description="Pretraining pools by name: a pool folder "
                                                  "(`musicrep data pool`), or a render spec whose audio is "
                                                  "pooled on first use (CI: no pool needed).")
    supervised_task: Path | RenderedTask | None = Field(None, description="Labelled task the supervised "
                                                        "objective trains on (its name fills pretrain_data).")
    curves: list[CurveSpec] = Field(description="Encoder × objective learning curves.")
    budgets: list[float | Literal["all"]] = Field(
        default_factory=lambda: [0, 5, 10, 25, 50, 100, 250, 500, "all"],
        description="Pretraining minutes (nested); 0 = the random-init twin; all = the whole pool.")
    pretrain_seeds: list[int] = Field(default_factory=lambda: [0], description="Pretraining seeds (bands).")
    pretrain_preset: Literal["smoke", "laptop", "paper"] = Field("smoke", description="`musicrep pretrain` "
                                                                 "preset the runs start from.")
    pretrain: dict[str, Any] = Field(default_factory=dict, description="Overrides of the pretrain preset "
                                     "(steps, batch_size, lr, …).")
    checkpoints: Path | None = Field(None, description="Where checkpoints go (default: OUT/checkpoints); share "
                                     "it between runs to reuse them.")

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: list[float | str]) -> list[float | str]:
        return _check_budgets(v)

    def resolve_paths(self, base: Path) -> LimitedDataConfig:
        cfg = super().resolve_paths(base)
        upd: dict[str, Any] = {"pools": {k: (base / v if isinstance(v, Path) and not v.is_absolute() else v)
                                         for k, v in cfg.pools.items()}}
        if isinstance(cfg.supervised_task, Path) and not cfg.supervised_task.is_absolute():
            upd["supervised_task"] = base / cfg.supervised_task
        if cfg.checkpoints is not None and not cfg.checkpoints.is_absolute():
            upd["checkpoints"] = base / cfg.checkpoints
        return cfg.model_copy(update=upd)

    @property
    def data_dir(self) -> Path:
        return self.data if self.data is not None else self.out / "data"


def _pool_folder(spec: Path | RenderedTask, data_dir: Path) -> Path:
    """A pool folder: ``spec`` itself, or a rendered task's audio pooled once under ``data_dir``."""
    if isinstance(spec, Path):
        return spec
    from musicrep.data.pool import MANIFEST, pool_from_folder

    folder = data_dir / f"pool-{spec.slug}"
    if not (folder / MANIFEST).is_file():
        task_dir = spec.materialise(data_dir)
        pool_from_folder(task_dir / "audio", folder, source=spec.slug, progress=False)
    return folder


def _sources(cfg: LimitedDataConfig) -> dict[str, tuple[str, Path]]:
    """Pretraining data by name → ``("pool" | "task", folder)``; pools and tasks are made on first use."""
    out: dict[str, tuple[str, Path]] = {}
    for name, spec in cfg.pools.items():
        out[name] = ("pool", _pool_folder(spec, cfg.data_dir))
    if cfg.supervised_task is not None:
        spec = cfg.supervised_task
        folder = spec if isinstance(spec, Path) else spec.materialise(cfg.data_dir)
        out[Task.load(folder).name] = ("task", folder)
    return out


def _minutes_of(kind: str, folder: Path) -> float:
    """Minutes of audio a budget of ``all`` means: the whole pool, or the task's training split."""
    if kind == "pool":
        from musicrep.data.pool import load_pool

        return float(load_pool(folder)["duration"].astype(float).sum()) / 60.0
    items = Task.load(folder).items
    return float(items.loc[items["split"] == "train", "duration"].astype(float).sum()) / 60.0


def _curve_data(cfg: LimitedDataConfig, curve: CurveSpec, sources: dict[str, tuple[str, Path]]) -> list[str]:
    from musicrep.train.objectives import OBJECTIVES

    if curve.objective not in OBJECTIVES:
        raise ConfigError(f"curves: unknown objective {curve.objective!r}; choose one of {', '.join(sorted(OBJECTIVES))}")
    labelled = bool(getattr(OBJECTIVES[curve.objective], "needs_labels", False))
    if curve.data is not None:
        names = curve.data
    elif labelled:
        names = [n for n, (kind, _) in sources.items() if kind == "task"]
        if not names:
            raise ConfigError(f"curves: {curve.display} needs labels; set supervised_task: (a task folder or "
                              "render spec)")
    else:
        names = [next(n for n, (kind, _) in sources.items() if kind == "pool")] if cfg.pools else []
        if not names:
            raise ConfigError(f"curves: {curve.display} needs a pool; set pools: {{music: DIR}}")
    for n in names:
        if n not in sources:
            raise ConfigError(f"curves: {curve.display}: unknown data {n!r}; pools/tasks are {', '.join(sources)}")
        if labelled != (sources[n][0] == "task"):
            raise ConfigError(f"curves: {curve.display} on {n!r}: the {curve.objective} objective "
                              f"{'needs a labelled task' if labelled else 'trains on a pool'}")
    return names


def _checkpoint(cfg: LimitedDataConfig, curve: CurveSpec, data: str, kind: str, folder: Path,
                minutes: float | str, seed: int, run: Any, progress: bool) -> Path:
    """The finished checkpoint of one pretraining run: trained now, resumed, or reused as it is."""
    from musicrep.train.config import load_pretrain
    from musicrep.train.trainer import train_to_completion

    root = cfg.checkpoints or cfg.out / "checkpoints"
    tag = "all" if minutes == "all" else f"{float(minutes):g}min"
    out = root / f"{curve.display}-{data}-{tag}-seed{seed}"
    pcfg = load_pretrain({**cfg.pretrain, **curve.pretrain, "model": curve.model, "model_config": {"size": curve.size, **curve.encoder},
                          "objective": curve.objective, "objective_config": curve.objective_config,
                          "pool" if kind == "pool" else "task": str(folder), "minutes": minutes,
                          "seed": seed, "out": str(out)}, preset=cfg.pretrain_preset)
    return train_to_completion(pcfg, progress, lambda resuming: run.say(
        f"pretraining {curve.display} on {data}, {tag}, seed {seed} ({pcfg.steps} steps"
        f"{', resuming' if resuming else ''}) → {out}"))


def _settings_key(path: Path | None) -> str:
    """What identifies a checkpoint's weights in a unit key (its safetensors file's hash)."""
    if path is None:
        return "random-init"
    return sha256_file(path / CHECKPOINT_WEIGHTS)[:16]


def _evaluate(cfg: LimitedDataConfig, run: Any, tasks: list[Task], rc: RepresentationConfig,
              conditions: dict[str, Any], weights: str, progress: bool) -> None:
    """Every task × probe × seed of one representation not yet in the run's table."""
    rep = None
    for task in tasks:
        window = task_window(task, cfg.window)
        probes = [p for p in (rc.probes or cfg.probes) if PROBES[p].applies_to(task.kind, rc.name)]
        keys = {(p, s): study_unit_key("limited-data", cfg, rc, window, weights=weights,
                                       **{k: conditions[k] for k in ("pretrain_data", "pretrain_seed")})
                for p in probes for s in cfg.seeds}
        todo = [k for k, uk in keys.items() if not run.is_done(rc.display, task.name, k[0], k[1], uk)]
        if not todo:
            continue
        rep = rep or rc.build()
        emb = embed_for_run(run, rep, rc.display, task, window, cfg, progress)
        if emb is None:
            continue
        for probe, seed in todo:
            setup = ProbeSetup(probe=probe, grid=cfg.grid, layer=cfg.layer_choice, seed=seed,
                               n_bootstrap=cfg.bootstrap)
            unit = Unit(rc.display, rep.id, task, setup, keys[(probe, seed)], rc.budget_minutes,
                        {"study": "limited-data", **conditions})
            rows = run_unit(unit, emb)
            run.add(rows)
            at = "" if rc.budget_minutes is None else f" @ {rc.budget_minutes:g} min"
            run.say(escape(f"  {rc.display}{at} on {task.name}: {best_line(pd.DataFrame(rows))}  [{probe}, seed {seed}]"))


@register("limited-data", LimitedDataConfig, "learning curves over pretraining minutes vs random twins and "
          "handcrafted baselines")
def run_limited_data(cfg: LimitedDataConfig, *, progress: bool = True, console: Any = None) -> pd.DataFrame:
    """Run the study: pretrain what is missing, evaluate every checkpoint; rows go to ``cfg.out/results.csv``.

    Resumable at both levels: finished checkpoints and finished units are reused, a half-trained
    checkpoint resumes from its last saved step. Raises :class:`~musicrep.config.ConfigError` naming the
    key when a curve's objective, data or pools do not fit together.
    """
    run, tasks = start(cfg, console)
    sources = _sources(cfg)
    plans = [(curve, data) for curve in cfg.curves for data in _curve_data(cfg, curve, sources)]
    for pair in pairs(cfg, run, tasks):  # the baselines: once each, no pretraining budget
        _evaluate(cfg, run, [pair.task], pair.rc, {"pretrain_data": "none", "pretrain_seed": None}, "baseline",
                  progress)
    # seed-major: a run stopped part-way has every curve at the first seed rather than one curve at all seeds
    seeds = sorted({s for curve in cfg.curves for s in (curve.seeds or cfg.pretrain_seeds)})
    for seed in seeds:
        for curve, data in plans:
            if seed not in (curve.seeds or cfg.pretrain_seeds):
                continue
            kind, folder = sources[data]
            total = _minutes_of(kind, folder)
            for budget in curve.budgets or cfg.budgets:
                if budget != "all" and float(budget) > total:
                    run.say(f"[yellow]{curve.display} on {data}: budget {budget} min is more than the "
                            f"{total:.1f} min there are; skipped (the 'all' budget covers it)[/yellow]")
                    continue
                conditions = {"pretrain_data": data, "pretrain_seed": seed}
                if budget != "all" and float(budget) == TWIN_BUDGET:
                    rc = RepresentationConfig(name=curve.model, config={"size": curve.size, **curve.encoder,
                                                                        "seed": seed},
                                              label=curve.display, budget_minutes=TWIN_BUDGET)
                    _evaluate(cfg, run, tasks, rc, conditions, _settings_key(None), progress)
                    continue
                ckpt = _checkpoint(cfg, curve, data, kind, folder, budget, seed, run, progress)
                # 'all' is written as the minutes the run really drew from (the pool less its held-out
                # validation tracks), so it sits on the log axis; a number stays the nominal budget
                seen = json.loads((ckpt / "meta.json").read_text(encoding="utf-8")).get("data_minutes")
                minutes = float(seen) if budget == "all" and seen is not None else (
                    total if budget == "all" else float(budget))
                rc = RepresentationConfig(name=curve.model, config={"weights": str(ckpt)}, label=curve.display,
                                          budget_minutes=round(minutes, 3))
                _evaluate(cfg, run, tasks, rc, conditions, _settings_key(ckpt), progress)
    return run.finish()

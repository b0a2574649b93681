"""Fine-tuning: with N labelled items per class, fine-tune the encoder, or probe its frozen embeddings?

The practitioner's question behind ``musicrep finetune``. For each representation (a trainable encoder:
a pretraining checkpoint ``{name: vgg, config: {weights: DIR}}`` or an untrained twin) × task × labelled
budget of N training items per class (nested, :func:`musicrep.data.subset.subset`, the same items for
every method), the study compares

- ``finetune-all`` / ``finetune-lastN``: the encoder fine-tuned with a task head (:func:`musicrep.train.
  finetune.finetune`, every block or the last N unfrozen), scored by its own head (probe ``head``,
  :mod:`musicrep.probe.head`) on the task's test split;
- ``probe``: linear / MLP probes on the frozen embeddings (the normal evaluate path, selected on valid);
- ``knn``: the embeddings used directly, by their nearest neighbours.

Rows go to the one results table with ``method`` and ``labelled_per_class`` (empty: every item), so the
leaderboard ranks within each (budget, method) and the report draws a score-vs-items-per-class curve per
method. Fine-tuned checkpoints are kept under ``checkpoints`` (reused when finished, resumed when half
done); a fine-tuned checkpoint is a representation like any other.

Why validation on the task's valid split and no augmentation by default: fine-tuning then sees exactly the
labelled items and the validation data the probes see, so the comparison is of methods, not of data. An
untrained starting point (no ``weights``) is the twin of the fine-tuning seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field, field_validator
from rich.markup import escape

from musicrep.config import ConfigError, RepresentationConfig
from musicrep.data.subset import subset
from musicrep.evaluate import TaskEmbeddings, Unit, embed_for_run, run_unit
from musicrep.probe import ProbeSetup, Split
from musicrep.probe.head import HEAD_PROBE, head_runner
from musicrep.results import best_line
from musicrep.studies.base import StudyConfig, pairs, register, start, study_unit_key

__all__ = ["FinetuneStudyConfig", "finetune_method", "run_finetune_study", "score_head"]


def finetune_method(unfreeze: Literal["all"] | int) -> str:
    """The ``method`` column of a fine-tuned model's rows: ``finetune-all`` or ``finetune-lastN``."""
    return "finetune-all" if unfreeze == "all" else f"finetune-last{int(unfreeze)}"


class FinetuneStudyConfig(StudyConfig):
    """``musicrep study finetune``: representations × tasks × labelled budgets × (fine-tune | probe | kNN)."""

    per_class: list[int | None] = Field(default_factory=lambda: [5, 20, None], description="Labelled budgets: "
                                        "training items per class (null: all).")
    unfreeze: list[Literal["all"] | int] = Field(default_factory=lambda: ["all", 2], description="Fine-tuning "
                                                 "variants: every block, or only the last N (one per layer).")
    finetune_preset: Literal["smoke", "laptop"] = Field("smoke", description="`musicrep finetune` preset the "
                                                        "runs start from.")
    finetune: dict[str, Any] = Field(default_factory=dict, description="Overrides of the finetune preset "
                                     "(steps, batch_size, lr, …).")
    budget_seed: int = Field(0, description="Seed of the nested per-class budgets (the same items for every method).")
    checkpoints: Path | None = Field(None, description="Where fine-tuned checkpoints go (default: OUT/checkpoints).")

    @field_validator("unfreeze")
    @classmethod
    def _unfreeze(cls, v: list[Any]) -> list[Any]:
        if any(u != "all" and int(u) < 0 for u in v):
            raise ValueError("unfreeze: give 'all' or numbers of blocks ≥ 0")
        return v

    def resolve_paths(self, base: Path) -> FinetuneStudyConfig:
        cfg = super().resolve_paths(base)
        if cfg.checkpoints is not None and not cfg.checkpoints.is_absolute():
            cfg = cfg.model_copy(update={"checkpoints": base / cfg.checkpoints})
        return cfg  # type: ignore[return-value]


def _budget_rows(task: Any, ids: list[str], n: int | None, seed: int) -> list[int]:
    """Rows (of the embedded training items ``ids``) inside the budget of ``n`` items per class."""
    if n is None:
        return list(range(len(ids)))
    chosen = set(subset(task, per_class=n, split="train", seed=seed).split("train")["id"].astype(str))
    return [k for k, i in enumerate(ids) if i in chosen]


def _restricted(emb: TaskEmbeddings, rows: list[int]) -> TaskEmbeddings:
    """``emb`` with its training split cut to ``rows`` (the labelled budget)."""
    tr = emb.splits["train"]
    w = None if tr.weights is None else tr.weights[rows]
    return TaskEmbeddings({**emb.splits, "train": Split(tr.x[rows], tr.y[rows], tr.groups[rows], w)},
                          emb.layer_dims, emb.layer_names, emb.n_failed, [],
                          {**emb.ids, "train": [emb.ids["train"][k] for k in rows]})


def _frozen(cfg: FinetuneStudyConfig, pair: Any, progress: bool) -> None:
    """Probes (``probe``) and kNN (``knn``) on the frozen embeddings, per labelled budget."""
    rc, task, window, run = pair.rc, pair.task, pair.window, pair.run
    keys = {(n, p, s): study_unit_key("finetune", cfg, rc, window, per_class=n, budget_seed=cfg.budget_seed)
            for n in cfg.per_class for p in pair.probes for s in cfg.seeds}
    todo = pair.todo(keys)
    if not todo:
        return
    emb = embed_for_run(run, pair.rep, pair.label, task, window, cfg, progress)
    if emb is None:
        return
    for n in cfg.per_class:
        budget = _restricted(emb, _budget_rows(task, emb.ids["train"], n, cfg.budget_seed))
        for probe, seed in [(p, s) for (nn, p, s) in todo if nn == n]:
            setup = ProbeSetup(probe=probe, grid=cfg.grid, layer=cfg.layer_choice, seed=seed, n_bootstrap=cfg.bootstrap)
            cond = {"study": "finetune", "labelled_per_class": n, "method": "knn" if probe == "knn" else "probe"}
            rows = run_unit(Unit(pair.label, pair.rep.id, task, setup, keys[(n, probe, seed)], rc.budget_minutes, cond),
                            budget)
            run.add(rows)
            run.say(escape(f"  {best_line(pd.DataFrame(rows))}  [{probe}, seed {seed}, {n or 'all'}/class]"))


def _checkpoint(cfg: FinetuneStudyConfig, rc: RepresentationConfig, task: Any, unfreeze: Any, n: int | None,
                seed: int, run: Any, progress: bool) -> Path:
    """The finished fine-tuned checkpoint of one (representation, task, variant, budget, seed): trained now,
    resumed, or reused."""
    from musicrep.train.config import load_finetune
    from musicrep.train.trainer import train_to_completion

    start_cfg = dict(rc.config)
    weights = start_cfg.pop("weights", None)
    start_cfg.pop("seed", None)  # an untrained start is the fine-tuning seed's twin
    root = cfg.checkpoints or cfg.out / "checkpoints"
    out = root / f"{rc.display}-{task.name}-{finetune_method(unfreeze)}-{n or 'all'}pc-seed{seed}"
    fcfg = load_finetune({**cfg.finetune, "model": rc.name, "model_config": start_cfg, "weights": weights,
                          "task": str(task.root), "unfreeze": unfreeze, "per_class": n,
                          "budget_seed": cfg.budget_seed, "seed": seed, "out": str(out)},
                         preset=cfg.finetune_preset)
    return train_to_completion(fcfg, progress, lambda resuming: run.say(
        f"fine-tuning {rc.display} on {task.name}: {finetune_method(unfreeze)}, {n or 'all'}/class, seed {seed} "
        f"({fcfg.steps} steps{', resuming' if resuming else ''}) → {out}"))


def _finetuned(cfg: FinetuneStudyConfig, pair: Any, progress: bool) -> None:
    """Each fine-tuning variant × budget × seed: train (or reuse) the checkpoint, score its own head."""
    rc, task, window, run = pair.rc, pair.task, pair.window, pair.run
    for unfreeze in cfg.unfreeze:
        method = finetune_method(unfreeze)
        for n in cfg.per_class:
            for seed in cfg.seeds:
                key = study_unit_key("finetune", cfg, rc, window, per_class=n, budget_seed=cfg.budget_seed,
                                     unfreeze=unfreeze, finetune=cfg.finetune, preset=cfg.finetune_preset)
                if run.is_done(pair.label, task.name, HEAD_PROBE, seed, key):
                    continue
                ckpt = _checkpoint(cfg, rc, task, unfreeze, n, seed, run, progress)
                rows = _score(cfg, run, pair.label, task, window, ckpt, key, seed, rc.budget_minutes,
                              {"study": "finetune", "labelled_per_class": n, "method": method}, progress)
                if rows is not None:
                    run.say(escape(f"  {best_line(pd.DataFrame(rows))}  [{method}, seed {seed}, {n or 'all'}/class]"))


def _score(cfg: StudyConfig, run: Any, label: str, task: Any, window: Any, ckpt: Path, key: str, seed: int,
           budget_minutes: float | None, conditions: dict[str, Any], progress: bool) -> list[dict[str, Any]] | None:
    """Rows of a fine-tuned checkpoint's own head on ``task``'s test split (selected-on nothing; ``valid_value``
    is the head's valid score), added to ``run``; None when the task has no readable test items."""
    from musicrep.models.base import CHECKPOINT_WEIGHTS, read_checkpoint_model
    from musicrep.train.finetune import load_predictor
    from musicrep.util import sha256_file

    tuned = RepresentationConfig(name=read_checkpoint_model(ckpt)["name"], config={"weights": str(ckpt)}, label=label)
    rep = tuned.build()
    emb = embed_for_run(run, rep, f"{label} ({conditions.get('method')})", task, window, cfg, progress,
                        splits=("valid", "test"))
    if emb is None:
        return None
    meta = json.loads((ckpt / "meta.json").read_text(encoding="utf-8"))
    settings = {"method": conditions.get("method"), "steps": meta.get("steps"),
                "weights": sha256_file(ckpt / CHECKPOINT_WEIGHTS)[:16]}
    runner = head_runner(load_predictor(ckpt).head, settings, n_train=meta.get("data_n_tracks"))
    setup = ProbeSetup(probe=HEAD_PROBE, seed=seed, n_bootstrap=cfg.bootstrap)
    rows = run_unit(Unit(label, rep.id, task, setup, key, budget_minutes, conditions), emb, probe_runner=runner)
    run.add(rows)
    return rows


def score_head(ckpt: str | Path, task: str | Path, *, bootstrap: int = 1000, progress: bool = False) -> pd.DataFrame:
    """Score a fine-tuned checkpoint's own head on a task's test split (metrics and bootstrap CIs as every probe).

    Rows (``probe`` = ``head``, ``method`` from the checkpoint's ``unfreeze``) go to ``CKPT/eval/results.csv``
    (a run folder: ``musicrep report CKPT/eval`` draws it; embeddings in ``CKPT/eval/store``); returns them.
    Raises :class:`~musicrep.models.base.WeightsError` when the checkpoint has no head.
    """
    import yaml

    from musicrep.data.task import Task
    from musicrep.evaluate import Run, task_window
    from musicrep.models.base import read_checkpoint_model

    ckpt, t = Path(ckpt), Task.load(task)
    saved = yaml.safe_load((ckpt / "config.yaml").read_text(encoding="utf-8")) or {}
    name = read_checkpoint_model(ckpt)["name"]
    cfg = StudyConfig(tasks=[Path(task)], representations=[RepresentationConfig(name=name, config={"weights": str(ckpt)})],
                      out=ckpt / "eval", bootstrap=bootstrap, probes=["linear"])
    run = Run(cfg.out, cfg)
    window = task_window(t, cfg.window)
    per_class = saved.get("per_class")
    cond = {"study": "finetune", "labelled_per_class": per_class,
            "method": finetune_method(saved.get("unfreeze", "all"))}
    label = f"{name}-finetuned"
    key = study_unit_key("finetune", cfg, cfg.representations[0], window, per_class=per_class, head=True)
    rows = _score(cfg, run, label, t, window, ckpt, key, int(saved.get("seed", 0)), None, cond, progress) or []
    run.finish()
    return pd.DataFrame(rows)


@register("finetune", FinetuneStudyConfig, "labelled budgets of N per class: fine-tuning (all / last N blocks) vs "
          "frozen embeddings + probe vs kNN")
def run_finetune_study(cfg: FinetuneStudyConfig, *, progress: bool = True, console: Any = None) -> pd.DataFrame:
    """Run the study; rows go to ``cfg.out/results.csv`` (resumable: finished units and checkpoints are reused).

    Raises :class:`~musicrep.config.ConfigError` when a representation is not a trainable encoder.
    """
    run, tasks = start(cfg, console)
    for pair in pairs(cfg, run, tasks):
        if not hasattr(pair.rep, "layer_blocks"):
            raise ConfigError(f"representations: {pair.rc.name} is not a trainable encoder (vgg, musicnn, samplecnn, "
                              "ast, tmae, nfnet, conformer); fine-tuning needs one")
        _frozen(cfg, pair, progress)
        _finetuned(cfg, pair, progress)
    return run.finish()

"""Augmentation: does natural augmentation of a small labelled set help, and does weighting the copies?

The practitioner's advice this tests (``shared/seeds``: augment 20–30 % of a small training set with
natural effects — pitch, stretch, compression, distortion, reverb — never validation or test, optionally
with lower sample weights for the copies). For each labelled budget of N items per class (nested, from
:func:`musicrep.data.subset.subset`), a fraction of the budget's training items (nested too: the 25 %
are inside the 50 %) gets one augmented copy each — one natural transform per item, drawn from the item
id and the seed — and probes are trained with the copies at sample weight 1 or lower. Rows carry
``labelled_per_class``, ``augment_fraction``, ``sample_weight`` and ``train_deformation``.

Transforms that change a task's labels (pitch shift on key/pitch tasks, time stretch on tempo) are left
out for that task. kNN and centroid probes ignore sample weights (their rows still differ by the copies).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator
from rich.markup import escape

from musicrep.augment import item_rng, parse
from musicrep.data.splits import rank
from musicrep.data.subset import subset
from musicrep.evaluate import TaskEmbeddings, Unit, embed_for_run, run_unit
from musicrep.probe import ProbeSetup, Split
from musicrep.results import best_line
from musicrep.studies.base import StudyConfig, pairs, register, start, study_unit_key

__all__ = ["AugmentationConfig", "run_augmentation"]

NATURAL = ["pitch@semitones=1", "pitch@semitones=-1", "stretch@rate=1.1", "stretch@rate=0.9", "reverb@room=0.5",
           "eq@low_db=6,high_db=-6", "compress@threshold_db=-20,ratio=4", "distort@drive_db=10", "gain@db=-6"]


class AugmentationConfig(StudyConfig):
    """``musicrep study augmentation``: labelled budgets × augmented fraction × sample weighting."""

    per_class: list[int | None] = Field(default_factory=lambda: [5, 10, 20, 50, None],
                                        description="Labelled budgets: training items per class (null: all).")
    fractions: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5],
                                   description="Share of the budget's training items given one augmented copy.")
    weights: list[float] = Field(default_factory=lambda: [1.0, 0.5],
                                 description="Sample weight of the augmented copies (1: no weighting).")
    augmentations: list[str] = Field(default_factory=lambda: list(NATURAL),
                                     description="Natural transforms a copy is drawn from (one per item).")
    deformation_seed: int = Field(0, description="Seed of which items are augmented, with what, and how.")

    @field_validator("augmentations")
    @classmethod
    def _natural(cls, v: list[str]) -> list[str]:
        out = [str(parse(d)) for d in v]
        unnatural = [d for d in out if not parse(d).transform.natural]
        if unnatural:
            raise ValueError(f"{unnatural} are not natural effects (noise and codecs belong in robustness)")
        return out

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 <= f <= 1 for f in v):
            raise ValueError("fractions must lie in [0, 1]")
        return v


def _choose(ids: list[str], transforms: list[str], seed: int) -> dict[str, str]:
    """The one transform each training item's copy gets, from the item id and the seed."""
    return {i: transforms[int(item_rng(i, "augmentation", seed).integers(len(transforms)))] for i in ids}


@register("augmentation", AugmentationConfig, "labelled budgets × natural augmentation on 0/25/50 % of "
          "training items × sample weighting")
def run_augmentation(cfg: AugmentationConfig, *, progress: bool = True, console: Any = None) -> pd.DataFrame:
    """Run the study; rows go to ``cfg.out/results.csv`` (resumable). Returns the whole table."""
    run, tasks = start(cfg, console)
    settings = [(f, w) for f in cfg.fractions for w in (cfg.weights if f > 0 else [1.0])]
    for pair in pairs(cfg, run, tasks):
        task, window, label = pair.task, pair.window, pair.label
        transforms = [d for d in cfg.augmentations if task.kind not in parse(d).transform.changes]
        keys = {(n, f, w, p, s): study_unit_key("augmentation", cfg, pair.rc, window, per_class=n, fraction=f,
                                                weight=w, transforms=transforms, seed_d=cfg.deformation_seed)
                for n in cfg.per_class for (f, w) in settings for p in pair.probes for s in cfg.seeds}
        todo = pair.todo(keys)
        if not todo:
            continue
        rep = pair.rep
        clean = embed_for_run(run, rep, label, task, window, cfg, progress)
        if clean is None:
            continue
        present = clean.ids["train"]  # ids of the clean training rows (items that failed are not rows)
        chosen = _choose(present, transforms, cfg.deformation_seed) if transforms else {}
        copies: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # id → (x, y, group) of its copy
        if any(f > 0 for f, _ in settings) and chosen:
            for d in sorted(set(chosen.values())):
                e = embed_for_run(run, rep, label, task, window, cfg, progress, splits=("train",), deformation=d,
                                  deformation_seed=cfg.deformation_seed, ids=[i for i, t in chosen.items() if t == d])
                if e is None:
                    continue
                sp = e.splits["train"]
                for j, i in enumerate(e.ids["train"]):
                    copies[i] = (sp.x[j], sp.y[j], sp.groups[j])
        # which items get a copy: one seeded rank per item, so the 25 % are inside the 50 % at every budget
        order = rank(present, cfg.deformation_seed, salt="augment")
        for n in cfg.per_class:
            budget = set(subset(task, per_class=n, split="train", seed=cfg.deformation_seed).split("train")["id"]) \
                if n is not None else set(present)
            rows_in = [k for k, i in enumerate(present) if i in budget]
            ranked = sorted(rows_in, key=lambda k: order[k])
            for f, w in settings:
                aug_rows = [k for k in ranked[: math.ceil(f * len(ranked))] if present[k] in copies]
                emb = _budget(clean, rows_in, [copies[present[k]] for k in aug_rows], w)
                for probe, seed in [(p, s) for (nn, ff, ww, p, s) in todo if (nn, ff, ww) == (n, f, w)]:
                    setup = ProbeSetup(probe=probe, grid=cfg.grid, layer=cfg.layer_choice, seed=seed,
                                       n_bootstrap=cfg.bootstrap)
                    cond = {"study": "augmentation", "labelled_per_class": n, "augment_fraction": f,
                            "sample_weight": w, "train_deformation": "natural" if aug_rows else "none"}
                    unit = Unit(label, rep.id, task, setup, keys[(n, f, w, probe, seed)], pair.rc.budget_minutes, cond)
                    rows = run_unit(unit, emb)
                    run.add(rows)
                    run.say(escape(f"  {best_line(pd.DataFrame(rows))}  [{probe}, seed {seed}, "
                                   f"{n or 'all'}/class, {f:.0%} augmented ×{w:g}]"))
    return run.finish()


def _budget(clean: TaskEmbeddings, rows: list[int], copies: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
            weight: float) -> TaskEmbeddings:
    """The clean embeddings with the training split cut to ``rows`` and the augmented copies appended."""
    tr = clean.splits["train"]
    x, y, g = tr.x[rows], tr.y[rows], tr.groups[rows]
    wts = np.ones(len(rows), dtype=np.float32)
    if copies:
        x = np.concatenate([x, np.stack([c[0] for c in copies])])
        y = np.concatenate([y, np.stack([c[1] for c in copies])])
        g = np.concatenate([g, np.array([c[2] for c in copies])])  # a copy keeps its item's group
        wts = np.concatenate([wts, np.full(len(copies), weight, dtype=np.float32)])
    return TaskEmbeddings({**clean.splits, "train": Split(x, y, g, wts)}, clean.layer_dims, clean.layer_names,
                          clean.n_failed, [])

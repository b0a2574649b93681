"""Robustness: probes trained on clean audio, scored on deformed test audio — then trained on augmented audio.

The finding it measures (e.g. the robustness results summarised in ``shared/reference``): learned
representations lose much of their accuracy under noise and codecs. For every representation × task,
one probe per (probe, seed, training condition) is fitted once and scored on the clean test split and on
the same test items under every deformation (:mod:`musicrep.augment`), each cached in the store; the
rows' ``deformation`` column says which, ``train_deformation`` how the probe was trained (``none``, or
the augmentations added to its training set). The report draws score and relative drop vs severity.

Deformations that change a task's labels (a pitch shift on a key or pitch task) are skipped for that
task: the label of the deformed audio is no longer the item's label.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator
from rich.markup import escape

from musicrep.augment import parse
from musicrep.evaluate import TaskEmbeddings, Unit, embed_for_run, run_unit
from musicrep.probe import ProbeSetup, Split
from musicrep.results import best_line
from musicrep.studies.base import StudyConfig, pairs, register, start, study_unit_key

__all__ = ["RobustnessConfig", "run_robustness"]

#: The severities of the issue: noise at 30/20/10/0 dB SNR, MP3 at 128/64/32 kbps, reverb, ±1 semitone, −12 dB.
DEFAULT_DEFORMATIONS = [
    "noise:white@snr=30", "noise:white@snr=20", "noise:white@snr=10", "noise:white@snr=0",
    "mp3@kbps=128", "mp3@kbps=64", "mp3@kbps=32", "reverb@room=0.8",
    "pitch@semitones=1", "pitch@semitones=-1", "gain@db=-12",
]


class RobustnessConfig(StudyConfig):
    """``musicrep study robustness``: clean-trained (and augmentation-trained) probes on deformed test audio."""

    layers: Literal["all", "last", "weighted"] = Field(
        "last", description="all | last | weighted (see evaluate); last keeps the table small.")
    deformations: list[str] = Field(default_factory=lambda: list(DEFAULT_DEFORMATIONS),
                                    description="Test deformations (musicrep data deformations lists them).")
    background_dir: str | None = Field(None, description="A folder of recordings (the pool, speech): adds "
                                       "background noise at 20/10/0 dB SNR drawn from it.")
    train_augmentations: list[str] = Field(default_factory=lambda: ["noise:white@snr=20", "noise:pink@snr=10",
                                                                    "mp3@kbps=64"],
                                           description="Copies of the training split added for the second "
                                           "training condition (empty: clean training only).")
    deformation_seed: int = Field(0, description="Seed of the deformations' random choices.")

    @field_validator("deformations", "train_augmentations")
    @classmethod
    def _canonical(cls, v: list[str]) -> list[str]:
        return [str(parse(d)) for d in v]

    def test_deformations(self) -> list[str]:
        extra = ([str(parse(f"background@snr={s},dir={self.background_dir}")) for s in (20, 10, 0)]
                 if self.background_dir else [])
        return list(dict.fromkeys(self.deformations + extra))


def _label_safe(deformations: list[str], kind: str) -> list[str]:
    return [d for d in deformations if kind not in parse(d).transform.changes]


def _with_copies(clean: TaskEmbeddings, copies: list[TaskEmbeddings]) -> TaskEmbeddings:
    """``clean`` with the training split extended by each copy's training split (same items, deformed)."""
    parts = [clean.splits["train"]] + [c.splits["train"] for c in copies]
    train = Split(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]),
                  np.concatenate([p.groups for p in parts]))  # a copy keeps its item's group: no leak in k-fold
    return TaskEmbeddings({**clean.splits, "train": train}, clean.layer_dims, clean.layer_names,
                          clean.n_failed + sum(c.n_failed for c in copies), [])


@register("robustness", RobustnessConfig, "scores under noise, codecs, reverb, pitch and gain; clean vs "
          "augmentation-trained probes")
def run_robustness(cfg: RobustnessConfig, *, progress: bool = True, console: Any = None) -> pd.DataFrame:
    """Run the study; rows go to ``cfg.out/results.csv`` (resumable). Returns the whole table."""
    run, tasks = start(cfg, console)
    for pair in pairs(cfg, run, tasks):
        task, window, label = pair.task, pair.window, pair.label
        tests_wanted = _label_safe(cfg.test_deformations(), task.kind)
        augs = _label_safe(cfg.train_augmentations, task.kind)
        conditions = [("none", [])] + ([("+".join(augs), augs)] if augs else [])
        keys = {(cond, p, s): study_unit_key("robustness", cfg, pair.rc, window, train=cond, tests=tests_wanted,
                                             seed_d=cfg.deformation_seed)
                for cond, _ in conditions for p in pair.probes for s in cfg.seeds}
        todo = pair.todo(keys)
        if not todo:
            continue
        rep = pair.rep
        clean = embed_for_run(run, rep, label, task, window, cfg, progress)
        if clean is None:
            continue
        tests = {"none": clean.splits["test"]}
        lost = 0
        for d in tests_wanted:
            e = embed_for_run(run, rep, label, task, window, cfg, progress, splits=("test",), deformation=d,
                              deformation_seed=cfg.deformation_seed)
            if e is not None:
                tests[d] = e.splits["test"]
                lost += e.n_failed
        for cond, aug in conditions:
            emb = clean
            if aug:
                copies = [embed_for_run(run, rep, label, task, window, cfg, progress, splits=("train",),
                                        deformation=d, deformation_seed=cfg.deformation_seed) for d in aug]
                emb = _with_copies(clean, [c for c in copies if c is not None])
            for probe, seed in [(p, s) for (c, p, s) in todo if c == cond]:
                setup = ProbeSetup(probe=probe, grid=cfg.grid, layer=cfg.layer_choice, seed=seed,
                                   n_bootstrap=cfg.bootstrap)
                unit = Unit(label, rep.id, task, setup, keys[(cond, probe, seed)], pair.rc.budget_minutes,
                            {"study": "robustness", "train_deformation": cond})
                rows = run_unit(unit, emb, tests, n_failed=lost)
                run.add(rows)
                clean_rows = pd.DataFrame([r for r in rows if r["deformation"] == "none"])
                run.say(escape(f"  {best_line(clean_rows)} clean, {len(tests) - 1} deformations "
                               f"[{probe}, seed {seed}, train {cond}]"))
    return run.finish()

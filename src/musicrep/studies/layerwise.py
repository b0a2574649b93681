"""Layer-wise: the score of every layer on every task, best layer vs learned mix vs last, and layer similarity.

The finding it measures: layers specialise by task, and the best layer is usually not the last
(MARBLE, and the layer-wise probing of the seeds). For every representation × task × probe × seed it
writes one row per layer (a layer scan, ``layer = "i:name"``) and one for a learned softmax-weighted sum
of layers (``layer = "weighted"``, trained probes only); the report draws the heat-map and compares the
best single layer (chosen on validation), the weighted sum and the last layer. Beside the table,
``cka.csv`` holds linear CKA between every pair of layers on one task's items (all splits), per
representation: how much layers differ at all.

Linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited"):
``CKA(X, Y) = ‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F)`` on column-centred ``[N, d]`` features; 1 for
the same features up to rotation and isotropic scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field
from rich.markup import escape

from musicrep.evaluate import Unit, embed_for_run, run_unit
from musicrep.probe import PROBES, ProbeSetup
from musicrep.results import best_line, write_csv_atomic
from musicrep.studies.base import StudyConfig, pairs, register, start, study_unit_key

__all__ = ["LayerwiseConfig", "linear_cka", "cka_matrix", "run_layerwise"]


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between two feature matrices of the same items, ``[N, d1]`` and ``[N, d2]`` → [0, 1].

    Computed in float64 through the ``[d, d]`` cross-products (cheap for N ≫ d). ``nan`` if either
    matrix is constant over items.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"CKA needs the same items: {a.shape[0]} vs {b.shape[0]} rows")
    a = a - a.mean(0)
    b = b - b.mean(0)
    cross = np.linalg.norm(b.T @ a) ** 2
    norm = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(cross / norm) if norm > 0 else float("nan")


def cka_matrix(emb: np.ndarray, layer_dims: list[int]) -> np.ndarray:
    """``[L, L]`` linear CKA between the layers of ``emb [N, L, H]`` (each layer cut to its true width)."""
    L = emb.shape[1]
    feats = [emb[:, i, : layer_dims[i]] for i in range(L)]
    out = np.eye(L)
    for i in range(L):
        for j in range(i + 1, L):
            out[i, j] = out[j, i] = linear_cka(feats[i], feats[j])
    return out


class LayerwiseConfig(StudyConfig):
    """``musicrep study layerwise``: every layer × every task, the learned layer mix, and layer CKA."""

    weighted: bool = Field(True, description="Also fit a learned softmax-weighted sum of layers (trained probes).")
    cka_task: str | None = Field(None, description="Task whose items the layer CKA is computed on "
                                 "(default: the first task).")


@register("layerwise", LayerwiseConfig, "every layer on every task, best vs weighted vs last, layer CKA")
def run_layerwise(cfg: LayerwiseConfig, *, progress: bool = True, console: Any = None) -> pd.DataFrame:
    """Run the study; rows go to ``cfg.out/results.csv`` and CKA to ``cfg.out/cka.csv`` (resumable)."""
    run, tasks = start(cfg, console)
    cka_task = cfg.cka_task or tasks[0].name
    cka_path = cfg.out / "cka.csv"
    cka = pd.read_csv(cka_path, dtype={"representation": str, "task": str}) if cka_path.exists() else pd.DataFrame(
        columns=["representation", "rep_id", "task", "layer_a", "layer_b", "cka"])
    for pair in pairs(cfg, run, tasks):
        task, window, label = pair.task, pair.window, pair.label
        modes = ["all"] + (["weighted"] if cfg.weighted else [])
        keys = {(m, p, s): study_unit_key("layerwise", cfg, pair.rc, window, mode=m)
                for m in modes for p in pair.probes for s in cfg.seeds
                if not (m == "weighted" and PROBES[p].build is not None)}
        want_cka = task.name == cka_task and not ((cka["representation"] == label) & (cka["task"] == task.name)).any()
        todo = pair.todo(keys) if not want_cka else [k for k, uk in keys.items()
                                                      if not run.is_done(label, task.name, k[-2], k[-1], uk)]
        if not todo and not want_cka:
            continue
        rep = pair.rep
        emb = embed_for_run(run, rep, label, task, window, cfg, progress)
        if emb is None:
            continue
        for mode, probe, seed in todo:
            setup = ProbeSetup(probe=probe, grid=cfg.grid, layer=mode, seed=seed, n_bootstrap=cfg.bootstrap)
            unit = Unit(label, rep.id, task, setup, keys[(mode, probe, seed)], pair.rc.budget_minutes,
                        {"study": "layerwise"})
            rows = run_unit(unit, emb)
            run.add(rows)
            run.say(escape(f"  {best_line(pd.DataFrame(rows))}  [{probe}, {mode}, seed {seed}]"))
        if want_cka:
            x = np.concatenate([emb.splits[s].x for s in ("train", "valid", "test")])
            m = cka_matrix(x, emb.layer_dims)
            names = [f"{i}:{n}" for i, n in enumerate(emb.layer_names)]
            new = pd.DataFrame([{"representation": label, "rep_id": rep.id, "task": task.name,
                                 "layer_a": names[i], "layer_b": names[j], "cka": m[i, j]}
                                for i in range(len(names)) for j in range(len(names))])
            cka = pd.concat([cka, new], ignore_index=True) if len(cka) else new
            write_csv_atomic(cka, cka_path)
    return run.finish()

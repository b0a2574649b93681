"""k-fold cross-validation of a probe over every item of a task: each item is predicted once, by a probe
that never saw it in training or selection.

Takes a :class:`~musicrep.probe.ProbeData` whose ``train`` split holds every item (``x [N, L, H]``, targets,
groups) and a :class:`~musicrep.probe.ProbeSetup` with ``cv_folds = k ≥ 3``; gives rows named like
``results.csv``, as :func:`~musicrep.probe.evaluate_probe` does, scored on the out-of-fold predictions of
all ``N`` items.

Why: on a small labelled set a 10 % test split holds a few dozen items, and a CI over them is too wide to
rank anything; scoring every item out of fold uses all of them (and the paired bootstrap of
:func:`musicrep.results.tied_with_winner` then compares two entries on all ``N`` items).

Folds: :func:`~musicrep.probe.fit.kfold_splits` (stratified, and grouped by the task's ``group`` column so
excerpts of one work stay in one fold), always with seed :data:`CV_SEED`, so every representation, probe
and probe seed is cut the same way. Fold ``f`` is the test set, fold ``f + 1`` (mod k) the validation set
the probe's config and layer are chosen on, the other ``k − 2`` folds train. Why a rotating validation fold
rather than a nested k-fold inside each training part: one fit per fold instead of ``k + 1`` (measured 6–8×
cheaper for the linear and MLP grids on 200 items), which is what keeps ``musicrep compare`` within its
time budget; the price is training on ``(k − 2) / k`` of the items.

Rows: one per (layer, metric): ``value`` is the metric over all out-of-fold predictions and its CI a
percentile bootstrap over those items; ``valid_value`` the mean of the folds' validation scores (what the
leaderboard selects on, never the test score); ``best_config`` a JSON list of each fold's chosen config;
``n_train`` the mean training size; ``n_test = N``; ``selection = "cv<k>"``. Metrics that are means over
items (accuracy, MIREX, pitch) are exact on pooled folds; ranking metrics (mAP, ROC-AUC) pool scores of k
separately fitted probes, a small approximation on top.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from typing import Any

import numpy as np

from musicrep.kinds import get_kind
from musicrep.metrics import bootstrap_ci, get_metric
from musicrep.probe.fit import evaluate_probe, kfold_splits
from musicrep.probe.types import ProbeData, ProbeSetup, Split
from musicrep.results import PREDICTIONS_KEY

__all__ = ["CV_SEED", "cross_validate_probe", "fold_ids"]

#: Seed of the fold cut, fixed so that every entry of a comparison is trained and tested on the same folds.
CV_SEED = 0


def fold_ids(kind: str, y: Any, k: int, groups: Any | None = None, seed: int = CV_SEED) -> np.ndarray:
    """The fold (0 … k'−1) of each item: ``[N]`` ints, from :func:`~musicrep.probe.fit.kfold_splits`.

    ``k'`` may be below ``k`` when there are fewer groups than ``k``. Raises ``ValueError`` when fewer
    than 3 folds can be cut (a test, a validation and a training fold are needed).
    """
    y = np.asarray(y)
    splits = kfold_splits(get_kind(kind), y, k, seed, None if groups is None else np.asarray(groups))
    if len(splits) < 3:
        raise ValueError(f"cross-validation needs at least 3 folds; only {len(splits)} could be cut from "
                         f"{len(y)} items" + ("" if groups is None else f" in {len(np.unique(groups))} groups"))
    out = np.full(len(y), -1, dtype=np.int64)
    for f, (_, held) in enumerate(splits):
        out[held] = f
    return out


def cross_validate_probe(data: ProbeData, setup: ProbeSetup) -> list[dict[str, Any]]:
    """Cross-validate ``setup.probe`` over every item of ``data.train``; rows as :func:`evaluate_probe` gives.

    ``data.valid`` and ``data.test`` must be ``None`` (every item is in ``data.train``); ``setup.cv_folds``
    is k (≥ 3). Each row carries under :data:`~musicrep.results.PREDICTIONS_KEY` the ``(reference,
    estimate)`` of all items in ``data.train``'s order. Raises ``ValueError`` for a split given besides
    train or fewer than 3 folds. Give ``data.vocabulary``, so a class missing from one fold's training part
    is still one of the probe's outputs (and counted as a miss), as it is for :func:`evaluate_probe`.
    """
    if data.valid is not None or data.test is not None:
        raise ValueError("cross-validation pools every item into data.train; pass valid=None and test=None")
    if setup.cv_folds < 3:
        raise ValueError(f"cv_folds must be at least 3 (test, validation and training folds), got {setup.cv_folds}")
    kind = get_kind(data.kind)
    x = np.asarray(data.train.x)
    y = kind.check_targets(data.train.y, "y")
    groups = None if data.train.groups is None else np.asarray(data.train.groups)
    weights = None if data.train.weights is None else np.asarray(data.train.weights)
    folds = fold_ids(data.kind, y, setup.cv_folds, groups)
    k = int(folds.max()) + 1

    def part(mask: np.ndarray) -> Split:
        return Split(x[mask], y[mask], None if groups is None else groups[mask],
                     None if weights is None else weights[mask])

    # per fold: no CI (it is computed once, on the pooled predictions); the probe seed stays the caller's
    fold_setup = replace(setup, cv_folds=0, n_bootstrap=0)
    pooled: dict[tuple[str, str], list[tuple[np.ndarray, dict[str, Any]]]] = defaultdict(list)
    for f in range(k):
        test, valid = folds == f, folds == (f + 1) % k
        fold = replace(data, train=part(~(test | valid)), valid=part(valid), test=part(test))
        for row in evaluate_probe(fold, fold_setup):
            pooled[(str(row["layer"]), row["metric"])].append((np.flatnonzero(test), row))

    rows = []
    for parts in pooled.values():
        order = np.argsort(np.concatenate([idx for idx, _ in parts]), kind="stable")
        ref = np.concatenate([np.asarray(r[PREDICTIONS_KEY][0]) for _, r in parts])[order]
        est = np.concatenate([np.asarray(r[PREDICTIONS_KEY][1]) for _, r in parts])[order]
        first = parts[0][1]
        m = get_metric(first["metric"])
        lo, hi = bootstrap_ci(m, ref, est, n=setup.n_bootstrap, alpha=setup.alpha, seed=int(setup.seed))
        weights_per_fold = [json.loads(r["layer_weights"]) for _, r in parts if r["layer_weights"]]
        rows.append({
            "probe": setup.probe, "layer": first["layer"], "seed": int(setup.seed), "metric": m.name,
            "value": m(ref, est), "ci_low": lo, "ci_high": hi,
            "valid_value": float(np.mean([r["valid_value"] for _, r in parts])),
            "best_config": json.dumps([json.loads(r["best_config"]) for _, r in parts]),
            "layer_weights": json.dumps(weights_per_fold) if weights_per_fold else "",
            "n_train": int(round(np.mean([r["n_train"] for _, r in parts]))), "n_test": len(ref),
            "selection": f"cv{k}", PREDICTIONS_KEY: (ref, est),
        })
    return rows

"""The zero-shot keyprofile probe equals the classical key-profile estimator and needs no training."""

from __future__ import annotations

import numpy as np
import pytest

from musicrep.estimators import KEY_PROFILES, key_from_chroma
from musicrep.probe import PROBES, ProbeData, ProbeSetup, evaluate_probe, fit_probe
from musicrep.theory import KEYS


def chroma_in_key(key: int, rng: np.random.Generator, noise: float = 0.3) -> np.ndarray:
    major, minor = KEY_PROFILES["krumhansl"]
    prof = np.asarray(major if key < 12 else minor)
    return np.roll(prof, key % 12) * rng.uniform(0.5, 2.0) + noise * rng.random(12)


def test_keyprofile_matches_numpy_estimator_and_ignores_training() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 24, 200)
    X = np.stack([chroma_in_key(k, rng, noise=2.0) for k in y])[:, None, :]  # noisy: some errors
    shuffled = rng.permutation(y[:50])  # training labels are ignored by a zero-shot rule
    fp = fit_probe(ProbeData.of("key", X[:50], shuffled, X[50:100], y[50:100], layer_dims=[12], vocabulary=KEYS),
                   ProbeSetup(probe="keyprofile", grid="faster"))
    pred = fp.predict_labels(X[100:])
    ref = [key_from_chroma(x[0], "krumhansl") for x in X[100:]]
    assert list(pred) == ref
    assert 0.3 < np.mean([p == KEYS[t] for p, t in zip(pred, y[100:])]) < 1.0


def test_keyprofile_rows_have_mirex_with_ci() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 24, 120)
    X = np.stack([chroma_in_key(k, rng) for k in y])[:, None, :]
    data = ProbeData.of("key", X[:40], y[:40], X[40:80], y[40:80], X[80:], y[80:], layer_dims=[12], vocabulary=KEYS)
    rows = evaluate_probe(data, ProbeSetup(probe="keyprofile", n_bootstrap=200))
    mirex = [r for r in rows if r["metric"] == "mirex"][0]
    assert mirex["value"] >= 0.95 and mirex["ci_low"] <= mirex["value"] <= mirex["ci_high"]


def test_keyprofile_applies_to_key_tasks_only() -> None:
    assert PROBES["keyprofile"].applies_to("key") and not PROBES["keyprofile"].applies_to("multiclass")
    with pytest.raises(ValueError, match="scores keys"):
        fit_probe(ProbeData.of("multiclass", np.ones((4, 1, 12)), np.array([0, 1, 0, 1])),
                  ProbeSetup(probe="keyprofile", n_folds=2))

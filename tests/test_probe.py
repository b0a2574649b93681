"""Probes: learn separable toy tasks, find the informative layer, never peek at test statistics,
are reproducible per seed, work without a validation split, and score every task kind end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrep import metrics as M
from musicrep.kinds import KINDS
from musicrep.probe import GRIDS, PROBES, ProbeConfig, ProbeData, ProbeGrid, ProbeSetup, evaluate_probe, fit_probe
from musicrep.probe.stacked import train_stacked
from musicrep.theory import KEYS

torch.set_num_threads(1)

TINY = ProbeGrid(lr=[1e-2], steps=[150], weight_decay=[0.0], dropout=[0.0], hidden=[(32,)], k=[5],
                 batch_size=128, patience=4)


def fit(kind, Xtr, ytr, Xva=None, yva=None, *, groups=None, layer_dims=None, vocabulary=None, **setup):
    """fit_probe on arrays: the data and the setup grouped as the probe API takes them."""
    data = ProbeData.of(kind, Xtr, ytr, Xva, yva, groups=groups, layer_dims=layer_dims, vocabulary=vocabulary)
    return fit_probe(data, ProbeSetup(**setup))


def evaluate(kind, Xtr, ytr, Xva, yva, Xte, yte, *, seeds=(0,), groups_train=None, layer_dims=None,
             vocabulary=None, metrics=None, **setup):
    """evaluate_probe on arrays, once per seed (rows of all seeds, as results.csv holds them)."""
    data = ProbeData.of(kind, Xtr, ytr, Xva, yva, Xte, yte, groups=groups_train, layer_dims=layer_dims,
                        vocabulary=vocabulary, metrics=metrics)
    return [r for s in seeds for r in evaluate_probe(data, ProbeSetup(seed=s, **setup))]


def blobs(n=240, classes=4, layers=1, informative=0, dim=12, sep=4.0, seed=0):
    """Gaussian class clusters in layer ``informative``; every other layer is pure noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.normal(size=(n, layers, dim)).astype(np.float32)
    centers = rng.normal(size=(classes, dim)) * sep / np.sqrt(dim)
    X[:, informative] += centers[y].astype(np.float32)
    return X, y


def split(X, y, a=0.5, b=0.75):
    i, j = int(a * len(y)), int(b * len(y))
    return (X[:i], y[:i]), (X[i:j], y[i:j]), (X[j:], y[j:])


@pytest.mark.parametrize("probe", ["linear", "mlp", "knn", "centroid"])
def test_separable_toy_set(probe):
    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(*blobs())
    fp = fit("multiclass", Xtr, ytr, Xva, yva, probe=probe, grid="faster", layer=0)
    assert (fp.predict(Xte) == yte).mean() >= 0.95
    assert fp.predict_scores(Xte).shape == (len(yte), 4)


def test_registry_and_grids():
    assert set(PROBES) == {"linear", "mlp", "knn", "knn-index", "centroid", "keyprofile", "tempo"}
    assert set(GRIDS) == {"faster", "fast", "default"}
    sizes = {name: len(PROBES["mlp"].configs(g)) for name, g in GRIDS.items()}
    assert sizes["faster"] < sizes["fast"] < sizes["default"]
    assert all(c.hidden == () for c in PROBES["linear"].configs(GRIDS["default"]))
    with pytest.raises(ValueError, match="lrr"):
        ProbeGrid(**GRIDS["fast"].model_dump(), lrr=[1.0])
    with pytest.raises(KeyError, match="known"):
        fit("multiclass", *blobs(20)[:2], probe="svm")


def test_learned_layer_weights_pick_the_informative_layer():
    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(*blobs(n=320, layers=4, informative=2, sep=3.0))
    fp = fit("multiclass", Xtr, ytr, Xva, yva, probe="linear", grid="faster", layer="weighted")
    w = fp.layer_weights
    assert w.shape == (4,) and w.sum() == pytest.approx(1.0, abs=1e-5)
    assert int(np.argmax(w)) == 2 and w[2] > 0.4
    assert (fp.predict(Xte) == yte).mean() >= 0.9
    scan = fit("multiclass", Xtr, ytr, Xva, yva, probe="centroid", layer="all")
    assert scan.layer == 2 and set(scan.scan) == {0, 1, 2, 3}
    assert scan.scan[2].valid_score > max(scan.scan[i].valid_score for i in (0, 1, 3))


def test_layer_scan_rows_one_per_layer():
    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(*blobs(n=200, layers=3, informative=1))
    rows = evaluate("multiclass", Xtr, ytr, Xva, yva, Xte, yte, probe="linear", grid=TINY, layer="all",
                          n_bootstrap=100)
    assert sorted(r["layer"] for r in rows) == [0, 1, 2]
    by_layer = {r["layer"]: r["value"] for r in rows}
    assert by_layer[1] >= 0.9 and by_layer[1] > by_layer[0] and by_layer[1] > by_layer[2]


@pytest.mark.parametrize("probe", ["linear", "centroid"])
def test_standardisation_uses_train_statistics_only(probe):
    # One feature: class 0 around -1, class 1 around +1 in train. The test items are all class 1 at
    # +0.6 ± 0.05: with train statistics they sit on the class-1 side; z-scored with their own
    # statistics they would straddle 0 and about half would flip.
    rng = np.random.default_rng(0)
    ytr = np.repeat([0, 1], 50)
    Xtr = (2.0 * ytr - 1 + rng.normal(0, 0.2, 100)).astype(np.float32)[:, None]
    Xte = (0.6 + rng.normal(0, 0.05, 40)).astype(np.float32)[:, None]
    fp = fit("multiclass", Xtr, ytr, Xtr, ytr, probe=probe, grid=TINY, layer=0)
    np.testing.assert_allclose(fp.standardizer.mean[0], Xtr.mean(0), rtol=1e-5)
    np.testing.assert_allclose(fp.standardizer.scale[0], Xtr.std(0), rtol=1e-5)
    assert (fp.predict(Xte) == 1).all()
    one_by_one = np.concatenate([fp.predict_scores(Xte[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, fp.predict_scores(Xte[:5]), rtol=1e-5, atol=1e-6)


def test_padding_beyond_layer_dims_is_ignored():
    X, y = blobs(n=200, layers=2, informative=0, dim=8)
    X[:, 1, 5:] = 0.0  # layer 1 is 5 wide
    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(X, y)
    fp = fit("multiclass", Xtr, ytr, Xva, yva, probe="linear", grid=TINY, layer=1, layer_dims=[8, 5])
    junk = Xte.copy()
    junk[:, 1, 5:] = 1e3
    np.testing.assert_allclose(fp.predict_scores(junk), fp.predict_scores(Xte), atol=1e-6)


def test_same_seed_same_predictions():
    (Xtr, ytr), (Xva, yva), (Xte, _) = split(*blobs(n=200, sep=2.0))
    grid = ProbeGrid(lr=[3e-3], steps=[80], weight_decay=[1e-3], dropout=[0.5], hidden=[(16,)], k=[3])
    a = fit("multiclass", Xtr, ytr, Xva, yva, probe="mlp", grid=grid, layer=0, seed=7)
    b = fit("multiclass", Xtr, ytr, Xva, yva, probe="mlp", grid=grid, layer=0, seed=7)
    c = fit("multiclass", Xtr, ytr, Xva, yva, probe="mlp", grid=grid, layer=0, seed=8)
    np.testing.assert_array_equal(a.predict_scores(Xte), b.predict_scores(Xte))
    assert not np.array_equal(a.predict_scores(Xte), c.predict_scores(Xte))


def test_a_config_in_a_stack_trains_as_if_alone():
    X, y = blobs(n=200, sep=2.0)
    x, yt = torch.from_numpy(X.transpose(1, 0, 2).copy()), torch.from_numpy(y)
    target = ProbeConfig(lr=3e-3, steps=60, weight_decay=1e-3, hidden=(16,))
    others = [ProbeConfig(lr=1e-2, steps=60, hidden=(16,)), ProbeConfig(lr=1e-4, steps=90, hidden=(16,))]
    kw = dict(out_dim=4, mode="select", batch_size=64, seed=0)
    alone, _ = train_stacked(KINDS["multiclass"], x, yt, [target], **kw)
    stacked, _ = train_stacked(KINDS["multiclass"], x, yt, [others[0], target, others[1]], **kw)
    np.testing.assert_allclose(stacked.take(0, 1).predict(x).numpy(), alone.predict(x).numpy(), atol=1e-4)


def test_kfold_without_validation_split():
    (Xtr, ytr), _, (Xte, yte) = split(*blobs(n=240), a=0.6, b=0.6)
    for probe in ("linear", "knn"):
        fp = fit("multiclass", Xtr, ytr, probe=probe, grid="faster", layer=0, n_folds=3)
        assert (fp.predict(Xte) == yte).mean() >= 0.95
        assert np.isfinite(fp.valid_score) and fp.valid_score >= 0.9  # mean accuracy over the folds
    with pytest.raises(ValueError, match="both"):
        fit("multiclass", Xtr, ytr, Xtr, None)


def test_kfold_keeps_groups_together():
    """40 works × 5 near-duplicate excerpts, labels random per work: nothing generalises across works, so an
    honest k-fold score is near chance (0.5). Without groups a work's twins sit in both folds and 1-NN
    scores ~1.0; with groups no work is split across folds."""
    rng = np.random.default_rng(0)
    n_groups, per = 40, 5
    groups = np.repeat(np.arange(n_groups), per)
    y = np.repeat(rng.integers(0, 2, n_groups), per)
    X = (rng.normal(size=(n_groups, 1, 16))[groups] + 0.01 * rng.normal(size=(n_groups * per, 1, 16))).astype(np.float32)
    grid = ProbeGrid(lr=[1e-2], steps=[50], weight_decay=[0.0], dropout=[0.0], hidden=[(8,)], k=[1])
    leaky = fit("multiclass", X, y, probe="knn", grid=grid, layer=0, n_folds=5)
    honest = fit("multiclass", X, y, probe="knn", grid=grid, layer=0, n_folds=5, groups=groups)
    assert leaky.valid_score > 0.95
    assert abs(honest.valid_score - 0.5) < 0.25
    from musicrep.probe.fit import kfold_splits
    for tr, va in kfold_splits(KINDS["multiclass"], y, 5, 0, groups):
        assert not set(groups[tr]) & set(groups[va])
    assert len(kfold_splits(KINDS["multiclass"], y[:15], 5, 0, groups[:15])) == 3  # only 3 groups → 3 folds
    rows = evaluate("multiclass", X, y, None, None, X[:20], y[:20], probe="knn", grid=grid, layer=0,
                          n_bootstrap=10, groups_train=groups)
    assert rows[0]["valid_value"] == pytest.approx(honest.valid_score)
    with pytest.raises(ValueError, match="one group id per training item"):
        fit("multiclass", X, y, probe="knn", grid=grid, layer=0, groups=groups[:-1])


def test_centroid_declares_class_kinds_only():
    assert not PROBES["centroid"].applies_to("regression")
    assert all(PROBES["centroid"].applies_to(k) for k in ("multiclass", "multilabel", "key", "pitch"))


def test_multilabel_end_to_end():
    rng = np.random.default_rng(1)
    n, labels, dim = 240, 5, 16
    Y = (rng.random((n, labels)) < 0.35).astype(np.float32)
    X = (Y @ rng.normal(size=(labels, dim)) * 2 + rng.normal(size=(n, dim))).astype(np.float32)[:, None]
    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(X, Y)
    for probe in ("mlp", "knn", "centroid"):
        rows = evaluate("multilabel", Xtr, ytr, Xva, yva, Xte, yte, probe=probe, grid="faster", layer=0,
                              n_bootstrap=100)
        assert [r["metric"] for r in rows] == ["map", "roc_auc"]
        for r in rows:
            assert r["value"] > 0.85, (probe, r)
            assert r["ci_low"] <= r["value"] <= r["ci_high"]
            assert {"probe", "layer", "seed", "best_config", "valid_value"} <= set(r)


def test_regression_end_to_end_on_any_target_scale():
    rng = np.random.default_rng(2)
    n, dim = 240, 8
    X = rng.normal(size=(n, 2, dim)).astype(np.float32)
    w = rng.normal(size=(dim, 2))
    Y = (X[:, 1] @ w * 300 + 5000 + rng.normal(0, 20, (n, 2))).astype(np.float32)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(X, Y)
    fp = fit("regression", Xtr, ytr, Xva, yva, probe="linear", grid="faster", layer="all")
    assert fp.layer == 1
    assert M.r2(yte, fp.predict(Xte)) > 0.95
    rows = evaluate("regression", Xtr, ytr[:, 0], Xva, yva[:, 0], Xte, yte[:, 0], probe="mlp",
                          grid="faster", layer=1, n_bootstrap=100)
    assert rows[0]["metric"] == "r2" and rows[0]["value"] > 0.9
    with pytest.raises(ValueError, match="centroid"):
        fit("regression", Xtr, ytr, Xva, yva, probe="centroid", layer=1)


def test_key_end_to_end_scores_key_strings_with_mirex():
    X, y = blobs(n=480, classes=24, dim=32, sep=8.0, seed=3)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(X, y)
    fp = fit("key", Xtr, ytr, Xva, yva, probe="linear", grid="faster", layer=0)
    labels = fp.predict_labels(Xte)
    assert all(lab in KEYS for lab in labels)
    rows = evaluate("key", Xtr, ytr, Xva, yva, Xte, yte, probe="linear", grid="faster", layer=0,
                          n_bootstrap=100)
    got = {r["metric"]: r["value"] for r in rows}
    assert got["mirex"] == pytest.approx(M.mirex(np.array(KEYS)[yte], labels))
    assert got["mirex"] >= got["accuracy"] >= 0.8


def test_pitch_end_to_end_uses_the_midi_vocabulary():
    vocab = list(range(48, 72))  # class id i is MIDI 48 + i
    X, y = blobs(n=480, classes=24, dim=32, sep=8.0, seed=4)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = split(X, y)
    fp = fit("pitch", Xtr, ytr, Xva, yva, probe="centroid", layer=0, vocabulary=vocab)
    midi = fp.predict_labels(Xte)
    assert midi.min() >= 48 and midi.max() < 72
    rows = evaluate("pitch", Xtr, ytr, Xva, yva, Xte, yte, probe="centroid", layer=0, vocabulary=vocab,
                          seeds=(0, 1), n_bootstrap=100)
    assert [(r["seed"], r["metric"]) for r in rows] == [(0, "pitch_accuracy"), (0, "chroma_accuracy"),
                                                         (1, "pitch_accuracy"), (1, "chroma_accuracy")]
    got = {r["metric"]: r["value"] for r in rows}
    assert got["pitch_accuracy"] == pytest.approx(M.pitch_accuracy(np.array(vocab)[yte], midi))
    assert got["chroma_accuracy"] >= got["pitch_accuracy"] >= 0.8


def test_bad_input_names_the_problem():
    X, y = blobs(n=40)
    with pytest.raises(ValueError, match="y_train"):
        fit("multiclass", X, y.astype(float) + 0.5)
    with pytest.raises(ValueError, match="layer"):
        fit("multiclass", X, y, X, y, layer=5)
    with pytest.raises(ValueError, match="weighted"):
        fit("multiclass", X, y, X, y, probe="knn", layer="weighted")
    with pytest.raises(KeyError, match="known"):
        fit("ranking", X, y)


def test_warmup_cosine_schedule():
    from musicrep.probe.stacked import _schedule

    f = _schedule(12, torch.tensor([[10.0]]), torch.tensor([[2.0]])).flatten()
    # warm-up 1/2, 2/2; cosine from step 2 to 0 at step 10 (midpoint step 6 → 0.5); frozen after
    np.testing.assert_allclose(f[:3], [0.5, 1.0, 1.0], atol=1e-6)
    assert f[6] == pytest.approx(0.5, abs=1e-6)
    assert f[10] == 0 and f[11] == 0 and (np.diff(f[2:11].numpy()) < 0).all()


def test_stacked_training_matches_torch_adam_with_l2_and_warmup_cosine():
    # Full-batch linear probe, no validation: the stacked trainer must follow torch.optim.Adam
    # (weight_decay = L2 on weights only) under the warm-up + cosine schedule, step for step.
    from musicrep.probe.stacked import Stacked, _schedule

    X, y = blobs(n=64, dim=6, sep=2.0)
    x, yt = torch.from_numpy(X.transpose(1, 0, 2).copy()), torch.from_numpy(y)
    cfg = ProbeConfig(lr=0.05, steps=30, weight_decay=0.1)
    got, _ = train_stacked(KINDS["multiclass"], x, yt, [cfg], out_dim=4, mode="select", batch_size=64,
                           warmup=0.2, seed=0)
    init = Stacked.init(1, [cfg], 6, 4, "select", 1, seed=0)
    W = init.params["W0"][0, :, 0, :].clone().requires_grad_(True)
    b = init.params["b0"][0, 0].clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [W], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}], lr=0.05)
    f = _schedule(30, torch.tensor([[30.0]]), torch.tensor([[6.0]])).flatten()
    for t in range(30):
        for g in opt.param_groups:
            g["lr"] = 0.05 * float(f[t])
        opt.zero_grad()
        torch.nn.functional.cross_entropy(x[0] @ W + b, yt).backward()
        opt.step()
    torch.testing.assert_close(got.params["W0"][0, :, 0, :], W.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.params["b0"][0, 0], b.detach(), rtol=1e-4, atol=1e-5)

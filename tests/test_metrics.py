"""Metrics agree with hand-computed values and with scikit-learn / mir_eval; bootstrap CIs behave."""

from __future__ import annotations

import warnings

import mir_eval
import numpy as np
import pytest
from sklearn import metrics as skm

from musicrep import metrics as M
from musicrep.kinds import KINDS
from musicrep.theory import KEYS

# Two label columns, hand-ranked:
#  col 0 scores .9(+) .8(-) .7(+) .1(-): AP = (1/1 + 2/3) / 2 = 5/6; AUC = 3 of 4 pos>neg pairs = 3/4
#  col 1 scores .1(-) .2(+) .9(-) .3(-): AP = 1/3;                 AUC = 1 of 3 pairs = 1/3
Y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
S = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.9], [0.1, 0.3]])


def test_map_hand_computed_and_sklearn():
    assert M.mean_average_precision(Y, S) == pytest.approx((5 / 6 + 1 / 3) / 2)
    assert M.mean_average_precision(Y, S) == pytest.approx(skm.average_precision_score(Y, S, average="macro"))


def test_roc_auc_hand_computed_and_sklearn():
    assert M.roc_auc(Y, S) == pytest.approx((3 / 4 + 1 / 3) / 2)
    assert M.roc_auc(Y, S) == pytest.approx(skm.roc_auc_score(Y, S, average="macro"))


def test_columns_without_positives_are_skipped():
    Y3 = np.c_[Y, np.zeros(4, int)]
    S3 = np.c_[S, [0.5, 0.4, 0.3, 0.2]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skipping must not go through sklearn's warning path
        assert M.mean_average_precision(Y3, S3) == pytest.approx(M.mean_average_precision(Y, S))
        assert M.roc_auc(Y3, S3) == pytest.approx(M.roc_auc(Y, S))
    assert np.isnan(M.mean_average_precision(np.zeros((3, 2)), np.ones((3, 2))))


def test_class_ids_are_one_vs_rest():
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 2, 2, 1, 0, 0, 2])
    p = rng.dirichlet(np.ones(3), size=len(y))
    assert M.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    onehot = np.eye(3)[y]
    assert M.mean_average_precision(y, p) == pytest.approx(skm.average_precision_score(onehot, p, average="macro"))


def test_accuracy_and_r2_hand_computed():
    assert M.accuracy([1, 2, 3, 4], [1, 2, 0, 0]) == 0.5
    assert M.accuracy(["C major", "A minor"], ["C major", "C major"]) == 0.5
    # SS_res = 1, SS_tot = 2
    assert M.r2([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]) == pytest.approx(0.5)
    yt, yp = np.random.default_rng(1).normal(size=(2, 20, 3))
    assert M.r2(yt, yp) == pytest.approx(skm.r2_score(yt, yp))


MIREX_CASES = [
    ("C major", "C major", 1.0),
    ("C major", "G major", 0.5),  # estimate a fifth above
    ("A minor", "E minor", 0.5),
    ("C major", "A minor", 0.3),  # relative minor
    ("A minor", "C major", 0.3),  # relative major
    ("C major", "C minor", 0.2),  # parallel
    ("C major", "F major", 0.0),  # a fifth *below* is not rewarded
    ("C major", "D major", 0.0),
]


@pytest.mark.parametrize("ref,est,score", MIREX_CASES)
def test_mirex_pairs(ref, est, score):
    assert M.mirex([ref], [est]) == pytest.approx(score)
    assert mir_eval.key.weighted_score(ref, est) == pytest.approx(score)


def test_mirex_mean_and_class_ids():
    refs, ests, scores = zip(*MIREX_CASES, strict=True)
    assert M.mirex(refs, ests) == pytest.approx(np.mean(scores))
    ids = {k: i for i, k in enumerate(KEYS)}
    assert M.mirex([ids[r] for r in refs], [ids[e] for e in ests]) == pytest.approx(np.mean(scores))
    assert KEYS[0] == "C major" and KEYS[21] == "A minor" and len(set(KEYS)) == 24
    for k in KEYS:
        mir_eval.key.validate_key(k)


def test_pitch_and_chroma_accuracy_vs_mir_eval():
    ref = np.array([60, 61, 62, 64])
    est = np.array([60, 73, 50, 65])  # exact, octave up, octave down, wrong
    assert M.pitch_accuracy(ref, est) == 0.25
    assert M.chroma_accuracy(ref, est) == 0.75
    voiced = np.ones(len(ref))
    cents_r, cents_e = 100.0 * ref, 100.0 * est
    assert M.pitch_accuracy(ref, est) == pytest.approx(
        mir_eval.melody.raw_pitch_accuracy(voiced, cents_r, voiced, cents_e, cent_tolerance=50))
    assert M.chroma_accuracy(ref, est) == pytest.approx(
        mir_eval.melody.raw_chroma_accuracy(voiced, cents_r, voiced, cents_e, cent_tolerance=50))


def test_registry_and_task_kinds():
    assert set(M.METRICS) == {"map", "roc_auc", "accuracy", "mirex", "r2", "pitch_accuracy", "chroma_accuracy",
                              "tempo_acc1", "tempo_acc2"}
    assert KINDS["multilabel"].metrics == ("map", "roc_auc")
    assert KINDS["key"].metrics == ("mirex", "accuracy")
    assert M.primary_metric("pitch").name == "pitch_accuracy"
    assert M.METRICS["map"].takes == "scores" and M.METRICS["r2"].takes == "values"
    with pytest.raises(KeyError, match="known"):
        M.get_metric("f1")


def _acc_data(n, p=0.7, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    pred = np.where(rng.random(n) < p, y, (y + 1) % 5)
    return y, pred


def test_bootstrap_contains_estimate_and_narrows_with_more_items():
    y, pred = _acc_data(40)
    lo, hi = M.bootstrap_ci("accuracy", y, pred, seed=0)
    assert lo <= M.accuracy(y, pred) <= hi
    y4, pred4 = _acc_data(1000)
    lo4, hi4 = M.bootstrap_ci("accuracy", y4, pred4, seed=0)
    assert lo4 <= M.accuracy(y4, pred4) <= hi4
    assert (hi4 - lo4) < 0.5 * (hi - lo)
    # binomial standard error: the 95 % interval is about ±1.96·sqrt(p(1-p)/n)
    assert (hi4 - lo4) == pytest.approx(2 * 1.96 * np.sqrt(0.7 * 0.3 / 1000), rel=0.2)


def test_vectorised_bootstrap_equals_recomputing_the_metric():
    y, pred = _acc_data(60)
    fast = M.bootstrap_ci("accuracy", y, pred, n=200, seed=3)
    slow = M.bootstrap_ci(lambda a, b: M.accuracy(a, b), y, pred, n=200, seed=3)
    assert fast == pytest.approx(slow)
    keys = np.array(KEYS)[y]
    est = np.array(KEYS)[(pred * 7) % 24]
    assert M.bootstrap_ci("mirex", keys, est, n=200, seed=1) == pytest.approx(
        M.bootstrap_ci(M.mirex, keys, est, n=200, seed=1))
    assert M.bootstrap_ci("accuracy", y, pred, seed=5) == M.bootstrap_ci("accuracy", y, pred, seed=5)


def test_bootstrap_multilabel_with_a_rare_label():
    rng = np.random.default_rng(0)
    y = (rng.random((30, 4)) < 0.4).astype(int)
    y[:, 3] = 0
    y[0, 3] = 1  # one positive: most resamples lose it
    s = y + rng.normal(0, 0.6, y.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = M.bootstrap_ci("map", y, s, n=300, seed=0)
        alo, ahi = M.bootstrap_ci("roc_auc", y, s, n=300, seed=0)
    assert np.isfinite([lo, hi, alo, ahi]).all()
    assert lo <= M.mean_average_precision(y, s) <= hi and alo <= M.roc_auc(y, s) <= ahi


def test_class_id_outside_score_columns_is_a_clear_error():
    with pytest.raises(ValueError, match="score columns"):
        M.mean_average_precision([0, 3], np.ones((2, 3)))


@pytest.mark.parametrize("name", ["map", "roc_auc"])
@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_bootstrap_equals_sklearn_per_resample(name: str, ties: bool) -> None:
    from musicrep.metrics import METRICS

    rng = np.random.default_rng(3)
    y = (rng.random((40, 6)) < 0.25).astype(int)
    y[:, 5] = 0  # a label with no positives at all
    s = rng.random((40, 6)) + 0.5 * y
    if ties:
        s = np.round(s, 1)  # many tied scores: sklearn's step-wise definitions must still agree
    idx = rng.integers(0, 40, size=(60, 40))
    m = METRICS[name]
    fast = m.resampled(y, s, idx)
    slow = np.array([m.fn(y[i], s[i]) for i in idx])
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)


def test_tempo_accuracies_by_hand() -> None:
    ref = np.array([100.0, 100.0, 100.0, 120.0, 90.0])
    est = np.array([103.9, 104.1, 200.0, 40.0, 42.0])  # in 4 %, just out, double, a third, not half (45±1.8)
    assert M.tempo_acc1(ref, est) == pytest.approx(1 / 5)
    assert M.tempo_acc2(ref, est) == pytest.approx(3 / 5)
    lo, hi = M.bootstrap_ci("tempo_acc2", ref, est, n=300)
    assert 0.0 <= lo <= 0.6 <= hi <= 1.0


def test_paired_bootstrap_equals_a_hand_computed_paired_resampling() -> None:
    """Same item draws for both systems: recompute every resample's accuracy difference by hand (numpy)."""
    rng = np.random.default_rng(7)
    n_items, draws = 50, 400
    y = rng.integers(0, 4, n_items)
    a = np.where(rng.random(n_items) < 0.8, y, (y + 1) % 4)
    b = np.where(rng.random(n_items) < 0.6, y, (y + 2) % 4)
    got = M.paired_bootstrap("accuracy", y, a, b, n=draws, seed=11)
    idx = np.random.default_rng(11).integers(0, n_items, size=(draws, n_items))  # the documented draw
    diffs = [np.mean(a[i] == y[i]) - np.mean(b[i] == y[i]) for i in idx]
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    assert got.difference == pytest.approx(np.mean(a == y) - np.mean(b == y))
    assert (got.low, got.high) == pytest.approx((lo, hi))
    assert got.n_items == n_items and got.n_resamples == draws


def test_paired_bootstrap_map_equals_sklearn_per_draw() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random((40, 5)) < 0.3).astype(int)
    sa, sb = rng.random((40, 5)) + 0.8 * y, rng.random((40, 5)) + 0.3 * y
    got = M.paired_bootstrap("map", y, sa, sb, n=150, seed=4)
    idx = np.random.default_rng(4).integers(0, 40, size=(150, 40))

    def ap(t, s):  # sklearn, label columns without a positive skipped (as the metric documents)
        keep = t.sum(0) > 0
        return skm.average_precision_score(t[:, keep], s[:, keep], average="macro")

    diffs = np.array([ap(y[i], sa[i]) - ap(y[i], sb[i]) for i in idx])
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))


def test_paired_bootstrap_is_narrower_than_unpaired_cis_and_says_tied() -> None:
    """Two systems that differ on 8 of 400 items: their own CIs overlap, the paired CI excludes 0 (b never
    beats a); identical systems are tied with a zero-width interval."""
    y = np.zeros(400, int)
    a = y.copy()
    b = y.copy()
    b[:8] = 1  # b is wrong on 8 items, a on none besides the ones below
    a[100:150] = 1
    b[100:150] = 1  # both wrong on 50 more items: shared difficulty cancels in the difference
    ca, cb = M.bootstrap_ci("accuracy", y, a, seed=0), M.bootstrap_ci("accuracy", y, b, seed=0)
    assert ca[0] < cb[1]  # unpaired intervals overlap
    d = M.paired_bootstrap("accuracy", y, a, b, seed=0)
    assert d.difference == pytest.approx(8 / 400) and d.low > 0 and not d.tied
    same = M.paired_bootstrap("accuracy", y, a, a, seed=0)
    assert same.tied and same.low == same.high == 0.0
    with pytest.raises(ValueError, match="same items"):
        M.paired_bootstrap("accuracy", y, a, b[:-1])

"""Probe hyper-parameter search: musicrep's stacked torch search vs scikit-learn ``MLPClassifier``.

Same embeddings, same grid (hidden sizes, learning rates, L2 alphas, max_iter epochs), same selection
rule (best validation accuracy), both on the same threads (``OMP_NUM_THREADS``, default 1: sklearn's
BLAS and torch both read it); prints both wall times, both test accuracies and
``ratio=<sklearn_time / our_time>``. Target (issue 5): ratio ≥ 10 at equal or better test accuracy.

Why the mapping below: sklearn's ``alpha`` penalises ``0.5·alpha·‖W‖² / batch`` on a batch-mean loss,
i.e. a gradient term ``alpha / batch · W``; ours adds ``weight_decay · W`` to the batch-mean loss
gradient, so ``weight_decay = alpha / batch``. ``max_iter`` counts epochs in sklearn, so our step
budget is ``max_iter × batches per epoch``; early stopping on validation may use fewer.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probe.py [--n 600] [--dim 512] [--classes 10]
[--hidden 128,256]`` (``--n`` training items; validation n/2 and test 2n are drawn alongside).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from musicrep.probe import ProbeData, ProbeGrid, ProbeSetup, fit_probe


def data(n: int, dim: int, classes: int, seed: int):
    """Embedding-like features: a few informative directions in a wide, noisy space (like a probe sees).

    ``n`` training items; validation (n/2) and test (2n) come from the same distribution and are larger
    than usual so that "equal or better score" is not decided by a handful of test items.
    """
    n_valid, n_test = n // 2, 2 * n
    X, y = make_classification(n_samples=n + n_valid + n_test, n_features=dim, n_informative=32,
                               n_redundant=32, n_classes=classes, n_clusters_per_class=2, class_sep=2.5,
                               flip_y=0.02, random_state=seed)
    X = X.astype(np.float32)
    a, b = n, n + n_valid
    return (X[:a], y[:a]), (X[a:b], y[a:b]), (X[b:], y[b:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", default="128,256", help="comma-separated one-layer hidden widths")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    hidden = [(int(h),) for h in args.hidden.split(",")]
    lrs = [1e-3, 3e-3, 1e-2]
    alphas = [1e-4, 1e-2, 1.0]
    max_iter = 200
    batch = 200

    (Xtr, ytr), (Xva, yva), (Xte, yte) = data(args.n, args.dim, args.classes, args.seed)
    print(f"data: train {Xtr.shape}, valid {len(yva)}, test {len(yte)}, {args.classes} classes; "
          f"grid: {len(hidden) * len(lrs) * len(alphas)} configs "
          f"(hidden {hidden}, lr {lrs}, alpha {alphas}, max_iter {max_iter}, batch {batch})")

    # scikit-learn: one MLPClassifier per config, standardised on train, selected on validation.
    t0 = time.perf_counter()
    sc = StandardScaler().fit(Xtr)
    best = (-1.0, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for h, lr, al in itertools.product(hidden, lrs, alphas):
            clf = MLPClassifier(hidden_layer_sizes=h, learning_rate_init=lr, alpha=al, max_iter=max_iter,
                                batch_size=batch, random_state=args.seed)
            clf.fit(sc.transform(Xtr), ytr)
            acc = clf.score(sc.transform(Xva), yva)
            if acc > best[0]:
                best = (acc, clf)
    sk_test = best[1].score(sc.transform(Xte), yte)
    sk_time = time.perf_counter() - t0
    print(f"sklearn            : {sk_time:7.2f} s  valid={best[0]:.3f}  test={sk_test:.3f}  best={best[1].get_params()['hidden_layer_sizes']}"
          f" lr={best[1].learning_rate_init} alpha={best[1].alpha}")

    # musicrep: the same grid, all configs of one architecture trained as one stacked model; configs
    # retire on validation early stopping, and (second run) successive halving prunes laggards.
    # Validate every 2 epochs; patience 5 checks = 10 epochs, sklearn's ``n_iter_no_change``.
    epoch = math.ceil(len(ytr) / batch)
    steps = max_iter * epoch
    results = {}
    for label, eta in (("exhaustive", 0), ("halving", 3)):
        grid = ProbeGrid(lr=lrs, steps=[steps], weight_decay=[a / batch for a in alphas], dropout=[0.0],
                         hidden=hidden, k=[5], batch_size=batch, warmup=0.05, eval_every=2 * epoch,
                         patience=5, halving=eta, rungs=3)
        t0 = time.perf_counter()
        fp = fit_probe(ProbeData.of("multiclass", Xtr, ytr, Xva, yva),
                       ProbeSetup(probe="mlp", grid=grid, layer=0, seed=args.seed))
        test = float((fp.predict(Xte) == yte).mean())
        dt = time.perf_counter() - t0
        c = fp.best_config
        results[label] = (dt, test)
        print(f"musicrep {label:<10}: {dt:7.2f} s  valid={fp.valid_score:.3f}  test={test:.3f}  best={c['hidden']}"
              f" lr={c['lr']} wd={c['weight_decay']:.2g}  ratio={sk_time / dt:.1f}")
    dt, test = results["halving"]
    print(f"ratio={sk_time / dt:.1f}  test_delta={test - sk_test:+.3f}  "
          f"(exhaustive: ratio={sk_time / results['exhaustive'][0]:.1f} "
          f"test_delta={results['exhaustive'][1] - sk_test:+.3f})")


if __name__ == "__main__":
    main()

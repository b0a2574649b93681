"""Similarity search: recall@10 and query speed of the approximate indexes against exact search.

Synthetic clustered vectors (Gaussian clusters of ~500 items around N(0, 1) centres, D=128 by default; the
queries are fresh draws from the same mixture, not indexed items). For each size and each approximate kind
(:class:`musicrep.search.Index`, depth calibrated at build to recall ≥ 0.95 on its own vectors) it prints
build time, the search depth chosen, recall@10 against the exact index's answers, queries per second of
both measured in the same run (batches of ``--queries``, best of 3), their ratio, and each index's size in
bytes. The issue's target is checked at the largest size: recall ≥ 0.95 at ≥ 10× the exact speed.

    python benchmarks/search.py                      # 10k and 100k (a couple of minutes on 2 cores)
    python benchmarks/search.py --sizes 10000,100000,1000000 --kinds ivf   # the 1M target
    python benchmarks/search.py --quick              # 10k only, for a smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402

from musicrep.search.index import Index, recall_at  # noqa: E402

TARGET_RECALL, TARGET_SPEEDUP, K = 0.95, 10.0, 10


def clustered(n: int, d: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """``[n, d]`` float32 draws from the mixture: a uniformly chosen centre plus N(0, 0.5²) noise per dimension."""
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):  # in blocks: 1M × 128 float64 noise would be 1 GB
        m = min(100_000, n - s)
        c = rng.integers(0, len(centres), m)
        out[s:s + m] = centres[c] + 0.5 * rng.standard_normal((m, d), dtype=np.float32)
    return out


def qps(index: Index, q: np.ndarray, repeat: int = 3) -> tuple[float, np.ndarray]:
    """Best-of-``repeat`` queries per second for the batch ``q``, and the ids found."""
    best, ids = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        _, ids = index.search(q, K)
        best = min(best, time.perf_counter() - t)
    assert ids is not None
    return len(q) / best, ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated index sizes (e.g. 10000,100000,1000000)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--kinds", default="ivf,hnsw", help="approximate kinds to measure (ivf, hnsw)")
    ap.add_argument("--threads", type=int, default=2, help="faiss (OpenMP) threads")
    ap.add_argument("--quick", action="store_true", help="10k only")
    args = ap.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.threads)
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    print(f"faiss {faiss.__version__}, {args.threads} threads, D={args.dim}, {args.queries} queries, recall@{K}")
    print(f"{'N':>8} {'kind':<5} {'build_s':>8} {'depth':>14} {'recall@10':>9} {'qps':>9} {'speedup':>8} "
          f"{'bytes':>12}")
    verdict = []
    for n in sizes:
        rng = np.random.default_rng(n)
        centres = rng.standard_normal((max(16, n // 500), args.dim), dtype=np.float32)
        x = clustered(n, args.dim, rng, centres)
        q = clustered(args.queries, args.dim, rng, centres)
        t = time.perf_counter()
        exact = Index.build(x, kind="flat")
        build = time.perf_counter() - t
        exact_qps, truth = qps(exact, q)
        print(f"{n:>8} {'flat':<5} {build:>8.2f} {'exact':>14} {1.0:>9.4f} {exact_qps:>9.0f} {1.0:>8.1f} "
              f"{exact.nbytes:>12}", flush=True)
        del exact
        for kind in kinds:
            t = time.perf_counter()
            approx = Index.build(x, kind=kind)
            build = time.perf_counter() - t
            aq, found = qps(approx, q)
            rec = recall_at(found, truth)
            depth = ", ".join(f"{k}={v}" for k, v in approx.params.items() if k in ("nlist", "nprobe", "M", "efSearch"))
            print(f"{n:>8} {kind:<5} {build:>8.2f} {depth:>14} {rec:>9.4f} {aq:>9.0f} {aq / exact_qps:>8.1f} "
                  f"{approx.nbytes:>12}", flush=True)
            if n == max(sizes):
                verdict.append((kind, rec, aq / exact_qps))
            del approx
    n = max(sizes)
    for kind, rec, speed in verdict:
        ok = rec >= TARGET_RECALL and speed >= TARGET_SPEEDUP
        print(f"target at N={n} ({kind}): recall {rec:.3f} (≥ {TARGET_RECALL}) at {speed:.1f}× exact "
              f"(≥ {TARGET_SPEEDUP:g}×): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()

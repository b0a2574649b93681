"""Embedding throughput of every representation: audio seconds embedded per wall-clock second.

For each registered representation that builds without extra files (``--size`` for encoders, small by
default), embeds batches of 3 s windows of synthetic music-like audio with ``--threads`` torch threads
(2 by default, this machine's core count) and prints parameters, layers, frame rate, throughput and its
ratio to the log-mel front-end alone, timed in alternating rounds in the same run (so the ratio, not the absolute number,
is what carries over between machines).

    python benchmarks/encoders.py [--size small] [--threads 2] [--seconds 30] [--reps vgg,mfcc]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import musicrep.models as M
from musicrep.frontends import LogMel

SR = 16_000


def audio(n_windows: int, seconds: float = 3.0, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    out = np.empty((n_windows, len(t)), dtype=np.float32)
    for i in range(n_windows):
        f0 = rng.uniform(100, 500)
        y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) + 0.1 * rng.standard_normal(len(t))
        out[i] = 0.3 * y / np.abs(y).max()
    return torch.from_numpy(out)


def throughput(fn, x: torch.Tensor, min_seconds: float) -> float:
    """Audio seconds per second for ``fn(x)``, repeated until ``min_seconds`` of wall time has passed."""
    done, t0 = 0, time.perf_counter()
    while True:
        fn(x)
        done += 1
        el = time.perf_counter() - t0
        if el >= min_seconds:
            return done * x.shape[0] * x.shape[1] / SR / el


def paired(fn, ref_fn, x: torch.Tensor, seconds: float, rounds: int = 3) -> tuple[float, float]:
    """Median throughput of ``fn`` and of ``ref_fn``, measured in alternating rounds.

    Why alternate: on a shared machine the load drifts over a run; timing the reference right next to
    each representation keeps the ratio meaningful even when absolute numbers move.
    """
    fn(x[:1])  # warm-up (lazy init, allocator)
    a, b = [], []
    for _ in range(rounds):
        b.append(throughput(ref_fn, x, seconds / rounds))
        a.append(throughput(fn, x, seconds / rounds))
    return float(np.median(a)), float(np.median(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="3 s windows per forward pass")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum wall time per representation")
    ap.add_argument("--reps", default="", help="comma-separated names (default: every buildable one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = audio(args.batch)
    mel = LogMel()
    table = Table("name", "family", "params", "layers", "frame rate (Hz)", "audio s / s", "log-mel s / s",
                  "vs log-mel", title=f"embedding throughput, size={args.size}, {args.threads} threads, "
                  f"batch {args.batch}×3 s (reference: the log-mel front-end alone, timed alternately)")
    wanted = [n for n in args.reps.split(",") if n] or None
    for e in M.entries():
        if wanted is not None and e.name not in wanted:
            continue
        ok, why = e.available()
        if not ok:
            table.add_row(e.name, e.family, "–", "–", "–", f"unavailable: {why}", "–", "–")
            continue
        try:
            try:
                rep = e.factory(size=args.size)
            except (TypeError, ValueError):
                rep = e.factory()
        except Exception as exc:  # noqa: BLE001 - e.g. needs local weights
            table.add_row(e.name, e.family, "–", "–", "–", f"needs: {str(exc).splitlines()[0][:60]}", "–", "–")
            continue
        if hasattr(rep, "eval"):
            rep.eval()
        with torch.inference_mode():
            tp, ref = paired(rep.embed, mel, x, args.seconds)
        table.add_row(e.name, e.family, f"{rep.n_params:,}", str(rep.n_layers), f"{rep.frame_rate:g}",
                      f"{tp:,.1f}", f"{ref:,.1f}", f"{tp / ref:.3f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()

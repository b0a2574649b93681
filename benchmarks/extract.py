"""Benchmark: the sharded store (`musicrep.embed.extract`) vs naive per-file loops, and its peak memory.

Generates a catalog of 5-minute music-like WAV files, then embeds it three ways, and times the encoder
alone, with the same representation (default: the small VGG random twin) and window (3 s, 2 s hop):

* ``naive-file``: for each file: load it whole, cut windows, compute the mel and run the encoder on all
  the file's windows in one forward pass, average, ``np.save`` one .npy per file — the per-file loop
  issue 5 names (load, mel, forward, save one .npy per file);
* ``naive-window``: the same, but one window per forward pass — a stricter baseline (small batches keep
  the activations in cache, so on a small CNN it beats the whole-file batch);
* ``store``: ``extract()`` — streamed decoding, fixed-size batches across files, atomic shards;
* ``forward-only``: the encoder alone on pre-cut windows, as the store runs it — the floor any
  extractor pays, so ``naive-window / forward-only`` is the highest ratio reachable with this encoder.

Prints each time, ``ratio=<naive-file time / store time>`` (issue 5's target: ≥ 3), the stricter
``ratio_vs_naive_window`` and its ``ceiling`` (naive-window / forward-only), then
the store's peak resident memory for a 1-hour and a 10-hour catalog, each measured in a fresh subprocess
(``peak_rss_1h=… MB``, ``peak_rss_10h=… MB``): memory is bounded by the batch size, so it must not grow
with the catalog.

Usage: python benchmarks/extract.py [--rep vgg] [--minutes 30] [--skip-memory] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SR = 16_000
FILE_MINUTES = 5.0


def make_catalog(folder: Path, minutes: float, seed: int = 0, file_minutes: float = FILE_MINUTES) -> list[Path]:
    """Write ceil(minutes / file_minutes) files of ``file_minutes`` (PCM16 WAV, 16 kHz)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = int(np.ceil(minutes / file_minutes))
    paths = []
    t = np.arange(int(file_minutes * 60 * SR)) / SR
    for i in range(n):
        p = folder / f"track{i:04d}.wav"
        if not p.exists():
            rng = np.random.default_rng(seed + i)
            f0 = rng.uniform(100, 600)
            y = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.01 * np.sin(2 * np.pi * 0.1 * t)))
            y += 0.02 * rng.standard_normal(len(t))
            sf.write(p, y.astype(np.float32), SR, subtype="PCM_16")
        paths.append(p)
    return paths


def naive(rep, paths: list[Path], out: Path, per_window: bool) -> float:
    from musicrep.audio import load
    from musicrep.embed import cut_windows

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for p in paths:
            y = load(p, rep.sample_rate)
            w = torch.from_numpy(np.stack([x for _, x in cut_windows([y], 3 * rep.sample_rate, 2 * rep.sample_rate)]))
            if per_window:
                emb = torch.cat([rep.embed(w[i : i + 1]).mean(dim=2) for i in range(len(w))])
            else:
                emb = rep.embed(w).mean(dim=2)
            np.save(out / f"{p.stem}.npy", emb.mean(dim=0).numpy())
    return time.perf_counter() - t0


def forward_only(rep, paths: list[Path], batch_size: int = 16) -> float:
    """The encoder alone, as extraction runs it (folded, channels-last, batches of 16 windows), on every
    window of the catalog, with decoding and windowing done beforehand and not timed."""
    from musicrep.audio import load
    from musicrep.embed import cut_windows
    from musicrep.models.base import for_inference

    runner = for_inference(rep)
    sr = rep.sample_rate
    windows = np.stack([w for p in paths for _, w in cut_windows([load(p, sr)], 3 * sr, 2 * sr)])
    batches = [torch.from_numpy(np.ascontiguousarray(windows[s:s + batch_size]))
               for s in range(0, len(windows), batch_size)]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b in batches:
            runner.embed(b).mean(dim=2)
    return time.perf_counter() - t0


def run_store(rep_name: str, rep_cfg: dict, paths: list[Path], store: Path) -> float:
    from musicrep.embed import RepSpec, WindowConfig, extract

    t0 = time.perf_counter()
    extract(RepSpec(name=rep_name, config=rep_cfg), paths, store, WindowConfig(window_seconds=3.0, hop_seconds=2.0),
            progress=False)
    return time.perf_counter() - t0


def _child(args: argparse.Namespace) -> None:
    """Subprocess body for the memory measurement: embed the catalog, print JSON with peak RSS."""
    torch.set_num_threads(args.threads)
    paths = sorted(Path(args.catalog).glob("*.wav"))
    secs = run_store(args.rep, json.loads(args.rep_config), paths, Path(args.store))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": secs, "peak_rss_mb": peak_mb, "files": len(paths)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rep", default="vgg")
    ap.add_argument("--rep-config", default='{"size": "small", "seed": 0}')
    ap.add_argument("--minutes", type=float, default=30.0, help="catalog size for the speed comparison")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--catalog", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    torch.set_num_threads(args.threads)
    from musicrep.models import get

    work = args.work or Path(tempfile.mkdtemp(prefix="musicrep-bench-"))
    cfg = json.loads(args.rep_config)
    rep = get(args.rep, **cfg)
    if isinstance(rep, torch.nn.Module):
        rep.eval()
    paths = make_catalog(work / "catalog", args.minutes)
    audio_s = len(paths) * FILE_MINUTES * 60
    print(f"catalog: {len(paths)} files, {audio_s / 3600:.2f} h; representation {rep.id}; threads={args.threads}")
    # Warm-up, the same for every path: FFT plans, oneDNN kernels for each batch shape, lazy imports.
    # The catalog is short, so one-time costs would otherwise weigh on whichever path runs first.
    warm = make_catalog(work / "warmup", 0.5, seed=999, file_minutes=0.5)
    run_store(args.rep, cfg, warm, work / f"store-warmup-{time.time_ns()}")
    naive(rep, warm, work / "naive-warmup", per_window=False)
    naive(rep, warm, work / "naive-warmup", per_window=True)
    t_store = run_store(args.rep, cfg, paths, work / f"store-{time.time_ns()}")
    t_file = naive(rep, paths, work / "naive-file", per_window=False)
    t_win = naive(rep, paths, work / "naive-window", per_window=True)
    t_fwd = forward_only(rep, paths)
    for name, t in (("naive-window", t_win), ("naive-file", t_file), ("store", t_store), ("forward-only", t_fwd)):
        print(f"{name:13s} {t:8.2f} s  ({audio_s / t:7.0f}x realtime)")
    print(f"ratio={t_file / t_store:.2f}  (naive per-file loop / store)")
    print(f"ratio_vs_naive_window={t_win / t_store:.2f}")
    # No extractor can beat the naive loop by more than this: it still has to run the encoder on every window.
    print(f"ceiling={t_win / t_fwd:.2f}  (naive-window / forward-only: the best ratio any extractor could reach "
          f"with this encoder)")
    if args.skip_memory:
        return
    for hours in (1, 10):
        cat = work / f"catalog-{hours}h"
        make_catalog(cat, hours * 60, seed=100)
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--rep", args.rep, "--rep-config", args.rep_config,
             "--threads", str(args.threads), "--catalog", str(cat),
             "--store", str(work / f"store-mem-{hours}h-{time.time_ns()}")],
            check=True, capture_output=True, text=True,
        )
        m = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"peak_rss_{hours}h={m['peak_rss_mb']:.0f} MB  ({m['files']} files, {m['seconds']:.0f} s, "
              f"{hours * 3600 / m['seconds']:.0f}x realtime)")


if __name__ == "__main__":
    main()

"""Benchmark: ``musicrep compare`` end to end on 200 clips of 30 s in 4 classes, against its 10-minute target.

Synthesises the set with numpy (cheap, deterministic; 22.05 kHz 16-bit FLAC, so every representation decodes
and resamples as it would a user's files), each class a texture with per-clip random pitch, tempo, level
and noise — so the classes are learnable but not trivially:

- ``drone``: a sustained harmonic tone with slow vibrato; ``arpeggio``: triad notes every 120–250 ms;
- ``pulse``: noise bursts on a beat (80–160 BPM) over a faint tone; ``chords``: three-note chords changing
  every 1–2 s.

Then runs :func:`musicrep.compare.compare` with the default set in a fresh run folder and prints its wall
time beside the target (600 s on 2 cores) and a reference measured in the same run: decoding and
resampling every clip once (what any tool must spend at least), so numbers from a busy machine compare.
The load average is printed too: on a shared machine the wall time says as much about the neighbours.

Usage: python benchmarks/compare.py [--clips 200] [--seconds 30] [--out runs/bench-compare] [--rep NAME …]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np

CLASSES = ("drone", "arpeggio", "pulse", "chords")
SR = 22_050
TARGET_S = 600.0


def _tone(f0: np.ndarray | float, t: np.ndarray, harmonics: int = 4) -> np.ndarray:
    """A harmonic tone whose fundamental may change over time (``f0`` per sample, Hz)."""
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(f0, t.shape)) / SR
    return sum(np.sin(h * phase) / h for h in range(1, harmonics + 1))


def _clip(cls: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
    if cls == "drone":
        y = _tone(root * (1 + 0.005 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)), t)
    elif cls == "arpeggio":
        step = rng.uniform(0.12, 0.25)
        notes = np.array([0, 4, 7, 12])[(t // step).astype(int) % 4]
        y = _tone(root * 2 ** (notes / 12), t) * np.exp(-(t % step) * 8)
    elif cls == "pulse":
        beat = 60 / rng.uniform(80, 160)
        y = rng.standard_normal(t.size) * np.exp(-(t % beat) * 30) + 0.1 * _tone(root, t)
    else:  # chords
        span = rng.uniform(1.0, 2.0)
        shift = rng.integers(0, 5, size=int(seconds / span) + 2)[(t // span).astype(int)]
        y = sum(_tone(root * 2 ** ((s + shift) / 12), t, 3) for s in (0, 3, 7))
    y = y / (np.abs(y).max() + 1e-9) * rng.uniform(0.2, 0.6)
    return (y + rng.uniform(0.02, 0.2) * rng.standard_normal(t.size)).clip(-1, 1).astype(np.float32)


def make_set(folder: Path, clips: int, seconds: float) -> list[Path]:
    """``clips`` files in ``folder/<class>/`` (reused when already there)."""
    import soundfile as sf

    paths = []
    for i in range(clips):
        cls = CLASSES[i % len(CLASSES)]
        path = folder / cls / f"{cls}-{i:04d}.flac"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _clip(cls, seconds, np.random.default_rng(i)), SR, subtype="PCM_16")
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-compare"))
    ap.add_argument("--rep", action="append", default=[], help="add a representation to the default set")
    args = ap.parse_args()

    from musicrep.audio import load
    from musicrep.compare import compare

    t0 = time.perf_counter()
    paths = make_set(args.out / "clips", args.clips, args.seconds)
    print(f"set: {len(paths)} clips × {args.seconds:g} s in {len(CLASSES)} classes "
          f"({len(paths) * args.seconds / 60:.0f} min of audio) under {args.out / 'clips'} "
          f"({time.perf_counter() - t0:.0f} s to make or find)", flush=True)
    t0 = time.perf_counter()
    for p in paths:
        load(p, sr=16_000)
    decode = time.perf_counter() - t0
    print(f"reference: decoding + resampling every clip once: {decode:.1f} s", flush=True)

    run = args.out / "run"
    shutil.rmtree(run, ignore_errors=True)  # a fresh run: no reused import, store or results
    load_before = os.getloadavg()
    res = compare(args.out / "clips", run, reps=args.rep, progress=False)
    wall = res.seconds
    load_after = os.getloadavg()
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    reps = sorted(res.results["representation"].unique())
    print(f"\ncompare on {len(paths)} clips: {wall:.0f} s wall ({wall / 60:.1f} min), target {TARGET_S:.0f} s: "
          f"{'within' if wall <= TARGET_S else 'OVER'} ({wall / TARGET_S:.2f}× the target); "
          f"{wall / decode:.0f}× the decode reference; CPU time {cpu:.0f} s; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print(f"representations ({len(reps)}): {', '.join(reps)}; folds: {res.folds}")


if __name__ == "__main__":
    main()

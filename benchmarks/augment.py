"""Throughput of every deformation, in audio seconds per second, on one core.

Prints one line per deformation: ``realtime=`` (audio seconds deformed per wall second, 30 s of 16 kHz
music-like audio, best of 3) and, for the natural effects used in training, whether it meets the
≥ 50× realtime target. Reference measured in the same run: pedalboard's own high-quality
``PitchShift`` and ``time_stretch`` — the ``ratio=`` line says how much faster our pitch/stretch route is.

    python benchmarks/augment.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _timing import best_of  # noqa: E402

from musicrep import augment as A  # noqa: E402

SPECS = ["noise:white@snr=10", "noise:pink@snr=10", "mp3@kbps=64", "ogg@kbps=64", "reverb@room=0.5",
         "pitch@semitones=1", "stretch@rate=1.1", "gain@db=-12", "eq@low_db=6,high_db=-6",
         "compress@threshold_db=-20,ratio=4", "distort@drive_db=20"]
TARGET = 50.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sr = 16_000
    t = np.arange(int(args.seconds * sr)) / sr
    rng = np.random.default_rng(0)
    x = (sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
         + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    worst = np.inf
    for spec in SPECS:
        d = A.parse(spec)
        d(x[: sr], sr)  # warm-up (plugin construction, codec libraries)
        rt = args.seconds / best_of(lambda: d(x, sr, item_id="bench"), 3)
        natural = d.transform.natural
        if natural:
            worst = min(worst, rt)
        flag = ("ok" if rt >= TARGET else "BELOW TARGET") if natural else "not used in training"
        print(f"{spec:<36} realtime={rt:8.0f}  {flag}")
    import pedalboard

    ref_pitch = args.seconds / best_of(lambda: pedalboard.PitchShift(semitones=1.0)(x[None], sr), 3)
    ref_stretch = args.seconds / best_of(lambda: pedalboard.time_stretch(x[None], float(sr), 1.1), 3)
    ours_pitch = args.seconds / best_of(lambda: A.apply("pitch@semitones=1", x, sr), 3)
    ours_stretch = args.seconds / best_of(lambda: A.apply("stretch@rate=1.1", x, sr), 3)
    print(f"reference pedalboard PitchShift realtime={ref_pitch:.0f}  ratio={ours_pitch / ref_pitch:.1f}")
    print(f"reference pedalboard time_stretch (high quality) realtime={ref_stretch:.0f}  "
          f"ratio={ours_stretch / ref_stretch:.1f}")
    print(f"slowest natural transform realtime={worst:.0f} (target >= {TARGET:.0f})")


if __name__ == "__main__":
    main()

"""Throughput of the offline pretrained / external representations on this machine.

Takes nothing (synthesises a 10 s clip); prints, per available representation, parameters, layers, frame
rate and embedding throughput in audio seconds per wall second, and the ratio to librosa's log-mel
(96 bins, 10 ms hop) measured in the same run, so numbers from differently loaded machines compare.

    OMP_NUM_THREADS=1 python benchmarks/pretrained.py [--seconds 10] [--reps crepe basic-pitch ...]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from _timing import best_of

from musicrep import models

DEFAULT = [("crepe", {"capacity": "tiny"}), ("crepe", {"capacity": "full", "hop": 800}),
           ("madmom-key", {}), ("madmom-chroma", {}), ("basic-pitch", {}),
           ("essentia-hpcp", {}), ("musicnn-tf", {}), ("mert", {"size": "95m", "random_init": True})]


def _clip(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f = 220.0 * 2 ** (np.floor(t * 2) % 12 / 12)  # a new semitone every 0.5 s
    return (0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr)).astype(np.float32)




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--reps", nargs="*", default=None, help="names (default: all of the built-in list)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import librosa

    x16 = _clip(args.seconds, 16_000)
    ref = best_of(lambda: librosa.power_to_db(librosa.feature.melspectrogram(
        y=x16, sr=16_000, n_fft=2048, win_length=400, hop_length=160, n_mels=96, fmax=8000)), repeats=2)
    ref_speed = args.seconds / ref
    print(f"reference librosa log-mel: {ref_speed:,.0f} audio-s/s")
    print(f"{'representation':34s} {'params':>11s} {'L':>3s} {'H':>5s} {'rate Hz':>8s} {'audio-s/s':>10s} {'vs mel':>8s}")
    for name, cfg in DEFAULT if args.reps is None else [(r, {}) for r in args.reps]:
        ok, why = models.entry(name).available() if name in models.names() else (False, "unregistered")
        label = name + ("" if not cfg else " " + ",".join(f"{k}={v}" for k, v in cfg.items() if k != "random_init"))
        if not ok:
            print(f"{label:34s} unavailable: {why}")
            continue
        rep = models.get(name, **cfg)
        x = torch.as_tensor(x16 if rep.sample_rate == 16_000 else
                            librosa.resample(x16, orig_sr=16_000, target_sr=rep.sample_rate))[None]
        rep.embed(x[:, : rep.sample_rate])  # warm-up (graph build, first allocation)
        with torch.inference_mode():
            dt = best_of(lambda: rep.embed(x), 1 if name in {"musicnn-tf", "crepe"} else 2)
        speed = args.seconds / dt
        print(f"{label:34s} {rep.n_params:>11,d} {rep.n_layers:>3d} {max(rep.layer_dims):>5d} "
              f"{rep.frame_rate:>8.3g} {speed:>10.2f} {speed / ref_speed:>8.4f}")


if __name__ == "__main__":
    main()

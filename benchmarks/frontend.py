"""Benchmark: musicrep's LogMel vs ``librosa.feature.melspectrogram`` with identical parameters.

Both run in this process on the same ≥ 10 minutes of music-like audio (16 kHz). Prints the best of
``--repeats`` runs for each, then

    ratio=<librosa_time / our_time>   realtime=<audio seconds per wall second, ours>

Targets on a 2-core CPU: ratio ≥ 10 and realtime ≥ 1,500. Also prints the FFT stage alone and
``ceiling=<librosa_time / FFT-stage time>``: the ratio no exact log-mel can pass on this machine. The
audio is processed as one long signal and as a batch of 30 s clips (how extraction feeds it); the faster
of the two layouts is reported.

Usage: python benchmarks/frontend.py [--minutes 10] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _timing import best_of


def music_like(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t, dtype=np.float32)
    for f0 in (110.0, 220.0, 330.0, 523.25):
        y += (0.2 * np.sin(2 * np.pi * f0 * t) * (1 + np.sin(2 * np.pi * 0.25 * t))).astype(np.float32)
    y += 0.05 * rng.standard_normal(len(t)).astype(np.float32)
    return y.astype(np.float32)




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import librosa

    from musicrep.frontends import LogMel

    sr = 16_000
    seconds = args.minutes * 60
    y = music_like(seconds, sr)
    x = torch.from_numpy(y)
    clips = x[: int(len(y) // (30 * sr)) * 30 * sr].reshape(-1, 30 * sr)
    mel = LogMel()
    params = dict(sr=sr, n_fft=2048, win_length=400, hop_length=160, n_mels=96, fmin=0.0, fmax=8000.0, htk=True,
                  power=2.0, pad_mode="constant")

    # warm-up (filter construction, FFT plans, numba in librosa)
    with torch.inference_mode():
        mel(x[: 10 * sr])
    librosa.feature.melspectrogram(y=y[: 10 * sr], **params)

    with torch.inference_mode():
        t_long = best_of(lambda: mel(x), args.repeats)
        t_batch = best_of(lambda: mel(clips), args.repeats)
    t_librosa = best_of(lambda: np.log(librosa.feature.melspectrogram(y=y, **params) + 1e-6), args.repeats)

    def fft_only() -> None:
        # LogMel's own FFT stage alone (windowed frames, float64, its short FFT size, power): the part no
        # exact log-mel can skip, so librosa_time / this is the ratio's ceiling here
        for _ in mel.short_power_blocks(x):
            pass

    with torch.inference_mode():
        t_fft = best_of(fft_only, args.repeats)
    ours = min(t_long, t_batch)
    print(f"audio: {seconds:.0f} s at {sr} Hz, threads={args.threads}")
    print(f"librosa melspectrogram: {t_librosa:.3f} s  ({seconds / t_librosa:.0f}x realtime)")
    print(f"musicrep LogMel, one signal: {t_long:.3f} s  ({seconds / t_long:.0f}x realtime)")
    print(f"musicrep LogMel, {clips.shape[0]}x30 s batch: {t_batch:.3f} s  ({seconds / t_batch:.0f}x realtime)")
    print(f"FFT stage alone ({mel.n_short}-point, float64): {t_fft:.3f} s  ({seconds / t_fft:.0f}x realtime)")
    print(f"ratio={t_librosa / ours:.1f}")
    print(f"ceiling={t_librosa / t_fft:.1f}  (librosa / FFT stage alone: the ratio if everything after the FFT were free)")
    print(f"realtime={seconds / ours:.0f}")


if __name__ == "__main__":
    main()

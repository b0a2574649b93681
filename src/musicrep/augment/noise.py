"""Additive noise at an exact signal-to-noise ratio: coloured noise, and real background recordings.

SNR (dB) = 10·log10(P_signal / P_noise), both mean powers over the whole clip, so the level the string
names (``noise:pink@snr=10``) is the level the probe hears, to rounding. Why whole-clip power: it is the
convention of the robustness literature (and of HEAR's / MARBLE's noise tests); a per-frame SNR would make
quiet passages far noisier than the label says. A silent clip has no SNR and is returned unchanged.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from musicrep.audio import find_audio, load
from musicrep.augment.base import DeformationError, register

__all__ = ["coloured_noise", "mix_at_snr"]

#: Spectral slope of each colour: power ∝ f^(-slope) (white 0, pink 1, brown 2).
_SLOPE = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def coloured_noise(n: int, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """``n`` samples of unit-power noise whose power spectrum falls as ``f^-slope`` (white, pink, brown)."""
    white = rng.standard_normal(n)
    slope = _SLOPE[colour]
    if slope:
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = f[1] if len(f) > 1 else 1.0  # no infinite DC: give it the lowest bin's weight
        spec *= f ** (-slope / 2)
        white = np.fft.irfft(spec, n)
    white -= white.mean()
    p = np.mean(white**2)
    return (white / np.sqrt(p)) if p > 0 else white


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + g·noise`` with ``g`` chosen so the whole-clip SNR is exactly ``snr_db`` (dB)."""
    ps = float(np.mean(np.square(signal, dtype=np.float64)))
    pn = float(np.mean(np.square(noise, dtype=np.float64)))
    if ps == 0.0 or pn == 0.0:
        return signal.copy()
    g = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return (signal.astype(np.float64) + g * noise).astype(np.float32)


@register("noise", {"snr": 20.0}, "coloured noise (white, pink, brown) at an SNR in dB",
          variants=("white", "pink", "brown"))
def _noise(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, snr: float) -> np.ndarray:
    return mix_at_snr(x, coloured_noise(len(x), rng, variant), snr)


@lru_cache(maxsize=16)
def _listing(folder: str) -> tuple[str, ...]:
    files = tuple(str(p) for p in find_audio(folder))
    if not files:
        raise DeformationError(f"background@dir={folder}: no audio files in that folder")
    return files


@lru_cache(maxsize=8)
def _recording(path: str, sr: int) -> np.ndarray:
    return load(path, sr=sr)


@register("background", {"snr": 20.0, "dir": ""},
          "a real recording drawn from a folder (the music pool, speech, game sounds) mixed in at an SNR in dB")
def _background(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, snr: float, dir: str) -> np.ndarray:
    if not dir:
        raise DeformationError("background needs dir=FOLDER of recordings, e.g. 'background@snr=10,dir=data/pool'")
    if not Path(dir).is_dir():
        raise DeformationError(f"background@dir={dir}: folder does not exist")
    files = _listing(str(dir))
    rec = _recording(files[int(rng.integers(len(files)))], sr)
    if len(rec) == 0:
        return x.copy()
    if len(rec) < len(x):  # loop a short recording rather than leave the end clean
        rec = np.tile(rec, int(np.ceil(len(x) / len(rec))) + 1)
    start = int(rng.integers(0, len(rec) - len(x) + 1))
    return mix_at_snr(x, rec[start:start + len(x)].astype(np.float64), snr)

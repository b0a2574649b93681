"""Studio effects through pedalboard: reverb, pitch shift, time stretch, gain, EQ, compression, distortion.

These are the "natural" augmentations (effects a listener meets in real recordings, as opposed to
spectrogram surgery), so they are the ones the augmentation study and training draw from. Each is one
pedalboard plugin with the parameter the string names; nothing here is DSP of our own.
"""

from __future__ import annotations

import numpy as np

from musicrep.augment.base import register

__all__: list[str] = []


def _run(board_items: list, x: np.ndarray, sr: int) -> np.ndarray:
    import pedalboard

    return pedalboard.Pedalboard(board_items)(x[None, :], sr)[0]


@register("reverb", {"room": 0.5}, "algorithmic room reverb (room size 0–1, wet 0.33, dry 0.4)", natural=True)
def _reverb(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, room: float) -> np.ndarray:
    import pedalboard

    return _run([pedalboard.Reverb(room_size=float(np.clip(room, 0.0, 1.0)))], x, sr)


def _time_stretch(x: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """Rubber Band time stretch (``rate`` > 1 is faster) in its faster mode.

    Why not ``high_quality=True``: measured here it runs at ~24× realtime against ~126× for the faster
    mode, below the 50× per core training needs; on music both keep pitch and onsets.
    """
    import pedalboard

    return pedalboard.time_stretch(x[None, :], float(sr), stretch_factor=float(rate), high_quality=False)[0]


@register("pitch", {"semitones": 1.0}, "pitch shift in semitones, duration kept", natural=True,
          changes=("key", "pitch"))
def _pitch(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, semitones: float) -> np.ndarray:
    # stretch to r× the duration, then resample by 1/r: same duration, every frequency × r. Why not
    # pedalboard.PitchShift: it runs at ~22× realtime, this at ~100× (soxr's resampler is nearly free)
    import soxr

    r = 2.0 ** (float(semitones) / 12.0)
    if r == 1.0:
        return x.copy()
    longer = _time_stretch(x, sr, 1.0 / r)
    return soxr.resample(longer, sr * r, sr, quality="HQ").astype(np.float32)


@register("stretch", {"rate": 1.1}, "time stretch by a rate (>1 faster), pitch kept; cut or zero-padded "
          "back to the input length", natural=True, changes=("regression",))
def _stretch(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, rate: float) -> np.ndarray:
    return _time_stretch(x, sr, rate)


@register("gain", {"db": -12.0}, "gain in dB (no limiting)", natural=True)
def _gain(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, db: float) -> np.ndarray:
    import pedalboard

    return _run([pedalboard.Gain(gain_db=float(db))], x, sr)


@register("eq", {"low_db": 6.0, "high_db": -6.0}, "low shelf at 250 Hz and high shelf at 4 kHz, gains in dB",
          natural=True)
def _eq(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, low_db: float, high_db: float) -> np.ndarray:
    import pedalboard

    high = min(4000.0, 0.45 * sr)
    return _run([pedalboard.LowShelfFilter(cutoff_frequency_hz=250.0, gain_db=float(low_db)),
                 pedalboard.HighShelfFilter(cutoff_frequency_hz=high, gain_db=float(high_db))], x, sr)


@register("compress", {"threshold_db": -20.0, "ratio": 4.0}, "dynamic range compressor (threshold dB, ratio)",
          natural=True)
def _compress(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, threshold_db: float,
              ratio: float) -> np.ndarray:
    import pedalboard

    return _run([pedalboard.Compressor(threshold_db=float(threshold_db), ratio=max(1.0, float(ratio)))], x, sr)


@register("distort", {"drive_db": 20.0}, "tanh distortion with a drive in dB", natural=True)
def _distort(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, drive_db: float) -> np.ndarray:
    import pedalboard

    return _run([pedalboard.Distortion(drive_db=float(drive_db))], x, sr)

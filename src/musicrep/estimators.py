"""Classical, non-learned estimators: key by key-profile correlation and tempo by onset autocorrelation.

They are the "no learning at all" rows of the results tables: a probe on a learned representation
should beat them, and where it does not, that is a finding.

Key (Krumhansl & Schmuckler's algorithm): a clip's pitch-class distribution — calibrated CQT power folded onto
12 pitch classes and summed over time (:func:`key_chroma`) — is correlated (Pearson) with each of the 24
rotations of a major and a minor key profile; the best-correlated key wins. Profiles (:data:`KEY_PROFILES`):
``krumhansl`` (Krumhansl & Kessler 1982 probe-tone ratings), ``temperley`` (Temperley 1999, CBMS) and
``kostka-payne`` (Temperley 2007, note frequencies in the Kostka–Payne corpus). Keys are spelled as
mir_eval expects (``"C major"``, ``"F# minor"``), so :func:`mir_eval.key.weighted_score` scores them.

Measured (MIREX weighted score, mir_eval): 48 synthetic diatonic cadences in all 24 keys (the tests) —
Krumhansl 0.74, Temperley 0.92, Kostka–Payne 0.96; 240 rendered Bach-chorale clips (``musicrep data
render key --n 240``, 30 s each) — Krumhansl 0.87, Temperley 0.84, Kostka–Payne 0.95. Krumhansl's
minor profile pulls major cadences to minor keys more often than the corpus-derived profiles do.

Tempo: an onset-strength envelope at 100 frames/s (spectral flux of the log-mel of
:class:`musicrep.frontends.LogMel`: half-wave rectified frame difference, averaged over bands) is
autocorrelated; each lag's autocorrelation is weighted by a log-normal prior on tempo (centred at
``prior_bpm``, ``prior_octaves`` wide, as Ellis 2007 and librosa do — it is what picks one of the
equally periodic multiples of the beat period), and the winning lag is refined by parabolic
interpolation so the estimate is not limited to whole frames. Measured: click tracks at 60–160 BPM
within 0.1 %; 240 rendered chorale clips 89 % within 4 % of the score tempo (94 % allowing octave errors).
Above ~170 BPM the prior prefers half tempo (as librosa's does).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from musicrep.frontends import LogMel
from musicrep.frontends import CQTChroma
from musicrep.theory import KEYS as KEY_VOCABULARY

__all__ = [
    "KEY_PROFILES",
    "KEYS",
    "key_chroma",
    "key_scores",
    "key_from_chroma",
    "estimate_key",
    "onset_envelope",
    "tempo_from_envelope",
    "estimate_tempo",
]

#: (major, minor) profiles, index 0 = tonic.
KEY_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "krumhansl": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    ),
    "temperley": (
        (5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0),
        (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0),
    ),
    "kostka-payne": (
        (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
        (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
    ),
}

#: The 24 key labels in score order: C major … B major, C minor … B minor (the task format's vocabulary).
KEYS: tuple[str, ...] = KEY_VOCABULARY  # the one list, musicrep.theory.KEYS


@lru_cache(maxsize=4)
def _chroma(sr: int) -> CQTChroma:
    return CQTChroma(sample_rate=sr)


@lru_cache(maxsize=4)
def _logmel(sr: int) -> LogMel:
    return LogMel(sample_rate=sr)


def _mono(y: np.ndarray) -> torch.Tensor:
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D (mono) signal, got shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x))


def key_chroma(y: np.ndarray, sr: int = 16_000) -> np.ndarray:
    """Pitch-class distribution of a clip, ``[12]`` (index 0 = C): calibrated CQT power C1–B7, folded, summed.

    Why CQT rather than STFT chroma: at 16 kHz a 2048-point FFT cannot separate semitones below ~200 Hz,
    where bass notes (the strongest cue to the tonic) live; the CQT's long low-frequency filters can.
    See :class:`musicrep.frontends.CQTChroma` for why the bins are amplitude-calibrated.
    """
    with torch.inference_mode():
        c = _chroma(int(sr))(_mono(y))[0]  # [12, T]
    return c.sum(dim=1).numpy().astype(np.float64)


def key_scores(chroma: np.ndarray, profile: str = "krumhansl") -> np.ndarray:
    """Pearson correlation of a 12-bin pitch-class vector with all 24 keys, ordered as :data:`KEYS`."""
    if profile not in KEY_PROFILES:
        raise KeyError(f"unknown key profile {profile!r}; choose one of {sorted(KEY_PROFILES)}")
    v = np.asarray(chroma, dtype=np.float64)
    if v.ndim == 2:  # [12, T] → summed over time
        v = v.sum(axis=1)
    if v.shape != (12,):
        raise ValueError(f"chroma must have 12 bins, got shape {np.shape(chroma)}")
    out = np.zeros(24)
    if np.ptp(v) == 0:  # silence or flat spectrum: no evidence for any key
        return out
    for mode, prof in enumerate(KEY_PROFILES[profile]):
        p = np.asarray(prof)
        for tonic in range(12):
            out[12 * mode + tonic] = np.corrcoef(v, np.roll(p, tonic))[0, 1]
    return out


def key_from_chroma(chroma: np.ndarray, profile: str = "krumhansl") -> str:
    """Best-correlated key for a pitch-class vector ``[12]`` (or ``[12, T]``), e.g. ``"A minor"``."""
    return KEYS[int(np.argmax(key_scores(chroma, profile)))]


def estimate_key(y: np.ndarray, sr: int = 16_000, profile: str = "krumhansl") -> str:
    """Key of a mono clip by key-profile correlation (see module docstring)."""
    return key_from_chroma(key_chroma(y, sr), profile)


def onset_envelope(y: np.ndarray, sr: int = 16_000) -> tuple[np.ndarray, float]:
    """Spectral-flux onset strength of a clip and its frame rate: ``(envelope [frames], 100.0)``."""
    lm = _logmel(int(sr))
    with torch.inference_mode():
        s = lm(_mono(y))[0]  # [96, T] natural-log mel power
    flux = torch.clamp(s[:, 1:] - s[:, :-1], min=0).mean(dim=0)
    env = torch.cat([flux.new_zeros(1), flux]).numpy().astype(np.float64)
    return env, float(lm.frame_rate)


def tempo_from_envelope(env: np.ndarray, fps: float, prior_bpm: float = 120.0, prior_octaves: float = 1.0,
                        min_bpm: float = 30.0, max_bpm: float = 300.0) -> float:
    """Tempo (BPM) from an onset envelope by prior-weighted autocorrelation (see module docstring)."""
    e = np.asarray(env, dtype=np.float64)
    # smooth with a 5-frame Hann: a beat period that falls between two lags then keeps its full peak
    # height instead of splitting it over both, which would hand the win to an exact multiple
    e = np.convolve(e, np.hanning(7)[1:-1] / np.hanning(7)[1:-1].sum(), mode="same")
    e = e - e.mean()
    n = len(e)
    lo = max(1, int(np.floor(60.0 * fps / max_bpm)))
    hi = min(n - 2, int(np.ceil(60.0 * fps / min_bpm)))
    if hi <= lo + 1 or not np.any(e):
        return 0.0  # too short or no onsets: no tempo
    spec = np.fft.rfft(e, n=2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[: n]
    ac /= np.arange(n, 0, -1)  # unbiased: long lags see fewer products
    lags = np.arange(lo, hi + 1)
    bpm = 60.0 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpm / prior_bpm) / prior_octaves) ** 2)
    k = int(lags[np.argmax(ac[lags] * prior)])
    # parabolic interpolation of the autocorrelation peak around lag k
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(60.0 * fps / (k + float(np.clip(shift, -0.5, 0.5))))


def estimate_tempo(y: np.ndarray, sr: int = 16_000, prior_bpm: float = 120.0, prior_octaves: float = 1.0) -> float:
    """Global tempo of a mono clip in BPM by onset autocorrelation (see module docstring)."""
    env, fps = onset_envelope(y, sr)
    return tempo_from_envelope(env, fps, prior_bpm=prior_bpm, prior_octaves=prior_octaves)

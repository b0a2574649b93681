"""Lossy codecs: encode to MP3 or Ogg Vorbis at a bitrate in memory, decode, realign to the input.

pedalboard (LAME, libvorbis) encodes and decodes. Why realign: encoders add a delay and padding (LAME's
encoder + decoder delay is over 1,000 samples at 16 kHz); left in, every window would be shifted against
its label and the output longer than the input. The delay is found by cross-correlating the decoded
signal with the input over the first lags, and cut.
"""

from __future__ import annotations

import io

import numpy as np

from musicrep.augment.base import DeformationError, register

__all__ = ["codec_roundtrip"]

#: Longest encoder delay searched for (samples); LAME's is ~1,105 at 16 kHz, Vorbis's 0.
_MAX_DELAY = 4096


def codec_roundtrip(x: np.ndarray, sr: int, fmt: str, kbps: float) -> np.ndarray:
    """Encode mono ``x`` as ``fmt`` (``mp3`` | ``ogg``) at ``kbps``, decode, and align it to ``x``."""
    from pedalboard.io import AudioFile

    buf = io.BytesIO()
    try:
        with AudioFile(buf, "w", sr, 1, format=fmt, quality=int(kbps)) as f:
            f.write(x[None, :])
    except (ValueError, RuntimeError) as exc:
        raise DeformationError(f"{fmt}@kbps={kbps:g}: the encoder refused ({exc})") from None
    with AudioFile(io.BytesIO(buf.getvalue())) as f:
        y = f.read(f.frames)[0]
    return y[_delay(x, y):]


def _delay(x: np.ndarray, y: np.ndarray) -> int:
    """Lag (0.._MAX_DELAY samples) at which decoded ``y`` best matches ``x`` (FFT cross-correlation)."""
    n = min(len(x), len(y) - 1, 8 * _MAX_DELAY)
    if n <= 0 or not np.any(x[:n]):
        return max(0, len(y) - len(x))
    a, b = x[:n].astype(np.float64), y[: n + _MAX_DELAY].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[: _MAX_DELAY + 1]
    return int(np.argmax(corr))


@register("mp3", {"kbps": 128.0}, "MP3 (LAME) round trip at a bitrate in kbit/s")
def _mp3(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, kbps: float) -> np.ndarray:
    return codec_roundtrip(x, sr, "mp3", kbps)


@register("ogg", {"kbps": 128.0}, "Ogg Vorbis round trip at a bitrate in kbit/s (64–500)")
def _ogg(x: np.ndarray, sr: int, rng: np.random.Generator, variant: str, kbps: float) -> np.ndarray:
    return codec_roundtrip(x, sr, "ogg", kbps)

"""Audio input: any file libsndfile reads → mono float32 at a target rate.

Takes a path (wav, flac, ogg/vorbis, opus, mp3, aiff, …) and gives a 1-D ``numpy.float32`` array at
``sr`` Hz (16 kHz by default, the rate every front-end in musicrep expects).

Why one loader with one exception type: every later stage (rendering, extraction, evaluation) runs over
whole folders, and a single unreadable file must never abort a batch nor surface as a raw traceback from
a C library. Anything wrong with a file becomes :class:`AudioError`, whose message names the file and the
problem, so batch code can log it and move on.

Decoding is soundfile (libsndfile); resampling is soxr (high quality, streaming-capable). Long files can
be read block by block with :func:`stream` so memory stays bounded whatever the file's length.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "AudioError",
    "ClipTooShortError",
    "AudioInfo",
    "AUDIO_EXTENSIONS",
    "DEFAULT_SR",
    "find_audio",
    "frame_signal",
    "info",
    "load",
    "n_windows",
    "stream",
    "to_mono",
]

#: The rate every musicrep front-end and encoder works at unless told otherwise (McCallum et al. 2022).
DEFAULT_SR = 16_000
#: File endings that :func:`find_audio` treats as audio when scanning a folder.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64")
#: More channels than this is treated as an unsupported layout rather than silently averaged.
MAX_CHANNELS = 64
#: Block length (in source frames) used when decoding incrementally.
_BLOCK = 1 << 16


class AudioError(Exception):
    """A file could not be turned into usable audio. ``str(err)`` names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ClipTooShortError(ValueError):
    """A clip is shorter than a front-end or representation can analyse.

    ``str(err)`` says what needs how many seconds and how many it got, e.g. ``musicfm needs at least 0.0428 s
    of audio, got 0.01 s``; it does not know the file, so a caller that does prefixes it
    (``f"{path}: {err}"``). Attributes: ``what``, ``min_seconds``, ``seconds``.
    """

    def __init__(self, what: str, min_seconds: float, seconds: float) -> None:
        self.what, self.min_seconds, self.seconds = what, float(min_seconds), float(seconds)
        shown = math.ceil(self.min_seconds * 10_000 - 1e-6) / 10_000  # rounded up: "at least" stays true
        super().__init__(f"{what} needs at least {shown:g} s of audio, got {self.seconds:.4g} s; "
                         f"use a longer clip or pad it with silence")


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says, without decoding the samples."""

    path: str
    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.frames / self.samplerate if self.samplerate else 0.0


def _open(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open ``path`` with libsndfile, turning every failure into an :class:`AudioError`."""
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "file not found")
    if p.is_dir():
        raise AudioError(p, "is a directory, not an audio file")
    size = p.stat().st_size
    if size == 0:
        raise AudioError(p, "empty file (0 bytes)")
    try:
        handle = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:  # libsndfile's own words
        detail = str(exc).split(":", 1)[-1].strip() or type(exc).__name__
        raise AudioError(p, f"not a readable audio file ({detail})") from None
    try:
        _check_header(p, handle)
    except AudioError:
        handle.close()
        raise
    return handle


def _check_header(p: Path, handle: sf.SoundFile) -> None:
    if handle.samplerate <= 0:
        raise AudioError(p, f"invalid sample rate {handle.samplerate}")
    if handle.channels < 1 or handle.channels > MAX_CHANNELS:
        raise AudioError(p, f"unsupported channel layout ({handle.channels} channels; 1–{MAX_CHANNELS} are read)")
    if handle.frames == 0:
        raise AudioError(p, "zero-length audio (the header declares no samples)")


def info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of ``path``.

    Raises :class:`AudioError` for a missing, empty or non-audio file.
    """
    with _open(path) as h:
        return AudioInfo(str(path), h.samplerate, h.channels, h.frames, h.format, h.subtype)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels: ``[frames, channels]`` → ``[frames]`` (a 1-D input is returned as is)."""
    if x.ndim == 1:
        return x
    return x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]


def _check_finite(p: str | os.PathLike[str], x: np.ndarray, start: int = 0) -> None:
    """Raise if any sample of ``x`` (``[frames, channels]``) is NaN or infinite."""
    ok = np.isfinite(x).all(axis=-1)
    if not ok.all():
        first = int(np.argmin(ok))
        raise AudioError(p, f"contains NaN or infinite samples (first at sample {start + first})")


def load(
    path: str | os.PathLike[str],
    sr: int | None = DEFAULT_SR,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    mono: bool = True,
) -> np.ndarray:
    """Load ``path`` as float32 at ``sr`` Hz (``None`` keeps the file's rate).

    Args:
        path: any file libsndfile decodes.
        sr: target rate in Hz; resampled with soxr ("HQ"). ``None`` keeps the native rate.
        offset: start, in seconds.
        duration: length to read, in seconds (``None``: to the end).
        mono: average channels (``True``) or return ``[channels, samples]``.

    Returns:
        ``float32`` array ``[samples]`` (mono) or ``[channels, samples]``.

    Raises:
        AudioError: missing, empty, zero-length, non-audio or truncated-beyond-use files, NaN/inf samples,
            unsupported channel layouts. The message names the file.

    Example:
        >>> y = load("song.mp3")            # doctest: +SKIP
        >>> y.dtype, y.ndim
        (dtype('float32'), 1)
    """
    with _open(path) as h:
        native = h.samplerate
        start = int(round(offset * native))
        if start:
            h.seek(min(start, h.frames))
        n = -1 if duration is None else int(round(duration * native))
        try:
            x = h.read(frames=n, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(path, f"decoding failed ({exc})") from None
    if x.shape[0] == 0:
        raise AudioError(path, "no samples could be decoded (truncated or empty data)")
    _check_finite(path, x, start)
    y = to_mono(x) if mono else x
    if sr is not None and sr != native:
        y = soxr.resample(y, native, sr, quality="HQ")
    y = np.ascontiguousarray(y.T if (not mono) else y, dtype=np.float32)
    return y


def stream(
    path: str | os.PathLike[str],
    sr: int | None = DEFAULT_SR,
    *,
    block_seconds: float = 30.0,
) -> Iterator[np.ndarray]:
    """Yield consecutive mono float32 blocks of ``path`` at ``sr`` Hz, never holding the whole file.

    Why: a two-hour file at 48 kHz is ~1.4 GB as float32 stereo; extraction only needs a few seconds at a
    time. soxr's streaming resampler keeps the result identical (up to float rounding) to :func:`load`.
    Blocks are about ``block_seconds`` long (the last may be shorter).
    """
    with _open(path) as h:
        native = h.samplerate
        target = native if sr is None else sr
        rs = None if target == native else soxr.ResampleStream(native, target, 1, dtype="float32", quality="HQ")
        block = max(1, int(block_seconds * native))
        done = 0
        while True:
            try:
                x = h.read(frames=block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(path, f"decoding failed at sample {done} ({exc})") from None
            last = x.shape[0] < block
            if x.shape[0] == 0 and done == 0:
                raise AudioError(path, "no samples could be decoded (truncated or empty data)")
            _check_finite(path, x, done)
            done += x.shape[0]
            y = to_mono(x)
            if rs is not None:
                y = rs.resample_chunk(y, last=last)
            if y.size:
                yield np.ascontiguousarray(y, dtype=np.float32)
            if last:
                break


def find_audio(root: str | os.PathLike[str]) -> list[Path]:
    """All files under ``root`` (recursively) whose extension is in :data:`AUDIO_EXTENSIONS`, sorted.

    A file given directly is returned as is, whatever its extension, so the caller gets an
    :class:`AudioError` for it rather than silence.
    """
    p = Path(root)
    if p.is_file() or not p.exists():
        return [p]
    return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)


def n_windows(n_samples: int, window: int, hop: int, pad: bool = False) -> int:
    """Number of windows :func:`frame_signal` gives for a signal of ``n_samples``."""
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if not pad:
        return 0 if n_samples < window else 1 + (n_samples - window) // hop
    return 0 if n_samples <= 0 else 1 + max(0, math.ceil((n_samples - window) / hop))


def frame_signal(
    x: np.ndarray,
    sr: int,
    window_seconds: float,
    hop_seconds: float,
    *,
    pad: bool = False,
) -> np.ndarray:
    """Cut ``x`` (``[..., samples]``) into windows ``[..., n, window]`` of ``window_seconds`` every ``hop_seconds``.

    Without padding (the default here; McCallum et al. sample training snippets "without padding") only
    whole windows are returned and the result is a read-only view (no copy). With ``pad=True`` a trailing
    partial window, or a signal shorter than one window, is zero-padded so no audio is dropped.
    (Extraction does not use this padding: see :func:`musicrep.embed.iter_windows`.)

    Example:
        >>> frame_signal(np.arange(10, dtype=np.float32), sr=1, window_seconds=4, hop_seconds=2).shape
        (4, 4)
    """
    window = int(round(window_seconds * sr))
    hop = int(round(hop_seconds * sr))
    n = n_windows(x.shape[-1], window, hop, pad)
    if pad:
        need = (n - 1) * hop + window if n else 0
        if need > x.shape[-1]:
            widths = [(0, 0)] * (x.ndim - 1) + [(0, need - x.shape[-1])]
            x = np.pad(x, widths)
    if n == 0:
        return np.zeros(x.shape[:-1] + (0, window), dtype=x.dtype)
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=-1)[..., ::hop, :]
    return view[..., :n, :]


def duration_seconds(x: np.ndarray, sr: int) -> float:
    """Length of a signal in seconds."""
    return x.shape[-1] / float(sr)


def rms_db(x: np.ndarray) -> float:
    """Root-mean-square level in dBFS (−inf for silence); used by loudness checks on rendered audio."""
    r = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * math.log10(r) if r > 0 else float("-inf")

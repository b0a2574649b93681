"""Label checks, run in the worker processes: each synthesises one :class:`Job` and verifies its label.

A check ``fn(synth, job) -> (audio, label, extra)`` returns the audio (float32 mono at
:data:`musicrep.data.render.base.SR`), the label when the audio decides it (tagging; ``None`` keeps the
planned one) and extra manifest columns; it raises :class:`Drop` (the message is the reason, counted in
the report) when the audio does not carry its label. :data:`CHECKS` names them for :attr:`Job.check`:

- ``note``: a single note must be loud enough, sound long enough and have the pitch of its MIDI number
  (by YIN, :func:`note_pitch`), so octave-shifted programs, silent high notes and short-decay programs
  are dropped (see DESIGN.md);
- ``piece``: all parts together, dropped only when inaudible;
- ``stems``: each part rendered alone, the clip labelled with the GM families of the audible parts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from musicrep.data.render.base import SR, Job
from musicrep.data.synth import GM_FAMILIES, Synth, gm_family

NOTE_SECONDS = 4.0  # NSynth: 4 s notes …
NOTE_OFF = 3.0  # … released after 3 s
#: A rendered note/part counts as audible if its loudest 64 ms frame is above this (dBFS).
AUDIBLE_DB = -50.0
#: A single note must stay within this many dB of its peak for at least MIN_SOUNDING seconds.
SOUNDING_DB = 30.0
MIN_SOUNDING = 0.2
#: Largest allowed gap between a note's estimated pitch and its MIDI number (semitones).
PITCH_TOLERANCE = 0.5
#: Pitch is estimated on the first second: every kept note sounds there (short-decay ones too).
PITCH_SECONDS = 1.0

Check = Callable[[Synth, Job], tuple[np.ndarray, Any, dict]]


class Drop(Exception):
    """Raised by a check: the job's audio does not carry its label; the message is the reason."""


def frame_db(y: np.ndarray, frame: int = 1024, hop: int = 256) -> np.ndarray:
    """Frame RMS in dBFS, shape ``[frames]`` (uncentred frames, as ``librosa.feature.rms(center=False)``;
    numpy only so that rendering pieces never pays for importing librosa)."""
    if len(y) < frame:
        y = np.pad(y, (0, frame - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, frame)[::hop]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def note_pitch(y: np.ndarray, sr: int, midi: int, hop: int = 512) -> float:
    """Median YIN pitch (MIDI, fractional) over the sounding frames of a single note.

    The search range spans more than an octave either side of ``midi`` so that a program sounding an
    octave away is *measured* as such (and dropped) rather than folded back into range.
    """
    import librosa

    f0 = librosa.midi_to_hz(midi)
    fmin = max(librosa.midi_to_hz(midi - 15), 20.0)
    fmax = min(librosa.midi_to_hz(midi + 15), sr / 2 * 0.9)
    frame = 2048 if fmin > 2 * sr / 2048 else 4096
    est = librosa.yin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop, center=False)
    db = frame_db(y, frame=frame, hop=hop)
    m = min(len(est), len(db))
    sounding = db[:m] > db[:m].max() - 20.0
    if not sounding.any() or f0 <= 0:
        return float("nan")
    return float(np.median(librosa.hz_to_midi(est[:m][sounding])))


def check_note(synth: Synth, job: Job) -> tuple[np.ndarray, Any, dict]:
    """One note on one program: audible, sounding at least :data:`MIN_SOUNDING` s, pitch within
    :data:`PITCH_TOLERANCE` of its MIDI number; raises :class:`Drop` otherwise."""
    (program, notes), = job.stems
    y = synth.render(notes, {0: program}, job.duration)
    midi = notes[0].pitch
    db = frame_db(y[: int(NOTE_OFF * SR)])
    if db.max() < AUDIBLE_DB:
        raise Drop("inaudible")
    if (db > db.max() - SOUNDING_DB).sum() * 256 / SR < MIN_SOUNDING:
        raise Drop("too short")
    est = note_pitch(y[: int(PITCH_SECONDS * SR)], SR, midi)
    if not np.isfinite(est) or abs(est - midi) > PITCH_TOLERANCE:
        raise Drop("octave off" if np.isfinite(est) and abs(abs(est - midi) - 12) <= 1 else "pitch mismatch")
    return y, None, {}


def check_piece(synth: Synth, job: Job) -> tuple[np.ndarray, Any, dict]:
    """All parts together, one channel per stem; raises :class:`Drop` when the mix is inaudible."""
    programs = {ch: prog for ch, (prog, _) in enumerate(job.stems)}
    notes = [n for _, part in job.stems for n in part]
    y = synth.render(notes, programs, job.duration)
    if frame_db(y).max() < AUDIBLE_DB:
        raise Drop("inaudible")
    return y, None, {}


def check_stems(synth: Synth, job: Job) -> tuple[np.ndarray, Any, dict]:
    """Render each part alone, label the clip with the families of the parts that are audible."""
    mix = np.zeros(int(round(job.duration * SR)), dtype=np.float32)
    audible = []
    for prog, part in job.stems:
        y = synth.render(part, {0: prog}, job.duration)
        if part and frame_db(y).max() >= AUDIBLE_DB:
            audible.append(prog)
            mix += y
    if not audible:
        raise Drop("inaudible")
    families = sorted({gm_family(p) for p in audible}, key=GM_FAMILIES.index)
    return mix, families, {"programs": ";".join(str(p) for p in audible)}


#: Check name (:attr:`Job.check`) → check.
CHECKS: dict[str, Check] = {
    "note": check_note,
    "piece": check_piece,
    "stems": check_stems,
}

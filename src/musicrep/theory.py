"""Music-theory constants and key finding: the one home of pitch classes, the 24 keys and key profiles.

Takes key names in any common spelling, pitch-class vectors ``[..., 12]`` (index 0 = C); gives the
canonical key spelling, class ids, and the Pearson correlation of a pitch-class vector with all 24 keys.

Why one module at the bottom floor: the task format (``data/``), the metrics, the zero-shot key probe and
the renderer must agree on what key id 7 means. One list (:data:`KEYS`), one spelling per pitch class
(:data:`PITCH_CLASSES`, the one ``mir_eval.key`` accepts and prints), one correlation routine
(:func:`key_scores`) — so a key task's class ids, the probes' outputs and the MIREX score can never drift.

Key profiles (:data:`KEY_PROFILES`, index 0 = tonic): ``krumhansl`` (Krumhansl & Kessler 1982 probe-tone
ratings, as used by Krumhansl–Schmuckler key finding), ``temperley`` (Temperley 1999, CBMS) and
``kostka-payne`` (Temperley 2007, note frequencies of the Kostka–Payne corpus).
"""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "PITCH_CLASSES",
    "KEYS",
    "KEY_PROFILES",
    "canonical_key",
    "key_index",
    "key_name",
    "key_templates",
    "key_scores",
]

#: Pitch-class spelling, bin 0 = C: the spelling mir_eval uses for keys (one name per pitch class).
PITCH_CLASSES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: The 24 keys as class ids 0..23: 12 majors then 12 minors, tonic = id % 12 from C (mir_eval spelling).
KEYS: tuple[str, ...] = tuple(f"{pc} major" for pc in PITCH_CLASSES) + tuple(f"{pc} minor" for pc in PITCH_CLASSES)
_KEY_INDEX = {k: i for i, k in enumerate(KEYS)}

#: (major, minor) key profiles, index 0 = tonic.
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

_NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"#": 1, "♯": 1, "b": -1, "♭": -1, "x": 2, "𝄪": 2, "𝄫": -2}
# tonic letter, any run of accidentals, an optional ':' or space, then a mode word or a bare 'm' (minor)
_KEY_RE = re.compile(r"([A-Ga-g])\s*([#b♯♭x𝄪𝄫]*)\s*[: ]?\s*(major|minor|maj|min|m)", flags=re.IGNORECASE)


def canonical_key(text: str) -> str | None:
    """A key name in the one spelling of :data:`KEYS` (``"Db major"`` → ``"C# major"``), or ``None``.

    Accepts every enharmonic spelling (``"G# minor"``, ``"Ab minor"``, ``"Cb major"``, ``"E#m"``,
    ``"Fbb major"``), mode words ``major``/``maj``/``minor``/``min`` in any case, a bare ``m`` for minor
    (``"Dbm"``, ``"f#m"``; ``"CM"`` is C major) and mir_eval's ``"C:maj"``. Rejects a missing mode
    (``"Eb"``) and ambiguous annotations (``"C minor / F# minor"``, ``"-"``, empty text): a single-label
    key task cannot represent them.
    """
    s = text.strip()
    m = _KEY_RE.fullmatch(s)
    if not m:
        return None
    tonic, accidentals, mode = m.group(1), m.group(2), m.group(3)
    pc = (_NATURAL[tonic.upper()] + sum(_ACCIDENTAL[a] for a in accidentals)) % 12
    # 'CM' is the common shorthand for C major, 'Cm' for C minor: a bare 'm' keeps its case
    major = mode.lower() in ("maj", "major") or mode == "M"
    return f"{PITCH_CLASSES[pc]} {'major' if major else 'minor'}"


def key_index(text: str) -> int:
    """Class id (0..23, :data:`KEYS` order) of a key in any spelling :func:`canonical_key` reads.

    Raises ``ValueError`` naming the text when it is not a key.
    """
    k = canonical_key(text)
    if k is None:
        raise ValueError(f"{text!r} is not a key; write e.g. 'F# minor', 'Db major' or 'Bbm'")
    return _KEY_INDEX[k]


def key_name(index: int) -> str:
    """Key string (mir_eval spelling) of class id ``index``: 0 → ``"C major"``, 21 → ``"A minor"``."""
    return KEYS[int(index)]


def key_templates(profile: str = "krumhansl") -> np.ndarray:
    """``[24, 12]`` float64 key templates in :data:`KEYS` order, each zero-mean and unit-norm.

    Row ``k`` is the mode's profile rotated to the tonic of key ``k``, so the dot product of a
    zero-mean, unit-norm pitch-class vector with a row is their Pearson correlation.
    Raises ``KeyError`` for an unknown profile name.
    """
    if profile not in KEY_PROFILES:
        raise KeyError(f"unknown key profile {profile!r}; choose one of {sorted(KEY_PROFILES)}")
    rows = [np.roll(np.asarray(p, dtype=np.float64), t) for p in KEY_PROFILES[profile] for t in range(12)]
    m = np.stack(rows)
    m -= m.mean(axis=1, keepdims=True)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def key_scores(chroma: np.ndarray, profile: str = "krumhansl") -> np.ndarray:
    """Pearson correlation of pitch-class vectors with all 24 keys: ``[..., 12]`` → ``[..., 24]``.

    The Krumhansl–Schmuckler key-finding rule: the best-correlated key is the estimate. A flat vector
    (silence) correlates with nothing and scores 0 for every key. Raises ``ValueError`` when the last
    axis is not 12 pitch classes.
    """
    v = np.asarray(chroma, dtype=np.float64)
    if v.shape[-1:] != (12,):
        raise ValueError(f"pitch-class vectors must have 12 bins on the last axis, got shape {v.shape}")
    v = v - v.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    v = np.where(norm > 1e-12, v / np.where(norm > 1e-12, norm, 1.0), 0.0)
    return v @ key_templates(profile).T

"""Scores from music21's bundled corpus → plain note lists the renderer can play (no network).

Takes corpus paths (Bach chorales, in the music21 wheel) and gives :class:`Chorale` objects: four voice
parts as tuples of (onset, duration) in quarter notes with MIDI pitches, the encoded key as a
mir_eval-spelled label, and a stable id (the BWV file stem) to split by.

Why convert once to plain tuples: transposing and re-timing a music21 Score is slow and allocates a
lot; adding ``k`` to MIDI numbers and scaling onsets by 60/BPM is exact and instant, so the renderer
can make 12 transpositions × any tempo from one parse.

Label pitfalls handled here (measured on this corpus, see DESIGN.md): the key is read from the top
part of the score (other parts may carry a wrong mode); a chorale whose final bass note is not the
encoded tonic is rejected (this also catches Dorian-signature chorales whose tonic comes out a fifth
off); only major/minor modes are kept.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from musicrep.data.task import PITCH_CLASSES

__all__ = ["Chorale", "ChoraleRejected", "chorale_paths", "key_label", "load_chorale"]

#: (onset in quarter notes, duration in quarter notes, MIDI pitch)
NoteQ = tuple[float, float, int]
_VOICES = ("soprano", "alto", "tenor", "bass")


class ChoraleRejected(Exception):
    """A corpus file is not usable as a labelled chorale; the message says why."""


@dataclass(frozen=True)
class Chorale:
    """One chorale reduced to what rendering needs."""

    id: str  # file stem, e.g. "bwv18_5-w" (a variant of work "bwv18_5")
    tonic: int  # pitch class 0..11 of the encoded key
    mode: str  # "major" | "minor"
    parts: tuple[tuple[NoteQ, ...], ...]  # soprano, alto, tenor, bass
    length_q: float  # score length in quarter notes

    @property
    def work(self) -> str:
        """The work this file is a version of: variants (``-w``, ``-l``, ``-inst``) share it."""
        return self.id.split("-")[0]

    def key(self, transpose: int = 0) -> str:
        """Key label (mir_eval spelling) after transposing by ``transpose`` semitones."""
        return key_label(self.tonic + transpose, self.mode)


def key_label(tonic_pc: int, mode: str) -> str:
    """``key_label(6, 'minor') == 'F# minor'`` — the spelling of :data:`musicrep.data.task.KEY_VOCABULARY`."""
    return f"{PITCH_CLASSES[tonic_pc % 12]} {mode}"


@functools.lru_cache(maxsize=1)
def chorale_paths() -> tuple[Path, ...]:
    """Bach chorale files of the music21 corpus (MusicXML only), sorted by name for reproducibility."""
    from music21 import corpus

    return tuple(sorted((Path(p) for p in corpus.getComposer("bach") if Path(p).suffix in (".mxl", ".xml")),
                        key=lambda p: p.name))


@functools.lru_cache(maxsize=512)
def load_chorale(path: str | Path) -> Chorale:
    """Parse one chorale; raise :class:`ChoraleRejected` if it has no usable SATB parts or key."""
    from music21 import corpus, key

    path = Path(path)
    try:
        score = corpus.parse(str(path))
    except Exception as exc:  # music21 raises many kinds; the file is simply unusable
        raise ChoraleRejected(f"{path.name}: music21 cannot parse it ({exc})") from None
    keys = list(score.parts[0].recurse().getElementsByClass(key.Key)) if score.parts else []
    if not keys or keys[0].mode not in ("major", "minor"):
        raise ChoraleRejected(f"{path.name}: no major/minor key encoded in the top part")
    tonic, mode = keys[0].tonic.pitchClass, keys[0].mode

    by_name = {(p.partName or "").strip().lower(): p for p in score.parts}
    if all(v in by_name for v in _VOICES):
        voices = [by_name[v] for v in _VOICES]
    elif len(score.parts) == 4:
        voices = list(score.parts)
    else:
        raise ChoraleRejected(f"{path.name}: no soprano/alto/tenor/bass parts found")
    parts = []
    for part in voices:
        notes: list[NoteQ] = []
        for n in part.stripTies().flatten().notes:
            dur = float(n.quarterLength)
            if dur <= 0:  # grace notes have no duration of their own
                continue
            notes.extend((float(n.offset), dur, int(p.midi)) for p in n.pitches)
        if not notes:
            raise ChoraleRejected(f"{path.name}: part {part.partName!r} has no notes")
        parts.append(tuple(sorted(notes)))
    bass_last = max(parts[3], key=lambda x: (x[0], -x[2]))
    if bass_last[2] % 12 != tonic:
        raise ChoraleRejected(
            f"{path.name}: final bass note {PITCH_CLASSES[bass_last[2] % 12]} is not the encoded tonic "
            f"{PITCH_CLASSES[tonic]} (label would be doubtful)"
        )
    length = max(o + d for part in parts for o, d, _ in part)
    return Chorale(id=path.stem.replace(".", "_"), tonic=tonic, mode=mode, parts=tuple(parts), length_q=length)


def iter_chorales(order: list[Path] | tuple[Path, ...] | None = None):
    """Yield usable chorales in ``order`` (default: corpus order), silently skipping rejected files."""
    for p in order if order is not None else chorale_paths():
        try:
            yield load_chorale(p)
        except ChoraleRejected:
            continue

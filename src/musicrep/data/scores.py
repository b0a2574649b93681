"""Scores from music21's bundled corpus → plain note lists the renderer can play (no network).

Takes corpus paths (Bach chorales and ABC folk collections, in the music21 wheel) and gives
:class:`Chorale` objects (four voice parts as (onset, duration, MIDI) tuples in quarter notes, the encoded
key as a mir_eval-spelled label, a stable id and work to split by) and :class:`Tune` objects (a
monophonic folk tune with beat strengths, its metre and collection).

Why convert once to plain tuples: transposing and re-timing a music21 Score is slow and allocates a
lot; adding ``k`` to MIDI numbers and scaling onsets by 60/BPM is exact and instant, so the renderer
can make 12 transpositions × any tempo from one parse.

Label pitfalls handled here (measured on this corpus, see DESIGN.md): the key is read from the top
part of the score (other parts may carry a wrong mode); a chorale whose final bass note is not the
encoded tonic is rejected (this also catches Dorian-signature chorales whose tonic comes out a fifth
off); only major/minor modes are kept. A folk tune is kept only if music21 reads exactly the metre its ABC
header declares and its inner bars are regular.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from musicrep.theory import PITCH_CLASSES

__all__ = [
    "FOLK_COLLECTIONS", "Chorale", "ChoraleRejected", "Tune", "TuneRef", "chorale_paths", "folk_tunes", "iter_chorales",
    "key_label", "load_chorale", "load_tune", "scan_abc",
]

#: (onset in quarter notes, duration in quarter notes, MIDI pitch)
NoteQ = tuple[float, float, int]
#: Melodic intervals that identify a chorale's tune (:attr:`Chorale.tune`).
TUNE_INTERVALS = 10
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

    @property
    def tune(self) -> str:
        """The hymn tune this chorale harmonises, as an id: a hash of the soprano's first
        :data:`TUNE_INTERVALS` melodic intervals (transposition-free).

        Why: Bach set many tunes several times under different BWV numbers (in the music21 corpus 159 of
        310 usable works share their tune with another work). Two settings of one tune in different splits
        would put the same melody in train and test, so renderers split and group chorales by tune.
        """
        sop = [midi for _, _, midi in self.parts[0]]
        steps = ",".join(str(b - a) for a, b in zip(sop, sop[1 : TUNE_INTERVALS + 1]))
        return "tune-" + hashlib.sha1(steps.encode()).hexdigest()[:10]

    def key(self, transpose: int = 0) -> str:
        """Key label (mir_eval spelling) after transposing by ``transpose`` semitones."""
        return key_label(self.tonic + transpose, self.mode)


def key_label(tonic_pc: int, mode: str) -> str:
    """``key_label(6, 'minor') == 'F# minor'`` — the spelling of :data:`musicrep.theory.KEYS`."""
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


# ---------------------------------------------------------------------- folk tunes (ABC collections)
#: (onset in quarter notes, duration in quarter notes, MIDI pitch, music21 beat strength 0..1)
NoteB = tuple[float, float, int, float]

#: Folk collections of the music21 corpus: style name → (corpus folder, file-name prefixes or None = all).
FOLK_COLLECTIONS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "german": ("essenFolksong", ("altdeu", "ballad", "boehme", "dva", "erk", "fink", "kinder", "zuccal")),
    "chinese": ("essenFolksong", ("han",)),
    "irish": ("oneills1850", None),
    "scottish": ("airdsAirs", None),
}


@dataclass(frozen=True)
class TuneRef:
    """Where a tune is (file + its ``X:`` number) and what its ABC header says, before parsing."""

    path: Path
    number: int
    metre: str  # the single M: value of the tune (tunes that change metre are not listed)
    collection: str

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}-{self.path.stem}-x{self.number}"


@dataclass(frozen=True)
class Tune:
    """A parsed monophonic tune: notes with beat strength (for metrical accents) and its length."""

    ref: TuneRef
    notes: tuple[NoteB, ...]
    length_q: float


def _corpus_dir(folder: str) -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus" / folder


def scan_abc(path: Path, collection: str) -> list[TuneRef]:
    """List the tunes of an ABC file from their text headers (no music21 parse: cheap).

    Why text: parsing a whole Essen file with music21 takes ~20 s; reading headers takes milliseconds,
    so a task can choose its tunes first and parse only those (music21 can parse one ``X:`` number).
    """
    refs: list[TuneRef] = []
    number, metres = None, set()

    def close() -> None:
        if number is not None and len(metres) == 1:
            refs.append(TuneRef(path, number, next(iter(metres)), collection))

    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("X:"):
            close()
            try:
                number, metres = int(line[2:].strip()), set()
            except ValueError:
                number = None
        elif number is not None:
            field = line[2:] if line.startswith("M:") else None
            inline = [m.split("]")[0] for m in line.split("[M:")[1:]]
            for m in ([field] if field is not None else []) + inline:
                metres.add(m.strip().replace(" ", ""))
    close()
    return refs


@functools.lru_cache(maxsize=8)
def folk_tunes(style: str) -> tuple[TuneRef, ...]:
    """Every single-metre tune of a collection in :data:`FOLK_COLLECTIONS`, in file/number order."""
    folder, prefixes = FOLK_COLLECTIONS[style]
    files = sorted(p for p in _corpus_dir(folder).glob("*.abc")
                   if prefixes is None or p.stem.startswith(prefixes))
    return tuple(r for f in files for r in scan_abc(f, style))


@functools.lru_cache(maxsize=2048)
def load_tune(ref: TuneRef) -> Tune:
    """Parse one tune (monophonic; chords keep their top note); ChoraleRejected-style errors → ``ValueError``."""
    from music21 import converter

    try:
        score = converter.parse(str(ref.path), number=ref.number)
    except Exception as exc:  # music21's ABC reader raises many kinds
        raise ValueError(f"{ref.id}: music21 cannot parse it ({exc})") from None
    # The metre label must be what music21 reads too, with regular bars: Essen tunes with irregular
    # bars make music21 insert other time signatures (e.g. 1/8), and their metre is doubtful.
    sigs = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    if "/" in ref.metre and sigs != {ref.metre}:
        raise ValueError(f"{ref.id}: header says {ref.metre} but music21 reads {sorted(sigs)}")
    measures = list(score.recurse().getElementsByClass("Measure"))
    if any(abs(m.duration.quarterLength - m.barDuration.quarterLength) > 1e-6 for m in measures[1:-1]):
        raise ValueError(f"{ref.id}: irregular bar lengths")
    notes: list[NoteB] = []
    for n in score.stripTies().flatten().notes:
        dur = float(n.quarterLength)
        if dur <= 0:
            continue
        strength = float(n.beatStrength) if n.beatStrength is not None else 0.5
        notes.append((float(n.offset), dur, int(max(p.midi for p in n.pitches)), strength))
    if len(notes) < 8:
        raise ValueError(f"{ref.id}: fewer than 8 notes")
    return Tune(ref, tuple(notes), max(o + d for o, d, _, _ in notes))

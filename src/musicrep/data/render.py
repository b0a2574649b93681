"""The offline renderer: exactly labelled task folders from scores and a SoundFont, no network.

Takes a task name from :data:`RENDERERS` (``pitch``, ``instrument``, ``key``, ``tagging``, ``tempo``,
``metre``, ``style``, and the ``demo`` preset = small key/instrument/pitch/tagging), an output folder and a size (``n`` items or ``minutes``), and gives task folders in the
:mod:`musicrep.data.task` format (16 kHz mono 16-bit FLAC + ``task.yaml`` + ``items.csv``) plus a
:class:`RenderReport` per folder (sizes, drops and the realtime factor).

Shape of every render, and why:

1. **plan** (main process): every random choice — which programs, pitches, chorales, transpositions,
   tempi, orchestrations, splits — is drawn here from one ``numpy`` generator seeded with ``seed``,
   producing a list of :class:`Job`. Workers draw nothing, so the output cannot depend on how jobs
   are scheduled. Single-note tasks first audit every GM program of the SoundFont
   (:func:`audit_programs`) so that programs that sound an octave off or not at all are never dealt
   to a split.
2. **render + verify** (1..N worker processes, SoundFont parsed once per process): each job is
   synthesised and *checked against its label* — a single note must be loud enough and its estimated
   pitch must match the MIDI number (octave-shifted programs, silent high notes and short-decay programs
   are dropped, see DESIGN.md); a tagging clip is rendered part by part and labelled with the families
   of the parts that are actually audible in it. Failing jobs are dropped and counted with a reason.
3. **write**: audio files named by item id, then the manifests, in plan order, validated by
   :meth:`musicrep.data.task.Task.load` (so a render can never produce a leaking split).

Same seed and options → byte-identical audio and manifests, whatever ``workers`` is.

Adding a task is adding one function decorated with :func:`register`.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field

from musicrep.data.scores import Chorale
from musicrep.data.splits import grouped_split
from musicrep.data.synth import GM_FAMILIES, Note, Synth, SynthError, gm_family, resolve_soundfont
from musicrep.data.task import Task, write_task
from musicrep.theory import KEYS

__all__ = [
    "RENDERERS",
    "Job",
    "RenderError",
    "RenderOptions",
    "RenderReport",
    "note_pitch",
    "register",
    "render_task",
]

SR = 16_000
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


class RenderError(Exception):
    """A render cannot start (unknown task, bad size, missing SoundFont); the message says what to do."""


class RenderOptions(BaseModel):
    """Options every renderer accepts."""

    model_config = ConfigDict(extra="forbid")

    n: int | None = Field(None, gt=0, description="Items to plan (before verification drops).")
    minutes: float | None = Field(None, gt=0, description="Plan about this many minutes of audio.")
    soundfont: str | None = Field(None, description="SoundFont name or path (None → TimGM6mb).")
    seed: int = Field(0, description="Seed of every random choice.")
    workers: int = Field(1, ge=1, description="Processes that render in parallel.")
    progress: bool = Field(True, description="Show a progress bar on stderr.")


@dataclass(frozen=True)
class Job:
    """One item to render: what to play, how to check it, and the manifest row it becomes.

    ``stems`` is a list of (program, notes) played on separate channels. ``check`` names an entry of
    :data:`_CHECKS`. ``row`` holds the manifest columns known at plan time (id, split, group, label,
    extra columns); the check may fill in the label (tagging).
    """

    id: str
    stems: tuple[tuple[int, tuple[Note, ...]], ...]
    duration: float
    check: str
    row: dict[str, Any]


@dataclass
class Rendered:
    """What a worker hands back for one job."""

    id: str
    kept: bool
    reason: str = ""
    label: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RenderReport:
    """Outcome of one task render: sizes, drops and speed."""

    name: str
    out: Path
    planned: int
    kept: int
    dropped: Counter
    audio_seconds: float  # audio synthesised (kept + dropped)
    kept_seconds: float
    wall_seconds: float
    summary_dict: dict[str, Any] = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / max(self.wall_seconds, 1e-9)

    def summary(self) -> str:
        drops = ", ".join(f"{k}: {v}" for k, v in self.dropped.most_common()) or "none"
        splits = " / ".join(f"{s} {self.summary_dict.get(s, {}).get('items', 0)}" for s in ("train", "valid", "test"))
        return (f"{self.name}: {self.kept}/{self.planned} items kept ({splits}), "
                f"{self.kept_seconds / 60:.1f} min of audio → {self.out}; dropped: {drops}; "
                f"{self.wall_seconds:.1f} s wall, {self.realtime_factor:.0f}× realtime")


# ---------------------------------------------------------------------- registry
@dataclass(frozen=True)
class _Entry:
    fn: Callable[[Path, RenderOptions], list[RenderReport]]
    description: str


#: Task name → renderer. Each renderer writes one or more task folders and returns their reports.
RENDERERS: dict[str, _Entry] = {}


def register(name: str, description: str) -> Callable:
    """Decorator: add a renderer ``fn(out, options) -> list[RenderReport]`` under ``name``."""

    def deco(fn: Callable[[Path, RenderOptions], list[RenderReport]]) -> Callable:
        RENDERERS[name] = _Entry(fn, description)
        return fn

    return deco


def render_task(task: str, out: str | os.PathLike[str], **options: Any) -> list[RenderReport]:
    """Render the task named ``task`` into ``out``; see :class:`RenderOptions` for the options."""
    if task not in RENDERERS:
        raise RenderError(f"unknown task {task!r}; choose one of: {', '.join(RENDERERS)}")
    opts = RenderOptions(**options)
    if opts.n is not None and opts.minutes is not None:
        raise RenderError("give n or minutes, not both")
    try:
        resolve_soundfont(opts.soundfont)
    except SynthError as exc:
        raise RenderError(str(exc)) from None
    return RENDERERS[task].fn(Path(out), opts)


# ---------------------------------------------------------------------- execution
_SYNTH: Synth | None = None


def _init_worker(soundfont: str | None) -> None:
    """Per-process setup: parse the SoundFont once."""
    global _SYNTH
    _SYNTH = Synth(soundfont, sample_rate=SR)


def _run_job(args: tuple[str, Job]) -> Rendered:
    out, job = args
    assert _SYNTH is not None
    try:
        audio, label, extra = _CHECKS[job.check](_SYNTH, job)
    except _Drop as drop:
        return Rendered(job.id, kept=False, reason=str(drop))
    except (SynthError, RuntimeError, ValueError) as exc:  # a bad item never stops the batch
        return Rendered(job.id, kept=False, reason=f"error: {exc}")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.95:  # keep headroom for 16-bit; a fixed rule, so still deterministic
        audio = audio * np.float32(0.95 / peak)
    path = Path(out) / job.row["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SR, format="FLAC", subtype="PCM_16")
    return Rendered(job.id, kept=True, label=label, extra=extra)


class _Runner:
    """Runs jobs in this process or in a pool of worker processes, created once per render command.

    Why one pool for a whole command: a worker's first job pays for imports (librosa) and the SoundFont
    parse; the demo renders four tasks and should pay that once, not four times. Workers are forked
    after the main process has warmed up, so they inherit the loaded modules.
    """

    def __init__(self, opts: RenderOptions) -> None:
        self.opts = opts
        self.soundfont = str(resolve_soundfont(opts.soundfont))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = ProcessPoolExecutor(self.opts.workers, mp_context=mp.get_context("fork"),
                                             initializer=_init_worker, initargs=(self.soundfont,))
        return self._pool

    def imap(self, fn: Callable, items: Sequence) -> Iterable:
        """``map(fn, items)`` in order, over the worker pool when there is one (used for parsing)."""
        if self.opts.workers > 1 and len(items) > 1:
            return self._executor().map(fn, items)
        return map(fn, items)

    def map(self, out: Path, jobs: Sequence[Job], desc: str) -> list[Rendered]:
        from tqdm import tqdm

        bar = dict(total=len(jobs), desc=desc, unit="item", disable=not self.opts.progress, leave=False)
        args = [(str(out), j) for j in jobs]
        if self.opts.workers > 1 and len(jobs) > 1:
            chunk = max(1, min(16, len(jobs) // (self.opts.workers * 8)))
            return list(tqdm(self._executor().map(_run_job, args, chunksize=chunk), **bar))
        if _SYNTH is None or str(_SYNTH.path) != self.soundfont:
            _init_worker(self.soundfont)
        return [_run_job(a) for a in tqdm(args, **bar)]


def _execute(name: str, out: Path, spec: dict[str, Any], jobs: Sequence[Job], runner: _Runner,
             t0: float) -> RenderReport:
    """Render ``jobs`` into ``out`` (audio + manifests) and report; ``t0`` is when planning began."""
    opts = runner.opts
    if (out / "audio").exists():
        shutil.rmtree(out / "audio")  # stale files from an earlier render would linger unlisted
    out.mkdir(parents=True, exist_ok=True)
    results = runner.map(out, jobs, f"render {name}")
    rows, dropped = [], Counter()
    for job, res in zip(jobs, results, strict=True):
        if not res.kept:
            dropped[res.reason] += 1
            continue
        row = dict(job.row)
        if res.label is not None:
            row["label"] = res.label
        row.update(res.extra)
        rows.append(row)
    spec = dict(spec)
    spec.setdefault("sample_rate", SR)
    spec["provenance"] = {
        **spec.get("provenance", {}),
        "renderer": f"musicrep.data.render:{name}",
        "soundfont": Path(runner.soundfont).name,
        "seed": opts.seed,
        "planned": len(jobs),
        "dropped": dict(sorted(dropped.items())),
    }
    task = write_task(out, spec, rows)
    return RenderReport(
        name=name, out=out, planned=len(jobs), kept=len(rows), dropped=dropped,
        audio_seconds=float(sum(j.duration for j in jobs)), kept_seconds=float(task.items["duration"].sum()),
        wall_seconds=time.perf_counter() - t0, summary_dict=task.summary(),
    )


# ---------------------------------------------------------------------- checks (run in workers)
class _Drop(Exception):
    """Raised by a check: the job's audio does not carry its label; the message is the reason."""


def _frame_db(y: np.ndarray, frame: int = 1024, hop: int = 256) -> np.ndarray:
    """Frame RMS in dBFS (uncentred frames, as ``librosa.feature.rms(center=False)``; numpy only so that
    rendering pieces never pays for importing librosa)."""
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
    db = _frame_db(y, frame=frame, hop=hop)
    m = min(len(est), len(db))
    sounding = db[:m] > db[:m].max() - 20.0
    if not sounding.any() or f0 <= 0:
        return float("nan")
    return float(np.median(librosa.hz_to_midi(est[:m][sounding])))


def _check_note(synth: Synth, job: Job) -> tuple[np.ndarray, Any, dict]:
    (program, notes), = job.stems
    y = synth.render(notes, {0: program}, job.duration)
    midi = notes[0].pitch
    db = _frame_db(y[: int(NOTE_OFF * SR)])
    if db.max() < AUDIBLE_DB:
        raise _Drop("inaudible")
    if (db > db.max() - SOUNDING_DB).sum() * 256 / SR < MIN_SOUNDING:
        raise _Drop("too short")
    est = note_pitch(y[: int(PITCH_SECONDS * SR)], SR, midi)
    if not np.isfinite(est) or abs(est - midi) > PITCH_TOLERANCE:
        raise _Drop("octave off" if np.isfinite(est) and abs(abs(est - midi) - 12) <= 1 else "pitch mismatch")
    return y, None, {}


def _check_piece(synth: Synth, job: Job) -> tuple[np.ndarray, Any, dict]:
    programs = {ch: prog for ch, (prog, _) in enumerate(job.stems)}
    notes = [n for _, part in job.stems for n in part]
    y = synth.render(notes, programs, job.duration)
    if _frame_db(y).max() < AUDIBLE_DB:
        raise _Drop("inaudible")
    return y, None, {}


def _check_stems(synth: Synth, job: Job) -> tuple[np.ndarray, Any, dict]:
    """Render each part alone, label the clip with the families of the parts that are audible."""
    mix = np.zeros(int(round(job.duration * SR)), dtype=np.float32)
    audible = []
    for prog, part in job.stems:
        y = synth.render(part, {0: prog}, job.duration)
        if part and _frame_db(y).max() >= AUDIBLE_DB:
            audible.append(prog)
            mix += y
    if not audible:
        raise _Drop("inaudible")
    families = sorted({gm_family(p) for p in audible}, key=GM_FAMILIES.index)
    return mix, families, {"programs": ";".join(str(p) for p in audible)}


_CHECKS: dict[str, Callable[[Synth, Job], tuple[np.ndarray, Any, dict]]] = {
    "note": _check_note,
    "piece": _check_piece,
    "stems": _check_stems,
}


# ---------------------------------------------------------------------- planning helpers
def _size(opts: RenderOptions, item_seconds: float, default: int | None) -> int | None:
    if opts.n is not None:
        return opts.n
    if opts.minutes is not None:
        return max(1, math.ceil(opts.minutes * 60 / item_seconds))
    return default


def _fractions(splits: tuple[float, float]) -> tuple[float, float, float]:
    """(valid, test) shares of the plan functions → :func:`grouped_split` fractions (train = the rest)."""
    valid, test = splits
    return (1.0 - valid - test, valid, test)


# ---------------------------------------------------------------------- single notes
#: MIDI range tried per GM family (pitches outside are not planned; inside, verification still drops).
FAMILY_RANGE = {
    "piano": (21, 108), "chromatic_percussion": (48, 96), "organ": (36, 96), "guitar": (40, 88),
    "bass": (28, 67), "strings": (36, 96), "ensemble": (36, 96), "brass": (36, 84), "reed": (36, 90),
    "pipe": (48, 96), "synth_lead": (36, 96), "synth_pad": (36, 96), "synth_effects": (36, 96),
    "ethnic": (36, 96),
}  # fmt: skip
NOTE_FAMILIES = tuple(FAMILY_RANGE)  # GM families 0–13: the pitched ones (percussive / effects left out)
VELOCITIES = (25, 50, 75, 100, 127)


def _deal(programs: Sequence[int], split_counts: tuple[int, int, int]) -> dict[int, str]:
    """Deal programs to splits: test and valid get their counts first while train keeps at least one."""
    k = len(programs)
    _, va, te = split_counts
    te = min(te, max(0, k - 1))
    va = min(va, max(0, k - 1 - te))
    tr = min(split_counts[0], k - te - va) if sum(split_counts) >= k else split_counts[0]
    labels = ["train"] * tr + ["valid"] * va + ["test"] * te
    return dict(zip(programs, labels, strict=False))


def audit_programs(synth: Synth, programs: Sequence[int]) -> dict[int, str]:
    """Programs whose reference notes fail the single-note check, with the reason.

    Each program plays three notes across its family's range; it is usable when at least two pass.
    Why: some SoundFont presets sound an octave away from the written note (organ 16' stops, OPL-3
    programs 55 and 86) or hardly at all; dealing only usable programs to splits keeps every family
    present in train, valid and test. Depends on the SoundFont only, so it is deterministic.
    """
    bad = {}
    for prog in programs:
        if not synth.has_program(int(prog)):
            bad[int(prog)] = "missing"
            continue
        lo, hi = FAMILY_RANGE[gm_family(int(prog))]
        reasons = []
        for pitch in (lo + (hi - lo) // 4, (lo + hi) // 2, hi - (hi - lo) // 4):
            job = Job("audit", ((int(prog), (Note(0.0, NOTE_OFF, pitch, 100),)),), NOTE_SECONDS, "note", {})
            try:
                _check_note(synth, job)
            except _Drop as drop:
                reasons.append(str(drop))
        if len(reasons) >= 2:
            bad[int(prog)] = Counter(reasons).most_common(1)[0][0]
    return bad


def plan_notes(rng: np.random.Generator, families: Sequence[str] = NOTE_FAMILIES, programs_per_family: int = 8,
               split_counts: tuple[int, int, int] = (6, 1, 1), pitches: Sequence[int] | None = None,
               velocities: Sequence[int] = VELOCITIES, n: int | None = None,
               exclude: Container[int] = frozenset()) -> list[Job]:
    """NSynth-like grid of single notes (4 s, note-off at 3 s), split by program.

    Each family's usable programs (not in ``exclude``, see :func:`audit_programs`) are shuffled, the
    first ``programs_per_family`` kept and dealt ``split_counts`` = (train, valid, test), so test
    instruments are never heard in training. ``pitches`` overrides the per-family ranges. With ``n``,
    a seeded random subset of the grid is kept (in grid order).
    """
    jobs = []
    for fam in families:
        f = GM_FAMILIES.index(fam)
        progs = [int(p) for p in rng.permutation(np.arange(8 * f, 8 * f + 8)) if int(p) not in exclude]
        split_of = _deal(progs[:programs_per_family], split_counts)
        for prog, split in split_of.items():
            lo, hi = FAMILY_RANGE[fam]
            for pitch in pitches if pitches is not None else range(lo, hi + 1):
                for vel in velocities:
                    item = f"p{prog:03d}-m{pitch:03d}-v{vel:03d}"
                    jobs.append(Job(
                        id=item, stems=((prog, (Note(0.0, NOTE_OFF, int(pitch), int(vel)),)),),
                        duration=NOTE_SECONDS, check="note",
                        row=dict(id=item, path=f"audio/{item}.flac", split=split, label=fam,
                                 duration=NOTE_SECONDS, group=f"program{prog:03d}", program=prog,
                                 family=fam, pitch=int(pitch), velocity=int(vel)),
                    ))
    if n is not None and n < len(jobs):
        keep = np.sort(rng.choice(len(jobs), size=n, replace=False))
        jobs = [jobs[i] for i in keep]
    return jobs


def _note_audit(runner: _Runner, families: Sequence[str]) -> dict[int, str]:
    """Audit the programs of ``families`` with the render's SoundFont, in the main process.

    Running it here (not in a worker) also imports and warms librosa before the worker pool forks.
    """
    return dict(_cached_audit(runner.soundfont, tuple(families)))


@functools.lru_cache(maxsize=8)
def _cached_audit(soundfont: str, families: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    progs = [p for fam in families for p in range(8 * GM_FAMILIES.index(fam), 8 * GM_FAMILIES.index(fam) + 8)]
    return tuple(sorted(audit_programs(Synth(soundfont, sample_rate=SR), progs).items()))


def _note_spec(kind: str, jobs: Sequence[Job], name: str, excluded: dict[int, str]) -> dict[str, Any]:
    common = dict(
        window_seconds=NOTE_SECONDS, hop_seconds=NOTE_SECONDS,
        provenance={"source": "single notes per General MIDI program (NSynth-like), split by program",
                    "excluded_programs": {int(k): v for k, v in sorted(excluded.items())}},
    )
    if kind == "pitch":
        pitches = sorted({j.row["pitch"] for j in jobs})
        return dict(name=name, kind="pitch", vocabulary=[str(p) for p in pitches],
                    metrics=["pitch_accuracy", "chroma_accuracy"],
                    description="MIDI pitch of a single synthesised note; test programs are unseen.", **common)
    fams = [f for f in GM_FAMILIES if f in {j.row["family"] for j in jobs}]
    return dict(name=name, kind="multiclass", vocabulary=fams, metrics=["accuracy"],
                description="General MIDI family of a single synthesised note; test programs are unseen.",
                **common)


def _as_pitch_rows(jobs: Sequence[Job]) -> list[Job]:
    return [Job(j.id, j.stems, j.duration, j.check, {**j.row, "label": str(j.row["pitch"])}) for j in jobs]


def _render_notes(kind: str, out: Path, opts: RenderOptions) -> list[RenderReport]:
    t0 = time.perf_counter()
    with _Runner(opts) as runner:
        excluded = _note_audit(runner, NOTE_FAMILIES)
        jobs = plan_notes(np.random.default_rng(opts.seed), n=_size(opts, NOTE_SECONDS, None), exclude=excluded)
        if kind == "pitch":
            jobs = _as_pitch_rows(jobs)
        return [_execute(kind, out, _note_spec(kind, jobs, kind, excluded), jobs, runner, t0)]


@register("pitch", "NSynth-like single notes labelled with their MIDI pitch (split by program).")
def render_pitch(out: Path, opts: RenderOptions) -> list[RenderReport]:
    return _render_notes("pitch", out, opts)


@register("instrument", "NSynth-like single notes labelled with their GM instrument family (split by program).")
def render_instrument(out: Path, opts: RenderOptions) -> list[RenderReport]:
    return _render_notes("instrument", out, opts)


# ---------------------------------------------------------------------- chorales
KEY_PROGRAMS = (0, 6, 19, 48, 52)  # piano, harpsichord, church organ, string ensemble, choir
TRANSPOSITIONS = tuple(range(-6, 6))  # 12 distinct keys per chorale, register kept within ±6 semitones


def _load_or_none(path: Path) -> Chorale | None:
    from musicrep.data.scores import ChoraleRejected, load_chorale

    try:
        return load_chorale(path)
    except ChoraleRejected:
        return None


def _chorales(rng: np.random.Generator, count: int | None, runner: _Runner | None = None,
              balance_modes: bool = False) -> list[Chorale]:
    """``count`` usable chorales (one per work) in a seeded order (all of them when ``count`` is None).

    ``balance_modes`` caps each mode at half of ``count`` (rounded up): about two thirds of the encoded
    chorales are major, and a small key task needs minor keys in every split.

    Parsing (music21) is the slow part of planning a chorale task, so with a multi-worker ``runner`` the
    files are parsed in parallel, in batches taken in the seeded order; the result is the same list.
    """
    from musicrep.data.scores import chorale_paths

    paths = list(chorale_paths())
    order = [paths[i] for i in rng.permutation(len(paths))]
    chosen: list[Chorale] = []
    works: set[str] = set()
    i = 0
    while i < len(order) and (count is None or len(chosen) < count):
        size = len(order) - i if count is None else max(1, math.ceil((count - len(chosen)) * 1.3))
        batch, i = order[i:i + size], i + size
        for ch in runner.imap(_load_or_none, batch) if runner is not None else map(_load_or_none, batch):
            if ch is None or ch.work in works:  # one version per work: variants are near-duplicates
                continue
            if balance_modes and count is not None and sum(c.mode == ch.mode for c in chosen) >= math.ceil(count / 2):
                continue
            works.add(ch.work)
            chosen.append(ch)
            if count is not None and len(chosen) >= count:
                break
    if not chosen:
        raise RenderError("no usable chorale found in the music21 corpus")
    return chosen


def _timed(part: Sequence[tuple[float, float, int]], bpm: float, start_s: float, end_s: float,
           transpose: int, channel: int, velocity: int) -> tuple[Note, ...]:
    """Quarter-note events → Notes in seconds inside [start_s, end_s), shifted to start at 0."""
    spq = 60.0 / bpm
    out = []
    for onset, dur, midi in part:
        s, e = onset * spq, (onset + dur) * spq
        if e <= start_s or s >= end_s:
            continue
        out.append(Note(max(s, start_s) - start_s, min(e, end_s) - start_s, midi + transpose, velocity, channel))
    return tuple(out)


def plan_key(rng: np.random.Generator, n_chorales: int | Sequence[Chorale] | None, excerpt: float = 30.0,
             splits: tuple[float, float] = (0.1, 0.1)) -> list[Job]:
    """Chorales × 12 transpositions, one program per item, split by tune, first ``excerpt`` s."""
    chorales = _chorales(rng, n_chorales) if n_chorales is None or isinstance(n_chorales, int) else list(n_chorales)
    mode_of_tune: dict[str, str] = {}  # a tune is stratified by the mode of its first chorale
    for c in chorales:
        mode_of_tune.setdefault(c.tune, c.mode)
    split_of = grouped_split(list(mode_of_tune), list(mode_of_tune.values()), fractions=_fractions(splits), rng=rng)
    jobs = []
    for ch in chorales:
        for k in TRANSPOSITIONS:
            program = int(rng.choice(KEY_PROGRAMS))
            bpm = float(np.round(rng.uniform(70, 100), 1))
            length = ch.length_q * 60.0 / bpm + 1.0
            dur = float(min(excerpt, length))
            stems = tuple((program, _timed(part, bpm, 0.0, dur - 0.5, k, v, 90)) for v, part in enumerate(ch.parts))
            item = f"{ch.id}-t{'m' if k < 0 else 'p'}{abs(k)}"
            jobs.append(Job(
                id=item, stems=stems, duration=dur, check="piece",
                row=dict(id=item, path=f"audio/{item}.flac", split=split_of[ch.tune], label=ch.key(k), duration=dur,
                         group=ch.tune, chorale=ch.id, transpose=k, program=program, bpm=bpm),
            ))
    return jobs


@register("key", "Bach chorales (music21) × 12 transpositions → 24 keys, split by chorale; MIREX score.")
def render_key(out: Path, opts: RenderOptions, excerpt: float = 30.0) -> list[RenderReport]:
    t0 = time.perf_counter()
    size = _size(opts, excerpt, None)
    spec = dict(name="key", kind="key", vocabulary=list(KEYS), metrics=["mirex", "accuracy"],
                description="Global key of a rendered Bach chorale excerpt (24 keys, mir_eval spelling).",
                provenance={"source": "music21 corpus: Bach chorales with an encoded key whose final bass "
                                      "note is the tonic; 12 transpositions each; split by chorale"})
    rng = np.random.default_rng(opts.seed)
    with _Runner(opts) as runner:
        chorales = _chorales(rng, None if size is None else math.ceil(size / len(TRANSPOSITIONS)), runner,
                             balance_modes=True)
        jobs = plan_key(rng, chorales, excerpt)[:size]
        return [_execute("key", out, spec, jobs, runner, t0)]


TAG_CLIP = 10.0  # seconds per tagging clip
TAG_CLIPS_PER_CHORALE = 5  # each a different excerpt, orchestration, transposition and tempo
#: Families the tagging task orchestrates with (pitched, distinct timbres).
TAG_FAMILIES = ("piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "brass", "reed",
                "pipe", "synth_lead")


def plan_tagging(rng: np.random.Generator, n_chorales: int | Sequence[Chorale] | None,
                 clips_per_chorale: int = TAG_CLIPS_PER_CHORALE, clip: float = TAG_CLIP, families: Sequence[str] = TAG_FAMILIES,
                 splits: tuple[float, float] = (0.1, 0.1)) -> list[Job]:
    """10 s clips of chorales re-orchestrated: each clip keeps 1–4 random parts, each on a random program."""
    chorales = _chorales(rng, n_chorales) if n_chorales is None or isinstance(n_chorales, int) else list(n_chorales)
    split_of = grouped_split([c.tune for c in chorales], fractions=_fractions(splits), rng=rng)
    jobs = []
    for ch in chorales:
        for c in range(clips_per_chorale):
            bpm = float(np.round(rng.uniform(70, 110), 1))
            length = ch.length_q * 60.0 / bpm
            start = float(np.round(rng.uniform(0, max(0.0, length - clip)), 2))
            k = int(rng.integers(-3, 4))
            n_parts = int(rng.integers(1, 5))
            parts = sorted(rng.choice(4, size=n_parts, replace=False).tolist())
            stems = []
            for p in parts:
                fam = GM_FAMILIES.index(str(rng.choice(list(families))))
                program = int(8 * fam + rng.integers(0, 8))
                stems.append((program, _timed(ch.parts[p], bpm, start, start + clip - 0.5, k, 0, 90)))
            item = f"{ch.id}-c{c}"
            jobs.append(Job(
                id=item, stems=tuple(stems), duration=clip, check="stems",
                row=dict(id=item, path=f"audio/{item}.flac", split=split_of[ch.tune], label="", duration=clip,
                         group=ch.tune, chorale=ch.id, transpose=k, bpm=bpm, start=start),
            ))
    return jobs


@register("tagging", "Multi-label instrument-family tagging of 10 s re-orchestrated chorale clips; mAP, ROC-AUC.")
def render_tagging(out: Path, opts: RenderOptions) -> list[RenderReport]:
    t0 = time.perf_counter()
    size = _size(opts, TAG_CLIP, None)
    rng = np.random.default_rng(opts.seed)
    with _Runner(opts) as runner:
        chorales = _chorales(rng, None if size is None else math.ceil(size / TAG_CLIPS_PER_CHORALE), runner)
        jobs = plan_tagging(rng, chorales)[:size]
        return [_execute("tagging", out, _tagging_spec(), jobs, runner, t0)]


def _tagging_spec(families: Sequence[str] = TAG_FAMILIES) -> dict[str, Any]:
    return dict(name="tagging", kind="multilabel", vocabulary=list(families), metrics=["map", "roc_auc"],
                description="Which GM instrument families are audible in a 10 s multi-part clip.",
                provenance={"source": "music21 Bach chorales, parts dropped and re-orchestrated with random "
                                      "GM programs; labels = families of the parts audible in the clip"})


TEMPO_RANGE = (60.0, 200.0)  # BPM of the quarter-note beat, drawn log-uniformly
TEMPO_CLIP = 20.0
TEMPO_CLIPS_PER_CHORALE = 4


def plan_tempo(rng: np.random.Generator, n_chorales: int | Sequence[Chorale] | None,
               clips_per_chorale: int = TEMPO_CLIPS_PER_CHORALE, clip: float = TEMPO_CLIP,
               splits: tuple[float, float] = (0.1, 0.1)) -> list[Job]:
    """Chorale excerpts re-timed to a steady tempo drawn log-uniformly in 60–200 BPM (quarter-note beat).

    Why chorales: their surface rhythm is mostly quarter notes, so the beat is unambiguous, and the
    renderer plays them strictly in time (fermatas are not held), so the label is exact.
    """
    chorales = _chorales(rng, n_chorales) if n_chorales is None or isinstance(n_chorales, int) else list(n_chorales)
    split_of = grouped_split([c.tune for c in chorales], fractions=_fractions(splits), rng=rng)
    lo, hi = np.log(TEMPO_RANGE[0]), np.log(TEMPO_RANGE[1])
    jobs = []
    for ch in chorales:
        for c in range(clips_per_chorale):
            bpm = float(np.round(np.exp(rng.uniform(lo, hi)), 1))
            length = ch.length_q * 60.0 / bpm
            start_beat = float(rng.integers(0, max(1, int((length - clip) * bpm / 60.0)))) if length > clip else 0.0
            start = start_beat * 60.0 / bpm  # start on a beat
            dur = float(min(clip, length - start + 1.0))
            program = int(rng.choice(KEY_PROGRAMS[:2]))  # piano / harpsichord: clear onsets
            k = int(rng.integers(-3, 4))
            stems = tuple((program, _timed(part, bpm, start, start + dur - 0.5, k, v, 90))
                          for v, part in enumerate(ch.parts))
            item = f"{ch.id}-c{c}"
            jobs.append(Job(
                id=item, stems=stems, duration=dur, check="piece",
                row=dict(id=item, path=f"audio/{item}.flac", split=split_of[ch.tune], label=f"{bpm:.1f}",
                         duration=dur, group=ch.tune, chorale=ch.id, transpose=k, program=program, start=start),
            ))
    return jobs


@register("tempo", "Chorale excerpts at a steady 60–200 BPM (quarter-note beat) → tempo regression.")
def render_tempo(out: Path, opts: RenderOptions) -> list[RenderReport]:
    t0 = time.perf_counter()
    size = _size(opts, TEMPO_CLIP, None)
    rng = np.random.default_rng(opts.seed)
    spec = dict(name="tempo", kind="regression", vocabulary=[], metrics=["r2", "tempo_acc1", "tempo_acc2"],
                description="Tempo in BPM of the quarter-note beat of a 20 s chorale excerpt (steady tempo), "
                            "scored by r², accuracy within 4 % and octave-tolerant accuracy (×2, ×1/2, ×3, ×1/3).",
                provenance={"source": "music21 Bach chorales re-timed, piano or harpsichord; split by chorale",
                            "beat": "quarter note", "tempo_range_bpm": list(TEMPO_RANGE)})
    with _Runner(opts) as runner:
        chorales = _chorales(rng, None if size is None else math.ceil(size / TEMPO_CLIPS_PER_CHORALE), runner)
        jobs = plan_tempo(rng, chorales)[:size]
        return [_execute("tempo", out, spec, jobs, runner, t0)]


# ---------------------------------------------------------------------- folk tunes: metre, style
METRES = ("2/4", "3/4", "4/4", "6/8")
FOLK_PROGRAMS = (0, 22, 24, 40, 56, 65, 68, 71, 73, 105)  # piano, harmonica, guitar, violin, trumpet, …
FOLK_CLIP = 15.0
FOLK_PER_CLASS = 400  # default size: items per class (balanced)


def _load_tune_or_none(ref: Any) -> Any:
    from musicrep.data.scores import load_tune

    try:
        return load_tune(ref)
    except ValueError:
        return None


def plan_folk(rng: np.random.Generator, candidates: dict[str, Sequence[Any]], per_label: int,
              runner: _Runner | None = None, clip: float = FOLK_CLIP,
              splits: tuple[float, float] = (0.1, 0.1)) -> list[Job]:
    """Up to ``per_label`` tunes per label, each rendered once (first ``clip`` s), split by tune.

    Melodies are played with metrical accents (velocity rises with music21's beat strength), as a
    player would, so metre is audible without adding a drum track that would give it away.
    """
    chosen: list[tuple[str, Any]] = []
    for label, refs in candidates.items():
        order = [refs[i] for i in rng.permutation(len(refs))]
        got, i = 0, 0
        while got < per_label and i < len(order):
            size = max(1, math.ceil((per_label - got) * 1.2))
            batch, i = order[i:i + size], i + size
            for tune in runner.imap(_load_tune_or_none, batch) if runner is not None else map(_load_tune_or_none, batch):
                if tune is not None and got < per_label:
                    chosen.append((label, tune))
                    got += 1
    split_of = grouped_split([t.ref.id for _, t in chosen], fractions=_fractions(splits), rng=rng)
    jobs = []
    for label, tune in chosen:
        bpm = float(np.round(rng.uniform(80, 140), 1))
        k = int(rng.integers(-3, 4))
        program = int(rng.choice(FOLK_PROGRAMS))
        spq = 60.0 / bpm
        dur = float(min(clip, tune.length_q * spq + 1.0))
        notes = tuple(Note(o * spq, min((o + d) * spq, dur - 0.5), m + k, int(55 + 60 * st))
                      for o, d, m, st in tune.notes if o * spq < dur - 0.5)
        item = tune.ref.id
        jobs.append(Job(
            id=item, stems=((program, notes),), duration=dur, check="piece",
            row=dict(id=item, path=f"audio/{item}.flac", split=split_of[item], label=label, duration=dur,
                     group=item, metre=tune.ref.metre, collection=tune.ref.collection, transpose=k,
                     program=program, bpm=bpm),
        ))
    return jobs


def _render_folk(name: str, out: Path, opts: RenderOptions, candidates: Callable[[], dict[str, Sequence[Any]]],
                 spec: dict[str, Any]) -> list[RenderReport]:
    t0 = time.perf_counter()
    cands = candidates()
    size = _size(opts, FOLK_CLIP, None)
    per_label = FOLK_PER_CLASS if size is None else math.ceil(size / len(cands))
    with _Runner(opts) as runner:
        jobs = plan_folk(np.random.default_rng(opts.seed), cands, per_label, runner)
        if size is not None:
            jobs = jobs[:size] if len(jobs) <= size else [jobs[i] for i in sorted(
                np.random.default_rng(opts.seed).choice(len(jobs), size, replace=False))]
        return [_execute(name, out, spec, jobs, runner, t0)]


def _metre_candidates() -> dict[str, Sequence[Any]]:
    from musicrep.data.scores import folk_tunes

    tunes = folk_tunes("german")
    return {m: [t for t in tunes if t.metre == m] for m in METRES}


def _style_candidates() -> dict[str, Sequence[Any]]:
    from musicrep.data.scores import FOLK_COLLECTIONS, folk_tunes

    return {style: folk_tunes(style) for style in FOLK_COLLECTIONS}


@register("metre", "German folk songs (Essen, music21) in 2/4, 3/4, 4/4 or 6/8, played with metrical accents.")
def render_metre(out: Path, opts: RenderOptions) -> list[RenderReport]:
    spec = dict(name="metre", kind="multiclass", vocabulary=list(METRES), metrics=["accuracy"],
                description="Time signature of a 15 s monophonic folk-song excerpt (2/4, 3/4, 4/4, 6/8).",
                provenance={"source": "music21 corpus essenFolksong (German collections), tunes with one "
                                      "metre; velocity follows beat strength; split by tune"})
    return _render_folk("metre", out, opts, _metre_candidates, spec)


@register("style", "Folk collections as styles: German and Chinese (Essen), Irish (O'Neill), Scottish (Aird).")
def render_style(out: Path, opts: RenderOptions) -> list[RenderReport]:
    from musicrep.data.scores import FOLK_COLLECTIONS

    spec = dict(name="style", kind="multiclass", vocabulary=list(FOLK_COLLECTIONS), metrics=["accuracy"],
                description="Which folk tradition a 15 s monophonic tune comes from (genre-like).",
                provenance={"source": "music21 corpus: essenFolksong (German, Chinese), oneills1850 (Irish), "
                                      "airdsAirs (Scottish); random GM melody program; split by tune"})
    return _render_folk("style", out, opts, _style_candidates, spec)


# ---------------------------------------------------------------------- demo preset
# Sized so that `make demo` (render + every representation available here + probes) stays under 10 min
# on 2 cores: ~24 min of notes, ~20 min of key excerpts, ~8 min of tagging clips.
DEMO_NOTE_FAMILIES = ("piano", "organ", "guitar", "strings", "brass", "reed")
DEMO_PITCHES = range(60, 72)  # one octave: 12 pitch classes, 18 training notes each
DEMO_PROGRAMS = (3, 1, 1)  # programs per family in train / valid / test (test instruments are unseen)
DEMO_CHORALES = 10  # key: × 12 transpositions × 10 s; tagging: × 5 clips × 10 s (parsing is the slow part)
DEMO_KEY_EXCERPT = 10.0
DEMO_TAG_CLIPS = 5


def link_task(src: Task, out: Path, spec: dict[str, Any], label_column: str) -> Task:
    """A second task over the same audio (hard links, copies where links fail) with another label column."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "audio").exists():
        shutil.rmtree(out / "audio")
    rows = src.items.copy()
    for rel in rows["path"]:
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src.root / rel, dst)
        except OSError:
            shutil.copyfile(src.root / rel, dst)
    rows["label"] = rows[label_column].astype(str)
    spec = {**spec, "provenance": {**src.spec.provenance, **spec.get("provenance", {})}}
    return write_task(out, spec, rows)


@register("demo", "Small key, instrument, pitch and tagging tasks (OUT/key, OUT/instrument, …) in under a minute.")
def render_demo(out: Path, opts: RenderOptions) -> list[RenderReport]:
    if opts.n is not None or opts.minutes is not None:
        raise RenderError("the demo preset has fixed sizes; --n/--minutes apply to single tasks")
    reports = []
    rng = np.random.default_rng(opts.seed)
    with _Runner(opts) as runner:
        t0 = time.perf_counter()
        excluded = _note_audit(runner, DEMO_NOTE_FAMILIES)
        jobs = plan_notes(rng, DEMO_NOTE_FAMILIES, programs_per_family=sum(DEMO_PROGRAMS), split_counts=DEMO_PROGRAMS,
                          pitches=DEMO_PITCHES, velocities=(100,), exclude=excluded)
        spec = _note_spec("instrument", jobs, "instrument", excluded)
        rep = _execute("instrument", out / "instrument", spec, jobs, runner, t0)
        reports.append(rep)
        t1 = time.perf_counter()
        inst = Task.load(out / "instrument")
        pitch = link_task(inst, out / "pitch", _note_spec("pitch", _as_pitch_rows(jobs), "pitch", excluded), "pitch")
        reports.append(RenderReport("pitch", out / "pitch", rep.planned, len(pitch), rep.dropped, 0.0,
                                    float(pitch.items["duration"].sum()), time.perf_counter() - t1, pitch.summary()))

        t0 = time.perf_counter()
        chorales = _chorales(rng, DEMO_CHORALES, runner, balance_modes=True)
        key_jobs = plan_key(rng, chorales, excerpt=DEMO_KEY_EXCERPT, splits=(0.2, 0.2))
        spec = dict(name="key", kind="key", vocabulary=list(KEYS), metrics=["mirex", "accuracy"],
                    description=f"Global key of a rendered Bach chorale excerpt (demo: {DEMO_CHORALES} chorales "
                                "× 12 keys).",
                    provenance={"source": "music21 Bach chorales × 12 transpositions; split by chorale"})
        reports.append(_execute("key", out / "key", spec, key_jobs, runner, t0))

        t0 = time.perf_counter()
        tag_jobs = plan_tagging(rng, chorales, clips_per_chorale=DEMO_TAG_CLIPS, splits=(0.2, 0.2))
        reports.append(_execute("tagging", out / "tagging", _tagging_spec(), tag_jobs, runner, t0))
    return reports

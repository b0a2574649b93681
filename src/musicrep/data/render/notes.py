"""Single-note tasks, ``pitch`` and ``instrument``: an NSynth-like grid of 4 s notes, split by program.

Before planning, every GM program of the families is auditioned with the render's SoundFont
(:func:`audit_programs`), so programs that sound an octave off or not at all are never dealt to a split;
each planned note is then checked in a worker (:func:`musicrep.data.render.checks.check_note`).
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Container, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musicrep.data.render.base import SR, Job, RenderOptions, RenderReport, planned_size, register
from musicrep.data.render.checks import NOTE_OFF, NOTE_SECONDS, Drop, check_note
from musicrep.data.render.runner import Runner, execute
from musicrep.data.synth import GM_FAMILIES, Note, Synth, gm_family

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
                check_note(synth, job)
            except Drop as drop:
                reasons.append(str(drop))
        if len(reasons) >= 2:
            bad[int(prog)] = Counter(reasons).most_common(1)[0][0]
    return bad


def plan_notes(rng: np.random.Generator, families: Sequence[str] = NOTE_FAMILIES, programs_per_family: int = 8,
               split_counts: tuple[int, int, int] = (6, 1, 1), pitches: Sequence[int] | None = None,
               velocities: Sequence[int] = VELOCITIES, n: int | None = None,
               exclude: Container[int] = frozenset(),
               pitches_per_split: Mapping[str, int] | None = None) -> list[Job]:
    """NSynth-like grid of single notes (4 s, note-off at 3 s), split by program.

    Each family's usable programs (not in ``exclude``, see :func:`audit_programs`) are shuffled, the
    first ``programs_per_family`` kept and dealt ``split_counts`` = (train, valid, test), so test
    instruments are never heard in training. ``pitches`` overrides the per-family ranges. With
    ``pitches_per_split`` (split → count), each program of that split plays a seeded random subset of that
    many of its pitches (in pitch order), so a wide pitch range costs fewer notes where fewer are needed
    (the demo: many test notes for a tight CI, fewer for selection). With ``n``, a seeded random subset
    of the grid is kept (in grid order).
    """
    jobs = []
    for fam in families:
        f = GM_FAMILIES.index(fam)
        progs = [int(p) for p in rng.permutation(np.arange(8 * f, 8 * f + 8)) if int(p) not in exclude]
        split_of = _deal(progs[:programs_per_family], split_counts)
        for prog, split in split_of.items():
            lo, hi = FAMILY_RANGE[fam]
            grid = list(pitches if pitches is not None else range(lo, hi + 1))
            if pitches_per_split is not None and pitches_per_split.get(split, len(grid)) < len(grid):
                grid = sorted(int(p) for p in rng.choice(grid, size=pitches_per_split[split], replace=False))
            for pitch in grid:
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


def audit_families(runner: Runner, families: Sequence[str]) -> dict[int, str]:
    """Audit the programs of ``families`` with the render's SoundFont, in the main process (cached).

    Running it here (not in a worker) also imports and warms librosa before the worker pool forks.
    """
    return dict(_cached_audit(runner.soundfont, tuple(families)))


@functools.lru_cache(maxsize=8)
def _cached_audit(soundfont: str, families: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    progs = [p for fam in families for p in range(8 * GM_FAMILIES.index(fam), 8 * GM_FAMILIES.index(fam) + 8)]
    return tuple(sorted(audit_programs(Synth(soundfont, sample_rate=SR), progs).items()))


def note_spec(kind: str, jobs: Sequence[Job], name: str, excluded: dict[int, str]) -> dict[str, Any]:
    """``task.yaml`` fields of a single-note task: ``kind`` ``"pitch"`` (MIDI numbers planned in ``jobs``)
    or anything else for the GM-family task; ``excluded`` (program → reason) goes into the provenance."""
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


def as_pitch_jobs(jobs: Sequence[Job]) -> list[Job]:
    """The same notes labelled with their MIDI pitch instead of their GM family."""
    return [Job(j.id, j.stems, j.duration, j.check, {**j.row, "label": str(j.row["pitch"])}) for j in jobs]


def _render_notes(kind: str, out: Path, opts: RenderOptions) -> list[RenderReport]:
    t0 = time.perf_counter()
    with Runner(opts) as runner:
        excluded = audit_families(runner, NOTE_FAMILIES)
        jobs = plan_notes(np.random.default_rng(opts.seed), n=planned_size(opts, NOTE_SECONDS, None),
                          exclude=excluded)
        if kind == "pitch":
            jobs = as_pitch_jobs(jobs)
        return [execute(kind, out, note_spec(kind, jobs, kind, excluded), jobs, runner, t0)]


@register("pitch", "NSynth-like single notes labelled with their MIDI pitch (split by program).")
def render_pitch(out: Path, opts: RenderOptions) -> list[RenderReport]:
    """Single notes labelled with their MIDI pitch into ``out``."""
    return _render_notes("pitch", out, opts)


@register("instrument", "NSynth-like single notes labelled with their GM instrument family (split by program).")
def render_instrument(out: Path, opts: RenderOptions) -> list[RenderReport]:
    """Single notes labelled with their GM instrument family into ``out``."""
    return _render_notes("instrument", out, opts)

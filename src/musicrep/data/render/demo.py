"""The ``demo`` preset: small key, instrument, pitch and tagging tasks (``OUT/key``, ``OUT/instrument``, …).

Sized for ``make demo``; ``pitch`` is the ``instrument`` audio relabelled (:func:`link_task`: hard links,
no second render), and key and tagging share one set of parsed chorales. ``instrument-fluidr3`` tests the
instrument probe on the same unseen test notes played by another SoundFont (FluidR3, Debian
``fluid-soundfont-gm``), when it is installed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from musicrep.data.combine import cross_domain_task
from musicrep.data.render.base import Job, RenderError, RenderOptions, RenderReport, register
from musicrep.data.render.chorales import pick_chorales, plan_key, plan_tagging, tagging_spec
from musicrep.data.render.notes import as_pitch_jobs, audit_families, note_spec, plan_notes
from musicrep.data.render.runner import Runner, execute
from musicrep.data.synth import SynthError, resolve_soundfont
from musicrep.data.task import Task, write_task
from musicrep.theory import KEYS

# Sized so that every test split is large enough for a 95 % CI half-width of about 0.08 on its primary
# metric (the bootstrap CI shrinks as 1/sqrt(test items)), while `make demo` stays near 6 min on 2 cores:
# ~29 min of notes (+ ~11 min re-rendered with FluidR3), ~19 min of key excerpts, ~12 min of tagging clips.
DEMO_NOTE_FAMILIES = ("piano", "organ", "guitar", "strings", "brass", "reed")
#: Three octaves (C3–B5): 36 MIDI classes, so a one-octave feature (chroma) cannot name the pitch.
DEMO_PITCHES = range(48, 84)
DEMO_PROGRAMS = (2, 1, 2)  # programs per family in train / valid / test (test instruments are unseen)
#: Pitches each program plays, per split (a seeded subset of DEMO_PITCHES): ~6 training notes per pitch,
#: few for selection, many for the test (6 families × 2 programs × 14 = 168 test notes).
DEMO_PITCHES_PER_SPLIT = {"train": 18, "valid": 8, "test": 14}
#: The instrument task's test notes are rendered again with this SoundFont (the domain shift a user
#: meets): task ``instrument-fluidr3``, trained on the TimGM6mb notes. Skipped when it is not installed.
DEMO_SHIFT_SOUNDFONT = "fluidr3"
DEMO_CHORALES = 14  # key: × 12 transpositions × 7 s; tagging: × 10 clips × 5 s (parsing is the slow part)
DEMO_KEY_EXCERPT = 7.0
DEMO_TAG_CLIPS = 10
DEMO_TAG_CLIP = 5.0
DEMO_CHORALE_SPLITS = (0.15, 0.4)  # (valid, test) shares of the tunes: a large test split for tight CIs


def shift_available() -> bool:
    """Whether the SoundFont of the demo's cross-SoundFont instrument test is installed here."""
    try:
        resolve_soundfont(DEMO_SHIFT_SOUNDFONT)
    except SynthError:
        return False
    return True


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


@register("demo", "Small key, instrument (+ a FluidR3 test set), pitch and tagging tasks (OUT/key, OUT/instrument, …).")
def render_demo(out: Path, opts: RenderOptions) -> list[RenderReport]:
    """The demo tasks under ``out``; raises :class:`RenderError` when a size is given (sizes are fixed).

    ``instrument-fluidr3`` (the instrument task's train/valid notes, its test notes re-rendered with
    FluidR3) is written only when that SoundFont is installed (:func:`shift_available`).
    """
    if opts.n is not None or opts.minutes is not None:
        raise RenderError("the demo preset has fixed sizes; --n/--minutes apply to single tasks")
    reports = []
    rng = np.random.default_rng(opts.seed)
    with Runner(opts) as runner:
        t0 = time.perf_counter()
        excluded = audit_families(runner, DEMO_NOTE_FAMILIES)
        jobs = plan_notes(rng, DEMO_NOTE_FAMILIES, programs_per_family=sum(DEMO_PROGRAMS), split_counts=DEMO_PROGRAMS,
                          pitches=DEMO_PITCHES, velocities=(100,), exclude=excluded,
                          pitches_per_split=DEMO_PITCHES_PER_SPLIT)
        spec = note_spec("instrument", jobs, "instrument", excluded)
        rep = execute("instrument", out / "instrument", spec, jobs, runner, t0)
        reports.append(rep)
        t1 = time.perf_counter()
        inst = Task.load(out / "instrument")
        pitch = link_task(inst, out / "pitch", note_spec("pitch", as_pitch_jobs(jobs), "pitch", excluded), "pitch")
        reports.append(RenderReport("pitch", out / "pitch", rep.planned, len(pitch), rep.dropped, 0.0,
                                    float(pitch.items["duration"].sum()), time.perf_counter() - t1, pitch.summary()))

        t0 = time.perf_counter()
        chorales = pick_chorales(rng, DEMO_CHORALES, runner, balance_modes=True)
        key_jobs = plan_key(rng, chorales, excerpt=DEMO_KEY_EXCERPT, splits=DEMO_CHORALE_SPLITS)
        spec = dict(name="key", kind="key", vocabulary=list(KEYS), metrics=["mirex", "accuracy"],
                    description=f"Global key of a rendered Bach chorale excerpt (demo: {DEMO_CHORALES} chorales "
                                "× 12 keys).",
                    provenance={"source": "music21 Bach chorales × 12 transpositions; split by chorale"})
        reports.append(execute("key", out / "key", spec, key_jobs, runner, t0))

        t0 = time.perf_counter()
        tag_jobs = plan_tagging(rng, chorales, clips_per_chorale=DEMO_TAG_CLIPS, clip=DEMO_TAG_CLIP,
                                splits=DEMO_CHORALE_SPLITS)
        reports.append(execute("tagging", out / "tagging", tagging_spec(), tag_jobs, runner, t0))
    if shift_available():
        reports.append(_render_shift(out, opts, inst, [j for j in jobs if j.row["split"] == "test"], excluded))
    return reports


def _render_shift(out: Path, opts: RenderOptions, inst: Task, test_jobs: list[Job],
                  excluded: dict[int, str]) -> RenderReport:
    """The instrument test notes (same programs and pitches) rendered with :data:`DEMO_SHIFT_SOUNDFONT`, and
    ``instrument-fluidr3``: the instrument task's train/valid items with those as its test split
    (:func:`musicrep.data.combine.cross_domain_task`)."""
    t0 = time.perf_counter()
    shifted = out / f"instrument-{DEMO_SHIFT_SOUNDFONT}-test-notes"
    with Runner(opts.model_copy(update={"soundfont": DEMO_SHIFT_SOUNDFONT})) as runner:
        rep = execute(shifted.name, shifted, note_spec("instrument", test_jobs, "instrument", excluded), test_jobs,
                      runner, t0)
    name = f"instrument-{DEMO_SHIFT_SOUNDFONT}"
    task = cross_domain_task(inst, Task.load(shifted), out / name, name=name)
    return RenderReport(name, out / name, rep.planned, rep.kept, rep.dropped, rep.audio_seconds,
                        float(task.items["duration"].sum()), time.perf_counter() - t0, task.summary())

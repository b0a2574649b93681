"""The ``demo`` preset: small key, instrument, pitch and tagging tasks (``OUT/key``, ``OUT/instrument``, …).

Sized for ``make demo``; ``pitch`` is the ``instrument`` audio relabelled (:func:`link_task`: hard links,
no second render), and key and tagging share one set of parsed chorales.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from musicrep.data.render.base import RenderError, RenderOptions, RenderReport, register
from musicrep.data.render.chorales import pick_chorales, plan_key, plan_tagging, tagging_spec
from musicrep.data.render.notes import as_pitch_jobs, audit_families, note_spec, plan_notes
from musicrep.data.render.runner import Runner, execute
from musicrep.data.task import Task, write_task
from musicrep.theory import KEYS

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
    """The four demo tasks under ``out``; raises :class:`RenderError` when a size is given (sizes are fixed)."""
    if opts.n is not None or opts.minutes is not None:
        raise RenderError("the demo preset has fixed sizes; --n/--minutes apply to single tasks")
    reports = []
    rng = np.random.default_rng(opts.seed)
    with Runner(opts) as runner:
        t0 = time.perf_counter()
        excluded = audit_families(runner, DEMO_NOTE_FAMILIES)
        jobs = plan_notes(rng, DEMO_NOTE_FAMILIES, programs_per_family=sum(DEMO_PROGRAMS), split_counts=DEMO_PROGRAMS,
                          pitches=DEMO_PITCHES, velocities=(100,), exclude=excluded)
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
        key_jobs = plan_key(rng, chorales, excerpt=DEMO_KEY_EXCERPT, splits=(0.2, 0.2))
        spec = dict(name="key", kind="key", vocabulary=list(KEYS), metrics=["mirex", "accuracy"],
                    description=f"Global key of a rendered Bach chorale excerpt (demo: {DEMO_CHORALES} chorales "
                                "× 12 keys).",
                    provenance={"source": "music21 Bach chorales × 12 transpositions; split by chorale"})
        reports.append(execute("key", out / "key", spec, key_jobs, runner, t0))

        t0 = time.perf_counter()
        tag_jobs = plan_tagging(rng, chorales, clips_per_chorale=DEMO_TAG_CLIPS, splits=(0.2, 0.2))
        reports.append(execute("tagging", out / "tagging", tagging_spec(), tag_jobs, runner, t0))
    return reports

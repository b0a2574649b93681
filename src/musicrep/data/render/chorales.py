"""Chorale tasks, ``key``, ``tagging`` and ``tempo``: Bach chorales from the music21 corpus, re-played.

Every chorale task splits and groups by hymn tune (:attr:`Chorale.tune`), not by BWV number: half the
corpus's works share a tune with another work, and the melody must not be in train and test. Parsing
(music21) is the slow part of planning, so :func:`pick_chorales` parses in the worker pool when there is
one, in the seeded order, giving the same list whatever the worker count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musicrep.data.render.base import (
    Job,
    RenderError,
    RenderOptions,
    RenderReport,
    planned_size,
    register,
    split_fractions,
)
from musicrep.data.render.runner import Runner, execute
from musicrep.data.scores import Chorale
from musicrep.data.splits import grouped_split
from musicrep.data.synth import GM_FAMILIES, Note
from musicrep.theory import KEYS

KEY_PROGRAMS = (0, 6, 19, 48, 52)  # piano, harpsichord, church organ, string ensemble, choir
TRANSPOSITIONS = tuple(range(-6, 6))  # 12 distinct keys per chorale, register kept within ±6 semitones


def _load_or_none(path: Path) -> Chorale | None:
    from musicrep.data.scores import ChoraleRejected, load_chorale

    try:
        return load_chorale(path)
    except ChoraleRejected:
        return None


def pick_chorales(rng: np.random.Generator, count: int | None, runner: Runner | None = None,
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


def timed_notes(part: Sequence[tuple[float, float, int]], bpm: float, start_s: float, end_s: float,
                transpose: int, channel: int, velocity: int) -> tuple[Note, ...]:
    """Quarter-note events (onset, duration in quarters, MIDI) at ``bpm`` → Notes in seconds inside
    [start_s, end_s), shifted to start at 0 and transposed by ``transpose`` semitones."""
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
    chorales = (pick_chorales(rng, n_chorales) if n_chorales is None or isinstance(n_chorales, int)
                else list(n_chorales))
    mode_of_tune: dict[str, str] = {}  # a tune is stratified by the mode of its first chorale
    for c in chorales:
        mode_of_tune.setdefault(c.tune, c.mode)
    split_of = grouped_split(list(mode_of_tune), list(mode_of_tune.values()), fractions=split_fractions(splits),
                             rng=rng)
    jobs = []
    for ch in chorales:
        for k in TRANSPOSITIONS:
            program = int(rng.choice(KEY_PROGRAMS))
            bpm = float(np.round(rng.uniform(70, 100), 1))
            length = ch.length_q * 60.0 / bpm + 1.0
            dur = float(min(excerpt, length))
            stems = tuple((program, timed_notes(part, bpm, 0.0, dur - 0.5, k, v, 90))
                          for v, part in enumerate(ch.parts))
            item = f"{ch.id}-t{'m' if k < 0 else 'p'}{abs(k)}"
            jobs.append(Job(
                id=item, stems=stems, duration=dur, check="piece",
                row=dict(id=item, path=f"audio/{item}.flac", split=split_of[ch.tune], label=ch.key(k), duration=dur,
                         group=ch.tune, chorale=ch.id, transpose=k, program=program, bpm=bpm),
            ))
    return jobs


@register("key", "Bach chorales (music21) × 12 transpositions → 24 keys, split by chorale; MIREX score.")
def render_key(out: Path, opts: RenderOptions, excerpt: float = 30.0) -> list[RenderReport]:
    """Chorale excerpts of ``excerpt`` s in 12 transpositions each, labelled with their key, into ``out``."""
    t0 = time.perf_counter()
    size = planned_size(opts, excerpt, None)
    spec = dict(name="key", kind="key", vocabulary=list(KEYS), metrics=["mirex", "accuracy"],
                description="Global key of a rendered Bach chorale excerpt (24 keys, mir_eval spelling).",
                provenance={"source": "music21 corpus: Bach chorales with an encoded key whose final bass "
                                      "note is the tonic; 12 transpositions each; split by chorale"})
    rng = np.random.default_rng(opts.seed)
    with Runner(opts) as runner:
        chorales = pick_chorales(rng, None if size is None else math.ceil(size / len(TRANSPOSITIONS)), runner,
                                 balance_modes=True)
        jobs = plan_key(rng, chorales, excerpt)[:size]
        return [execute("key", out, spec, jobs, runner, t0)]


TAG_CLIP = 10.0  # seconds per tagging clip
TAG_CLIPS_PER_CHORALE = 5  # each a different excerpt, orchestration, transposition and tempo
#: Families the tagging task orchestrates with (pitched, distinct timbres).
TAG_FAMILIES = ("piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "brass", "reed",
                "pipe", "synth_lead")


def plan_tagging(rng: np.random.Generator, n_chorales: int | Sequence[Chorale] | None,
                 clips_per_chorale: int = TAG_CLIPS_PER_CHORALE, clip: float = TAG_CLIP,
                 families: Sequence[str] = TAG_FAMILIES, splits: tuple[float, float] = (0.1, 0.1)) -> list[Job]:
    """10 s clips of chorales re-orchestrated: each clip keeps 1–4 random parts, each on a random program."""
    chorales = (pick_chorales(rng, n_chorales) if n_chorales is None or isinstance(n_chorales, int)
                else list(n_chorales))
    split_of = grouped_split([c.tune for c in chorales], fractions=split_fractions(splits), rng=rng)
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
                stems.append((program, timed_notes(ch.parts[p], bpm, start, start + clip - 0.5, k, 0, 90)))
            item = f"{ch.id}-c{c}"
            jobs.append(Job(
                id=item, stems=tuple(stems), duration=clip, check="stems",
                row=dict(id=item, path=f"audio/{item}.flac", split=split_of[ch.tune], label="", duration=clip,
                         group=ch.tune, chorale=ch.id, transpose=k, bpm=bpm, start=start),
            ))
    return jobs


@register("tagging", "Multi-label instrument-family tagging of 10 s re-orchestrated chorale clips; mAP, ROC-AUC.")
def render_tagging(out: Path, opts: RenderOptions) -> list[RenderReport]:
    """Re-orchestrated 10 s chorale clips labelled with their audible GM families, into ``out``."""
    t0 = time.perf_counter()
    size = planned_size(opts, TAG_CLIP, None)
    rng = np.random.default_rng(opts.seed)
    with Runner(opts) as runner:
        chorales = pick_chorales(rng, None if size is None else math.ceil(size / TAG_CLIPS_PER_CHORALE),
                                 runner)
        jobs = plan_tagging(rng, chorales)[:size]
        return [execute("tagging", out, tagging_spec(), jobs, runner, t0)]


def tagging_spec(families: Sequence[str] = TAG_FAMILIES) -> dict[str, Any]:
    """``task.yaml`` fields of a tagging task over ``families`` (the full task and the demo share it)."""
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
    chorales = (pick_chorales(rng, n_chorales) if n_chorales is None or isinstance(n_chorales, int)
                else list(n_chorales))
    split_of = grouped_split([c.tune for c in chorales], fractions=split_fractions(splits), rng=rng)
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
            stems = tuple((program, timed_notes(part, bpm, start, start + dur - 0.5, k, v, 90))
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
    """Chorale excerpts re-timed to a steady tempo, labelled with it in BPM, into ``out``."""
    t0 = time.perf_counter()
    size = planned_size(opts, TEMPO_CLIP, None)
    rng = np.random.default_rng(opts.seed)
    spec = dict(name="tempo", kind="regression", vocabulary=[], metrics=["r2", "tempo_acc1", "tempo_acc2"],
                description="Tempo in BPM of the quarter-note beat of a 20 s chorale excerpt (steady tempo), "
                            "scored by r², accuracy within 4 % and octave-tolerant accuracy (×2, ×1/2, ×3, ×1/3).",
                provenance={"source": "music21 Bach chorales re-timed, piano or harpsichord; split by chorale",
                            "beat": "quarter note", "tempo_range_bpm": list(TEMPO_RANGE)})
    with Runner(opts) as runner:
        chorales = pick_chorales(rng, None if size is None else math.ceil(size / TEMPO_CLIPS_PER_CHORALE),
                                 runner)
        jobs = plan_tempo(rng, chorales)[:size]
        return [execute("tempo", out, spec, jobs, runner, t0)]

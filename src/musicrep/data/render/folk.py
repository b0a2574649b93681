"""Folk-tune tasks, ``metre`` and ``style``: monophonic tunes from the music21 corpus, one clip per tune.

``metre``: German folk songs (Essen collection) in 2/4, 3/4, 4/4 or 6/8; ``style``: which collection
(German, Chinese, Irish, Scottish) a tune comes from. Balanced per label, split by tune, each tune played
on a random GM melody program with metrical accents.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musicrep.data.render.base import Job, RenderOptions, RenderReport, planned_size, register, split_fractions
from musicrep.data.render.runner import Runner, execute
from musicrep.data.splits import grouped_split
from musicrep.data.synth import Note

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
              runner: Runner | None = None, clip: float = FOLK_CLIP,
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
            loaded = runner.imap(_load_tune_or_none, batch) if runner is not None else map(_load_tune_or_none, batch)
            for tune in loaded:
                if tune is not None and got < per_label:
                    chosen.append((label, tune))
                    got += 1
    split_of = grouped_split([t.ref.id for _, t in chosen], fractions=split_fractions(splits), rng=rng)
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
    size = planned_size(opts, FOLK_CLIP, None)
    per_label = FOLK_PER_CLASS if size is None else math.ceil(size / len(cands))
    with Runner(opts) as runner:
        jobs = plan_folk(np.random.default_rng(opts.seed), cands, per_label, runner)
        if size is not None:
            jobs = jobs[:size] if len(jobs) <= size else [jobs[i] for i in sorted(
                np.random.default_rng(opts.seed).choice(len(jobs), size, replace=False))]
        return [execute(name, out, spec, jobs, runner, t0)]


def _metre_candidates() -> dict[str, Sequence[Any]]:
    from musicrep.data.scores import folk_tunes

    tunes = folk_tunes("german")
    return {m: [t for t in tunes if t.metre == m] for m in METRES}


def _style_candidates() -> dict[str, Sequence[Any]]:
    from musicrep.data.scores import FOLK_COLLECTIONS, folk_tunes

    return {style: folk_tunes(style) for style in FOLK_COLLECTIONS}


@register("metre", "German folk songs (Essen, music21) in 2/4, 3/4, 4/4 or 6/8, played with metrical accents.")
def render_metre(out: Path, opts: RenderOptions) -> list[RenderReport]:
    """German folk-song excerpts labelled with their time signature, into ``out``."""
    spec = dict(name="metre", kind="multiclass", vocabulary=list(METRES), metrics=["accuracy"],
                description="Time signature of a 15 s monophonic folk-song excerpt (2/4, 3/4, 4/4, 6/8).",
                provenance={"source": "music21 corpus essenFolksong (German collections), tunes with one "
                                      "metre; velocity follows beat strength; split by tune"})
    return _render_folk("metre", out, opts, _metre_candidates, spec)


@register("style", "Folk collections as styles: German and Chinese (Essen), Irish (O'Neill), Scottish (Aird).")
def render_style(out: Path, opts: RenderOptions) -> list[RenderReport]:
    """Folk-tune excerpts labelled with their collection (tradition), into ``out``."""
    from musicrep.data.scores import FOLK_COLLECTIONS

    spec = dict(name="style", kind="multiclass", vocabulary=list(FOLK_COLLECTIONS), metrics=["accuracy"],
                description="Which folk tradition a 15 s monophonic tune comes from (genre-like).",
                provenance={"source": "music21 corpus: essenFolksong (German, Chinese), oneills1850 (Irish), "
                                      "airdsAirs (Scottish); random GM melody program; split by tune"})
    return _render_folk("style", out, opts, _style_candidates, spec)

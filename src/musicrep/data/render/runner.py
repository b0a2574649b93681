"""Execution: render planned :class:`Job` lists in this process or a pool of worker processes, then write.

Workers draw nothing at random: every choice was made when planning, in the main process, so the output
cannot depend on how jobs are scheduled. Each worker parses the SoundFont once (:class:`Synth` per
process), runs the job's label check (:data:`musicrep.data.render.checks.CHECKS`) and writes the kept
audio as 16 kHz mono 16-bit FLAC named by item id. :func:`execute` then writes the manifests in plan
order through :func:`musicrep.data.task.write_task` (validated by ``Task.load``, so a render can never
produce a leaking split) and returns a :class:`RenderReport`.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from musicrep.data.render.base import SR, Job, Rendered, RenderOptions, RenderReport
from musicrep.data.render.checks import CHECKS, Drop
from musicrep.data.synth import Synth, SynthError, resolve_soundfont
from musicrep.data.task import write_task

_SYNTH: Synth | None = None  # this process's synthesiser (one per worker, SoundFont parsed once)


def _init_worker(soundfont: str | None) -> None:
    """Per-process setup: parse the SoundFont once."""
    global _SYNTH
    _SYNTH = Synth(soundfont, sample_rate=SR)


def _run_job(args: tuple[str, Job]) -> Rendered:
    out, job = args
    assert _SYNTH is not None
    try:
        audio, label, extra = CHECKS[job.check](_SYNTH, job)
    except Drop as drop:
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


class Runner:
    """Runs jobs in this process or in a pool of worker processes, created once per render command.

    Why one pool for a whole command: a worker's first job pays for imports (librosa) and the SoundFont
    parse; the demo renders four tasks and should pay that once, not four times. Workers are forked
    after the main process has warmed up, so they inherit the loaded modules.
    """

    def __init__(self, opts: RenderOptions) -> None:
        self.opts = opts
        self.soundfont = str(resolve_soundfont(opts.soundfont))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Runner:
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
        """Render and check ``jobs`` into ``out``, one :class:`Rendered` per job in plan order."""
        from tqdm import tqdm

        bar = dict(total=len(jobs), desc=desc, unit="item", disable=not self.opts.progress, leave=False)
        args = [(str(out), j) for j in jobs]
        if self.opts.workers > 1 and len(jobs) > 1:
            chunk = max(1, min(16, len(jobs) // (self.opts.workers * 8)))
            return list(tqdm(self._executor().map(_run_job, args, chunksize=chunk), **bar))
        if _SYNTH is None or str(_SYNTH.path) != self.soundfont:
            _init_worker(self.soundfont)
        return [_run_job(a) for a in tqdm(args, **bar)]


def execute(name: str, out: Path, spec: dict[str, Any], jobs: Sequence[Job], runner: Runner,
            t0: float) -> RenderReport:
    """Render ``jobs`` into ``out`` (audio + manifests) and report; ``t0`` is when planning began
    (``time.perf_counter()``), so the report's wall time includes planning."""
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

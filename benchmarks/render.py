"""Benchmark: the renderer's synthesis path vs the naive one, and each task's end-to-end realtime factor.

Part 1 (same process, same notes): musicrep's :class:`~musicrep.data.synth.Synth` (SoundFont parsed
once, reset + flush per item) against re-parsing the SoundFont for every item — the obvious way to get
order-independent output. Prints ``ratio=<naive_time / our_time>`` and both realtime factors.

Part 2: renders each task at a small size into a temporary folder with ``--workers`` processes and prints
its realtime factor (audio seconds synthesised per wall second, planning and parsing included).
Target from the issue: ≥ 50× realtime for the full tasks.

Usage: python benchmarks/render.py [--notes 200] [--workers 2] [--tasks pitch,key,tagging,tempo,metre]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def synth_ratio(n_notes: int) -> None:
    from tinysoundfont import _tinysoundfont as tsf

    from musicrep.data.synth import Note, Synth

    rng = np.random.default_rng(0)
    items = [(int(rng.integers(0, 112)), int(rng.integers(40, 90))) for _ in range(n_notes)]
    synth = Synth()
    data = synth.path.read_bytes()

    t0 = time.perf_counter()
    ours = [synth.render([Note(0.0, 3.0, pitch)], {0: prog}, 4.0) for prog, pitch in items]
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    naive = []
    for prog, pitch in items:
        sf = tsf.SoundFont(data)
        sf.set_output(tsf.OutputMode.Mono, 16_000, 0.0)
        sf.channel_set_preset_number(0, prog, False)
        out = np.zeros(64_000, np.float32)
        sf.channel_note_on(0, pitch, 100 / 127)
        sf.render(memoryview(out[:48_000]).cast("B"), False)
        sf.channel_note_off(0, pitch)
        sf.render(memoryview(out[48_000:]).cast("B"), False)
        naive.append(out)
    t_naive = time.perf_counter() - t0
    same = all(np.array_equal(a, b) for a, b in zip(ours, naive, strict=True))
    audio = 4.0 * n_notes
    print(f"synth: {n_notes} notes  ours {audio / t_ours:,.0f}× realtime  naive {audio / t_naive:,.0f}× realtime  "
          f"ratio={t_naive / t_ours:.1f}  identical_output={same}")


def task_rtf(tasks: list[str], workers: int) -> None:
    from musicrep.data.render import render_task

    sizes = {"pitch": 200, "instrument": 200, "key": 48, "tagging": 60, "tempo": 40, "metre": 40, "style": 40}
    with tempfile.TemporaryDirectory() as tmp:
        for name in tasks:
            t0 = time.perf_counter()
            (rep,) = render_task(name, Path(tmp) / name, n=sizes[name], workers=workers, progress=False)
            wall = time.perf_counter() - t0
            print(f"task {name:10s} n={sizes[name]:4d}  {rep.audio_seconds / 60:6.1f} min audio  {wall:6.1f} s  "
                  f"realtime={rep.audio_seconds / wall:,.0f}×  kept {rep.kept}/{rep.planned}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notes", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", default="pitch,key,tagging,tempo,metre")
    args = ap.parse_args()
    synth_ratio(args.notes)
    task_rtf([t for t in args.tasks.split(",") if t], args.workers)


if __name__ == "__main__":
    main()

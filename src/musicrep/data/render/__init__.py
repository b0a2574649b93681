"""The offline renderer: exactly labelled task folders from scores and a SoundFont, no network.

Takes a task name from :data:`RENDERERS` (``pitch``, ``instrument``, ``key``, ``tagging``, ``tempo``,
``metre``, ``style``, and the ``demo`` preset = small key/instrument/pitch/tagging), an output folder and
a size (``n`` items or ``minutes``), and gives task folders in the :mod:`musicrep.data.task` format
(16 kHz mono 16-bit FLAC + ``task.yaml`` + ``items.csv``) plus a :class:`RenderReport` per folder (sizes,
drops and the realtime factor).

Shape of every render, and why:

1. **plan** (main process): every random choice — which programs, pitches, chorales, transpositions,
   tempi, orchestrations, splits — is drawn here from one ``numpy`` generator seeded with ``seed``,
   producing a list of :class:`Job`. Workers draw nothing, so the output cannot depend on how jobs
   are scheduled. Single-note tasks first audit every GM program of the SoundFont
   (:func:`notes.audit_programs`) so that programs that sound an octave off or not at all are never
   dealt to a split.
2. **render + verify** (1..N worker processes, SoundFont parsed once per process; ``runner.py``): each job
   is synthesised and *checked against its label* (``checks.py``) — a single note must be loud enough and
   its estimated pitch must match the MIDI number (octave-shifted programs, silent high notes and
   short-decay programs are dropped, see DESIGN.md); a tagging clip is rendered part by part and labelled
   with the families of the parts that are actually audible in it. Failing jobs are dropped and counted
   with a reason.
3. **write**: audio files named by item id, then the manifests, in plan order, validated by
   :meth:`musicrep.data.task.Task.load` (so a render can never produce a leaking split).

Same seed and options → byte-identical audio and manifests, whatever ``workers`` is.

Files: ``base.py`` (options, :class:`Job`, reports, errors, the registry), ``runner.py`` (worker pool),
``checks.py`` (label checks), and one file per task family, each registering its renderers:
``notes.py`` (pitch, instrument), ``chorales.py`` (key, tagging, tempo), ``folk.py`` (metre, style),
``demo.py``. Adding a task is adding one function decorated with :func:`register` in its family's file
(a new family: a new file, imported below).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The family modules register their renderers on import, in this order (the order `musicrep data tasks`
# lists them in), so these imports stay unsorted.
from musicrep.data.render import notes
from musicrep.data.render import chorales
from musicrep.data.render import folk
from musicrep.data.render import demo
from musicrep.data.render.base import RENDERERS, Job, RenderError, RenderOptions, RenderReport, register
from musicrep.data.render.checks import note_pitch
from musicrep.data.synth import SynthError, resolve_soundfont

__all__ = [
    "chorales",
    "demo",
    "folk",
    "notes",
    "RENDERERS",
    "Job",
    "RenderError",
    "RenderOptions",
    "RenderReport",
    "note_pitch",
    "register",
    "render_task",
]


def render_task(task: str, out: str | os.PathLike[str], **options: Any) -> list[RenderReport]:
    """Render the task named ``task`` into ``out``; see :class:`RenderOptions` for the options.

    Raises :class:`RenderError` for an unknown task, both ``n`` and ``minutes``, or a SoundFont not found.
    """
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

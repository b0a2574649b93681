"""What every renderer shares: options, the plan unit (:class:`Job`), reports, errors and the registry.

A renderer is a function ``fn(out, options) -> list[RenderReport]`` registered under a task name with
:func:`register`; each task family's file (``notes.py``, ``chorales.py``, ``folk.py``, ``demo.py``)
registers its own. The planning helpers :func:`planned_size` and :func:`split_fractions` turn the options
into sizes and split shares the same way for every family.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from musicrep.data.synth import Note

#: Sample rate of every rendered file (Hz).
SR = 16_000


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

    ``stems`` is a list of (program, notes) played on separate channels; ``duration`` is in seconds.
    ``check`` names an entry of :data:`musicrep.data.render.checks.CHECKS`. ``row`` holds the manifest
    columns known at plan time (id, split, group, label, extra columns); the check may fill in the label
    (tagging).
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
        empty = [s for s in ("train", "test") if not self.summary_dict.get(s, {}).get("items", 0)]
        # splits go by whole works (a chorale's transpositions, an instrument's programs): too few works
        # leave a split empty, and nothing can be evaluated on such a task
        warn = (f"; WARNING: no {' or '.join(empty)} items — too few works to split; render more (--n)"
                if empty else "")
        return (f"{self.name}: {self.kept}/{self.planned} items kept ({splits}), "
                f"{self.kept_seconds / 60:.1f} min of audio → {self.out}; dropped: {drops}; "
                f"{self.wall_seconds:.1f} s wall, {self.realtime_factor:.0f}× realtime{warn}")


# ---------------------------------------------------------------------- registry
Renderer = Callable[[Path, RenderOptions], list[RenderReport]]


@dataclass(frozen=True)
class RendererEntry:
    """A registered renderer and the one-line description ``musicrep data tasks`` prints."""

    fn: Renderer
    description: str


#: Task name → renderer, in registration order. Each renderer writes one or more task folders and returns
#: their reports.
RENDERERS: dict[str, RendererEntry] = {}


def register(name: str, description: str) -> Callable[[Renderer], Renderer]:
    """Decorator: add a renderer ``fn(out, options) -> list[RenderReport]`` under ``name``."""

    def deco(fn: Renderer) -> Renderer:
        RENDERERS[name] = RendererEntry(fn, description)
        return fn

    return deco


# ---------------------------------------------------------------------- planning helpers
def planned_size(opts: RenderOptions, item_seconds: float, default: int | None) -> int | None:
    """Items to plan: ``opts.n``, or enough items of ``item_seconds`` s for ``opts.minutes``, else ``default``."""
    if opts.n is not None:
        return opts.n
    if opts.minutes is not None:
        return max(1, math.ceil(opts.minutes * 60 / item_seconds))
    return default


def split_fractions(splits: tuple[float, float]) -> tuple[float, float, float]:
    """(valid, test) shares of the plan functions → :func:`grouped_split` fractions (train = the rest)."""
    valid, test = splits
    return (1.0 - valid - test, valid, test)

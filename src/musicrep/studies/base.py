"""What every study shares: its typed config, tasks that render themselves, presets, and the registry.

A study is a typed config (a :class:`StudyConfig` subclass, loaded from YAML or a preset) and a function
that loops over :func:`musicrep.evaluate.run_unit` and writes rows into the one results table through a
:class:`musicrep.evaluate.Run` — so it resumes, logs unreadable files and ranks exactly as ``evaluate``
does. Adding a study is one file that calls :func:`register`.

Presets (``src/musicrep/presets/studies/<name>.yaml``): ``smoke`` (CI: seconds, tiny rendered tasks),
``laptop`` (2 CPU cores, under an hour) and ``paper`` (the seeds' settings, for a bigger machine).
Tasks in a config are folders, or render specs (:class:`RenderedTask`) materialised under ``data``
once and reused by every later run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from musicrep.config import ConfigError, EvaluateConfig, load_config
from musicrep.data.task import Task

__all__ = ["STUDIES", "PRESETS", "Pair", "RenderedTask", "StudyConfig", "StudyEntry", "load_study", "pairs",
           "register", "start", "study_unit_key"]

PRESETS = ("smoke", "laptop", "paper")


class RenderedTask(BaseModel):
    """A task rendered offline on first use (``musicrep data render``), e.g. ``{render: pitch, n: 96}``."""

    model_config = ConfigDict(extra="forbid")

    render: str = Field(description="Renderer name: pitch, instrument, key, tagging, tempo, metre, style.")
    n: int | None = Field(None, gt=0, description="Items to render (default: the renderer's).")
    minutes: float | None = Field(None, gt=0, description="Or: about this many minutes of audio.")
    soundfont: str | None = Field(None, description="SoundFont (default TimGM6mb; fluidr3, musescore, opl3 "
                                  "need their Debian packages).")
    test_soundfont: str | None = Field(None, description="Render the task again with this SoundFont and test on "
                                       "that rendering (train/valid stay on `soundfont`): domain shift.")
    seed: int = Field(0, description="Render seed.")
    part: str | None = Field(None, description="For a renderer that writes several tasks (demo: key, "
                             "instrument, instrument-fluidr3, pitch, tagging): the one to use.")

    @property
    def slug(self) -> str:
        parts = [self.render] + [f"{k}{v}" for k, v in (("n", self.n), ("min", self.minutes),
                                                          ("sf", self.soundfont), ("seed", self.seed)) if v is not None]
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(str(p) for p in parts))

    def materialise(self, data_dir: Path) -> Path:
        """Render (once) and return the task folder; with ``test_soundfont``, the cross-domain task folder."""
        from musicrep.data.render import render_task

        def rendered(soundfont: str | None) -> Path:
            spec = self.model_copy(update={"soundfont": soundfont, "test_soundfont": None, "part": None})
            folder = data_dir / spec.slug
            task = folder / self.part if self.part is not None else folder
            if not (task / "task.yaml").is_file():
                render_task(self.render, folder, n=self.n, minutes=self.minutes, soundfont=soundfont, seed=self.seed)
                if not (task / "task.yaml").is_file():
                    made = sorted(p.parent.name for p in folder.glob("*/task.yaml")) or ["none"]
                    raise ConfigError(f"render {self.render!r} wrote no task {self.part!r} (it wrote: "
                                      f"{', '.join(made)}); set `part` to one of them")
            return task

        train = rendered(self.soundfont)
        if self.test_soundfont is None:
            return train
        from musicrep.data.combine import cross_domain_task

        folder = data_dir / f"{self.slug}-test-{re.sub(r'[^A-Za-z0-9_.-]+', '_', self.test_soundfont)}"
        if not (folder / "task.yaml").is_file():
            a, b = Task.load(train), Task.load(rendered(self.test_soundfont))
            cross_domain_task(a, b, folder, name=f"{a.name}+test:{self.test_soundfont}")
        return folder


class StudyConfig(EvaluateConfig):
    """Settings every study shares (those of ``evaluate``, plus rendered tasks and where they go)."""

    tasks: list[Path | RenderedTask] = Field(description="Task folders, or render specs such as "  # type: ignore[assignment]
                                             "{render: pitch, n: 96} rendered under `data` on first use.")
    data: Path | None = Field(None, description="Where rendered tasks go (default: OUT/data).")

    @field_validator("folds")
    @classmethod
    def _no_folds(cls, v: int) -> int:
        if v:  # each study varies what its test split sees (deformations, budgets); pooling splits would undo it
            raise ValueError("studies score their tasks' own test splits; cross-validation (folds) is for "
                             "`musicrep evaluate` and `musicrep compare`")
        return v

    def resolve_paths(self, base: Path) -> StudyConfig:
        upd: dict[str, Any] = {
            "out": self.out if self.out.is_absolute() else base / self.out,
            "tasks": [t if not isinstance(t, Path) or t.is_absolute() else base / t for t in self.tasks],
        }
        if self.store is not None and not self.store.is_absolute():
            upd["store"] = base / self.store
        if self.data is not None and not self.data.is_absolute():
            upd["data"] = base / self.data
        return self.model_copy(update=upd)

    def load_tasks(self) -> list[Task]:
        """Every task, rendering the render specs that are not on disk yet."""
        data_dir = self.data if self.data is not None else self.out / "data"
        return [Task.load(t if isinstance(t, Path) else t.materialise(data_dir)) for t in self.tasks]


def study_unit_key(study: str, cfg: StudyConfig, rep: Any, window: Any, **settings: Any) -> str:
    """Hash of everything behind a study's unit besides (representation, task, probe, seed)."""
    blob = json.dumps({"study": study, "rep": rep.name, "config": rep.config, "budget": rep.budget_minutes,
                       "grid": cfg.grid, "layers": cfg.layers, "window": window.model_dump(),
                       "bootstrap": cfg.bootstrap, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class Pair:
    """One representation on one task in a study: what each study loops over.

    ``rep`` builds the representation on first use (a study whose results are all present builds none);
    ``todo(keys)`` keeps the units not yet in the run's table (keys: ``(…, probe, seed) → unit_key``).
    """

    rc: Any
    task: Task
    window: Any
    probes: list[str]
    run: Any
    shared: dict[str, Any]

    @property
    def label(self) -> str:
        return self.rc.display

    @property
    def rep(self) -> Any:
        if "rep" not in self.shared:  # built once per representation, shared by its tasks
            self.shared["rep"] = self.rc.build()
        return self.shared["rep"]

    def todo(self, keys: dict[tuple, str]) -> list[tuple]:
        left = [k for k, uk in keys.items() if not self.run.is_done(self.label, self.task.name, k[-2], k[-1], uk)]
        if not left:
            self.run.say(f"[dim]{self.label} on {self.task.name}: all results present, skipped[/dim]")
        return left


def start(cfg: StudyConfig, console: Any = None) -> tuple[Any, list[Task]]:
    """Open the study's run folder and load (rendering where needed) its tasks: ``(Run, tasks)``."""
    from musicrep.evaluate import Run

    run = Run(cfg.out, cfg, console)
    tasks = cfg.load_tasks()
    run.check_tasks(tasks)
    return run, tasks


def pairs(cfg: StudyConfig, run: Any, tasks: list[Task]) -> Any:
    """Every (representation, task) the config asks for, with the task's window and applicable probes."""
    from musicrep.evaluate import task_window
    from musicrep.probe import PROBES

    for rc in cfg.representations:
        shared: dict[str, Any] = {}
        for task in tasks:
            if rc.tasks is not None and task.name not in rc.tasks:
                continue
            probes = [p for p in (rc.probes or cfg.probes) if PROBES[p].applies_to(task.kind, rc.name)]
            yield Pair(rc, task, task_window(task, cfg.window), probes, run, shared)


@dataclass(frozen=True)
class StudyEntry:
    """A registered study: its config model, the function that runs it, and one line on what it measures."""

    name: str
    config: type[StudyConfig]
    run: Callable[..., Any]
    description: str


STUDIES: dict[str, StudyEntry] = {}


def register(name: str, config: type[StudyConfig], description: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``run(cfg, *, progress, console) -> results DataFrame`` as study ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        STUDIES[name] = StudyEntry(name, config, fn, description)
        return fn

    return deco


def load_study(name: str, source: str | Path | None = None, preset: str | None = None,
               out: Path | None = None) -> StudyConfig:
    """A study's config from a YAML file or a preset (``smoke | laptop | paper``), with ``out`` overriding.

    Raises :class:`~musicrep.config.ConfigError` naming the study, preset, file or key that is wrong.
    """
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}; choose one of {', '.join(sorted(STUDIES))}")
    model = STUDIES[name].config
    if (source is None) == (preset is None):
        raise ConfigError(f"study {name}: give a CONFIG.yaml or --preset ({' | '.join(PRESETS)}), not both or neither")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        text = resources.files("musicrep.presets").joinpath("studies", f"{name}.yaml").read_text(encoding="utf-8")
        data = dict(yaml.safe_load(text)[preset])
        data.setdefault("out", str(out or Path("runs") / f"{name}-{preset}"))
        if out is not None:
            data["out"] = str(out)
        cfg = load_config(data, model)
        return cfg.resolve_paths(Path.cwd())
    cfg = load_config(source, model)
    if out is not None:
        cfg = cfg.model_copy(update={"out": Path(out)})
    return cfg.resolve_paths(Path.cwd())  # relative paths from where you run it, as `musicrep evaluate` reads them

"""Deformed copies of a task as task folders: ``musicrep data deform TASK --with SPEC --out DIR``.

Takes a task folder and a deformation string (:mod:`musicrep.augment`, e.g. ``noise:pink@snr=10``);
gives a new task folder whose items are the same ids, splits, labels and groups, with the chosen splits'
audio deformed (16-bit FLAC at the task's rate) and the other splits pointing at the original files.
``task.yaml`` names the task ``<name>+<deformation>`` and records the source, the deformation and the
seed in its provenance, so the folder says what was done to it.

Why write folders at all when studies deform on the fly: a practitioner wants to listen to what a
"10 dB pink noise" test set sounds like, and any other tool can read a task folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from musicrep.audio import load
from musicrep.augment import parse
from musicrep.data.task import SPLITS, Task, TaskError, write_task

__all__ = ["deform_task"]


def _file_name(item_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", item_id).strip("_") or "item"


def deform_task(task: str | os.PathLike[str] | Task, deformation: str, out: str | os.PathLike[str], *,
                splits: tuple[str, ...] = SPLITS, seed: int = 0, progress: bool = False) -> Task:
    """Write ``out`` as a copy of ``task`` with ``splits`` deformed by ``deformation``; return the new task.

    Deterministic: the same task, deformation and seed give byte-identical files (each item's random
    choices come from its id). Raises :class:`~musicrep.augment.DeformationError` for a bad spec and
    :class:`~musicrep.data.task.TaskError` for a bad task, an unknown split or an ``out`` inside the task.
    Unreadable audio raises :class:`~musicrep.audio.AudioError` naming the file.
    """
    src = task if isinstance(task, Task) else Task.load(task)
    d = parse(deformation)
    bad = sorted(set(splits) - set(SPLITS))
    if bad:
        raise TaskError(f"--splits {','.join(bad)}: not a split; choose from {', '.join(SPLITS)}")
    root = Path(out)
    if root.resolve() == src.root.resolve():
        raise TaskError(f"{root}: the deformed task must go to a new folder, not over its source")
    (root / "audio").mkdir(parents=True, exist_ok=True)
    sr = int(src.spec.sample_rate)
    rows = src.items.copy()
    names: set[str] = set()
    iterator = list(rows.iterrows())
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"deform {src.name} ({d})", unit="item")
    paths = []
    for _, r in iterator:
        original = src.audio_path(r)
        if r["split"] not in splits:
            paths.append(str(original))
            continue
        name = _file_name(str(r["id"]))
        while name in names:  # two ids that sanitise alike still get two files
            name += "_"
        names.add(name)
        y = d(load(original, sr=sr), sr, item_id=str(r["id"]), seed=seed)
        sf.write(root / "audio" / f"{name}.flac", np.clip(y, -1.0, 1.0), sr, subtype="PCM_16")
        paths.append(f"audio/{name}.flac")
    rows["path"] = paths
    spec = src.spec.model_dump()
    spec["name"] = f"{src.name}+{d}"
    spec["provenance"] = {**spec.get("provenance", {}), "deformed_from": str(src.root.resolve()),
                          "deformation": str(d), "deformation_seed": int(seed), "deformed_splits": list(splits)}
    return write_task(root, spec, rows)


def register(app) -> None:  # noqa: ANN001 - a typer app; typer is imported only by the CLI
    """Attach ``deform`` to the ``musicrep data`` app."""
    import typer

    def deform(
        task: Path = typer.Argument(..., help="Task folder to deform."),
        with_: str = typer.Option(..., "--with", help="Deformation, e.g. 'noise:pink@snr=10', 'mp3@kbps=64', "
                                  "'pitch@semitones=-1' (`musicrep data deformations` lists all)."),
        out: Path = typer.Option(..., "--out", "-o", help="New task folder to write."),
        splits: str = typer.Option(",".join(SPLITS), "--splits", help="Splits to deform (others point at the "
                                   "original audio), e.g. 'test'."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random choices (noise, background file)."),
    ) -> None:
        """Write a copy of a task with its audio deformed (noise, codec, effect) as a new task folder."""
        from rich.console import Console

        new = deform_task(task, with_, out, splits=tuple(s.strip() for s in splits.split(",") if s.strip()),
                          seed=seed, progress=True)
        Console().print(f"{new.name}: {len(new)} items → {new.root}", highlight=False)

    def deformations() -> None:
        """List the deformations and their parameters."""
        from rich.console import Console

        from musicrep.augment import DEFORMATIONS, Deformation

        c = Console()
        for name, t in sorted(DEFORMATIONS.items()):
            example = str(Deformation(name))  # the canonical string with the defaults
            variants = f"  variants: {', '.join(t.variants)}" if t.variants else ""
            c.print(f"[bold]{example}[/bold]  {t.description}{variants}{'  (natural)' if t.natural else ''}",
                    highlight=False)

    app.command("deform")(deform)
    app.command("deformations")(deformations)

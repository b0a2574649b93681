"""``musicrep data …``: the command group for tasks and data (render, pool, import).

Each command is a thin shell over a library function in :mod:`musicrep.data`; heavy imports (music21,
the synthesizer) happen inside the command so ``musicrep --help`` stays fast. Their errors
(``RenderError``, ``PoolError``, ``DatasetError``, ``TaskError``) are printed as one message with exit
status 2 by the top-level group (:data:`musicrep.cli.USER_ERRORS`), not here.
Other data commands (``pool``, ``import``) attach themselves to :data:`app` in this file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="data",
    help="Tasks and data: render labelled tasks offline, build the unlabelled pool, import datasets.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@app.command()
def render(
    task: str = typer.Argument(..., help="Task to render (see `musicrep data tasks`), or `demo`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output task folder (for `demo`: parent of key/, pitch/, …)."),
    n: Optional[int] = typer.Option(None, "--n", help="Number of items (clips/notes) to render."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Render about this many minutes of audio."),
    soundfont: Optional[str] = typer.Option(
        None, "--soundfont", help="SoundFont: timgm6mb (default, in pretty_midi), fluidr3, musescore, opl3 (Debian "
        "packages), auto (best installed) or a path to a .sf2/.sf3 file."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed: same seed and options → byte-identical output."),
    workers: int = typer.Option(
        min(2, os.cpu_count() or 1), "--workers", "-j", help="Processes to render with (output does not depend on it)."
    ),
) -> None:
    """Render a labelled task from MIDI/music21 scores with a SoundFont, deterministically."""
    from musicrep.data.render import render_task

    if n is not None and minutes is not None:
        err_console.print("[red]give --n or --minutes, not both[/red]")
        raise typer.Exit(2)
    t0 = time.perf_counter()
    reports = render_task(task, out, n=n, minutes=minutes, soundfont=soundfont, seed=seed, workers=workers)
    wall = time.perf_counter() - t0
    for rep in reports:
        console.print(rep.summary(), highlight=False)
    audio = sum(r.audio_seconds for r in reports)
    console.print(f"rendered {audio / 60:.1f} min of audio in {wall:.1f} s: "
                  f"[bold]{audio / max(wall, 1e-9):.0f}× realtime[/bold] ({workers} worker(s))")


@app.command()
def tasks() -> None:
    """List the tasks the renderer knows."""
    from musicrep.data.render import RENDERERS

    for name, entry in RENDERERS.items():
        console.print(f"[bold]{name}[/bold]  {entry.description}")


# `pool` and `import` (unlabelled pool, dataset importers) live in their own module.
from musicrep.data.import_cli import register as _register_pool_and_import  # noqa: E402

_register_pool_and_import(app)

from musicrep.data.deform import register as _register_deform  # noqa: E402

_register_deform(app)

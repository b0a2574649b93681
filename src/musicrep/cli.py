"""The ``musicrep`` command line (typer).

Each command is a thin shell over a library function, so everything the CLI does can be done from
Python too. Commands that walk many files never stop at a bad one: they report it by name, finish the
rest, and exit with status 1 if anything failed.

Sub-command groups (``musicrep data …``, ``musicrep reps …``) live beside the stage they drive and are
attached at the bottom of this file.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from musicrep import __version__

app = typer.Typer(
    name="musicrep",
    help=(
        "Learn and evaluate music audio representations when labelled data is scarce.\n\n"
        "Audio is read with libsndfile (wav, flac, ogg, opus, mp3, …) and resampled to 16 kHz mono."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"musicrep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """musicrep command line."""


@app.command()
def info(
    paths: list[Path] = typer.Argument(..., help="Audio files or folders (searched recursively for audio files)."),
) -> None:
    """Show duration, sample rate, channels and format of audio files, or why a file cannot be read.

    Every file is tried; unreadable ones are listed with the reason and the command exits with status 1.
    """
    from musicrep.audio import AudioError, find_audio
    from musicrep.audio import info as audio_info

    files = [f for p in paths for f in find_audio(p)]
    if not files:
        err_console.print(f"[red]no audio files found under {', '.join(map(str, paths))}[/red]")
        raise typer.Exit(1)
    table = Table("file", "duration (s)", "rate (Hz)", "channels", "format")
    failures: list[AudioError] = []
    for f in files:
        try:
            i = audio_info(f)
        except AudioError as exc:
            failures.append(exc)
            continue
        table.add_row(str(f), f"{i.duration:.3f}", str(i.samplerate), str(i.channels), f"{i.format}/{i.subtype}")
    if table.row_count:
        console.print(table)
    for exc in failures:
        err_console.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
    console.print(f"{len(files) - len(failures)} readable, {len(failures)} failed")
    if failures:
        raise typer.Exit(1)


@app.command()
def features(
    file: Path = typer.Argument(..., help="Audio file to analyse."),
    frontend: str = typer.Option("logmel", "--frontend", "-f", help="logmel | cqt | chroma | chroma-cqt | mfcc"),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the features (.npy, float32 [bins, frames])."),
    sr: int = typer.Option(16_000, "--sr", help="Rate the audio is resampled to before analysis (Hz)."),
) -> None:
    """Compute a front-end (log-mel by default) for one file and save it as a NumPy array."""
    import numpy as np
    import torch

    from musicrep.audio import AudioError, ClipTooShortError, load
    from musicrep.frontends import FRONTENDS, get_frontend

    if frontend not in FRONTENDS:
        err_console.print(f"[red]unknown --frontend {frontend!r}[/red]; choose one of: {', '.join(FRONTENDS)}")
        raise typer.Exit(2)
    try:
        y = load(file, sr=sr)
    except AudioError as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    module = get_frontend(frontend, sample_rate=sr)
    try:
        with torch.inference_mode():
            feats = module(torch.from_numpy(y))[0].numpy().astype(np.float32)
    except ClipTooShortError as exc:
        err_console.print(f"[red]error[/red] {file}: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, feats)
    console.print(f"{file}: {frontend} {feats.shape[0]}×{feats.shape[1]} "
                  f"({module.frame_rate:g} frames/s) → {out}")


@app.command()
def evaluate(
    config: Path = typer.Argument(..., help="YAML config: tasks, representations, probes, grid, seeds, … "
                                  "(unknown keys are errors; see docs/architecture.md)."),
    out: Path = typer.Option(None, "--out", "-o", help="Override the config's output folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Evaluate representations × tasks × probes; write OUT/results.csv and print a leaderboard.

    Re-running skips finished work: embeddings are cached in the store, probe results in results.csv.
    """
    from musicrep.config import ConfigError, load_config
    from musicrep.evaluate import evaluate as run_evaluate
    from musicrep.results import leaderboard, print_leaderboard

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    cfg = cfg.resolve_paths(Path.cwd())
    if out is not None:
        cfg = cfg.model_copy(update={"out": out})
    results = run_evaluate(cfg, progress=not quiet, console=console)
    print_leaderboard(leaderboard(results), console)
    console.print(f"results: {cfg.out / 'results.csv'}")


from musicrep.data.cli import app as _data_app  # noqa: E402

app.add_typer(_data_app, name="data")

from musicrep.models.cli import embed as _embed, reps_app as _reps_app  # noqa: E402

app.add_typer(_reps_app, name="reps")
app.command("embed")(_embed)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

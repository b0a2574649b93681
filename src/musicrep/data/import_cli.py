"""``musicrep data pool`` and ``musicrep data import``: thin typer shells over :mod:`~musicrep.data.pool`
and :mod:`~musicrep.data.importers`.

Kept apart from :mod:`musicrep.data.cli` (which owns the ``data`` app and ``render``) so the two halves of
the data package can change without editing each other's files; :func:`register` attaches the commands.
Both commands finish the batch when single files are bad, list them by name, and exit with status 1; an
error that stops the whole command (``PoolError``, ``DatasetError``, ``TaskError``) is printed by the
top-level group as one message with exit status 2 (:data:`musicrep.cli.USER_ERRORS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from musicrep.data.pool_presets import POOL_PRESETS  # data only: cheap enough for --help

console = Console()
err_console = Console(stderr=True)


def pool(
    out: Path = typer.Option(..., "--out", "-o", help="Pool folder (created or extended; resumable)."),
    from_: Optional[list[Path]] = typer.Option(
        None, "--from", help="Folder of audio files to pool (repeatable; source name = folder name)."),
    debian: Optional[list[str]] = typer.Option(
        None, "--debian", help="Debian package to fetch with apt-get download and unpack with dpkg -x "
        "(repeatable). `--debian default` takes the `default` preset's list of game-music packages."),
    preset: Optional[str] = typer.Option(
        None, "--preset", help="Named pool recipe: " + "; ".join(
            f"`{p.name}`: {p.description}" for p in POOL_PRESETS.values())
        + ". Writes provenance.csv beside the manifest when clips are joined or speech is synthesised."),
    download_dir: Optional[Path] = typer.Option(
        None, "--download-dir", help="Keep .deb files, unpacked trees and staged audio here for a later run "
        "(default: temp)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Decoding processes."),
) -> None:
    """Decode audio to 16 kHz mono FLAC with a manifest (duration, sha256, source, licence file).

    Sources: folders (--from), Debian packages (--debian) or a preset (--preset default = the music pool,
    --preset nonmusic = speech prompts, game sound effects and espeak-ng speech of the same size).
    Bad files are named and skipped (exit status 1); a second run adds only what is missing.
    """
    from musicrep.data.pool import PoolError, PoolSource, build_pool, pool_from_debian, read_manifest
    from musicrep.data.pool_staging import pool_from_preset

    if sum(map(bool, (from_, debian, preset))) != 1:
        err_console.print("[red]give one of --from FOLDER…, --debian PKG… or --preset NAME[/red]")
        raise typer.Exit(2)

    def show(file: str, why: str) -> None:
        err_console.print(f"[red]skipped[/red] {file}: {why}", highlight=False, soft_wrap=True)

    if from_:
        missing = [p for p in from_ if not p.is_dir()]
        if missing:
            raise PoolError(f"{missing[0]}: not a folder; --from expects a folder of audio files")
        report = build_pool([PoolSource(p.resolve().name, p) for p in from_], out, jobs=jobs, on_failure=show)
    elif preset or list(debian or []) == ["default"]:
        report = pool_from_preset(preset or "default", out, download_dir=download_dir, jobs=jobs, on_failure=show)
    else:
        report = pool_from_debian(list(debian or []), out, download_dir=download_dir, jobs=jobs, on_failure=show)
    minutes: dict[str, float] = {}
    for row in read_manifest(out):
        minutes[row["source"]] = minutes.get(row["source"], 0.0) + float(row["duration"]) / 60
    console.print("minutes per source: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(minutes.items())),
                  highlight=False, soft_wrap=True)
    console.print(
        f"{len(report.added)} added ({report.seconds_added / 60:.1f} min), {len(report.skipped)} already pooled, "
        f"{len(report.failed)} failed; pool holds {report.seconds_total / 60:.1f} min → {report.manifest} "
        f"({report.elapsed:.0f} s)", highlight=False)
    if report.failed:
        raise typer.Exit(1)


def import_(
    name: Optional[str] = typer.Argument(None, help="Dataset: mtat, gtzan, nsynth, giantsteps, jamendo, emomusic, tinysol, "
                               "folder, csv (see --list)."),
    root: Optional[Path] = typer.Option(None, "--root", help="The dataset's local folder (csv: the CSV file)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Task folder to write (several tasks: OUT/<task>/)."),
    task: Optional[str] = typer.Option(None, "--task", help="Only this task of a multi-task dataset "
                                       "(nsynth: pitch|instrument, jamendo: top50|moodtheme, …)."),
    splits: Optional[Path] = typer.Option(None, "--splits", help="Folder with the split files, if not under --root."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Folder with the audio, if not under --root."),
    kind: Optional[str] = typer.Option(None, "--kind", help="csv only: multiclass|multilabel|regression|key|pitch."),
    seed: int = typer.Option(0, "--seed", help="Seed of the splits made for datasets without official ones."),
    list_: bool = typer.Option(False, "--list", help="List the importers and the layout each expects, then exit."),
) -> None:
    """Turn a local copy of a public dataset into task folder(s); the audio stays where it is."""
    from musicrep.data.importers import IMPORTERS, ImportOptions, import_dataset

    if list_:
        for entry in IMPORTERS.values():
            console.print(f"[bold]{entry.name}[/bold]", highlight=False, end="  ")
            console.print(f"{entry.description}\n{entry.layout}\n", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit()
    if name is None or root is None or out is None:
        err_console.print("[red]give NAME, --root and --out[/red] (or --list)")
        raise typer.Exit(2)
    report = import_dataset(name, root, out, task=task,
                            options=ImportOptions(splits=splits, audio=audio, seed=seed, kind=kind))
    for file, why in report.skipped:
        err_console.print(f"[red]skipped[/red] {file}: {why}", highlight=False, soft_wrap=True)
    if report.left_out:
        console.print(f"{len(report.left_out)} annotation(s) not usable and left out, e.g. "
                      f"{report.left_out[0][0]}: {report.left_out[0][1]}", highlight=False)
    if report.duplicates:
        tname, d = report.duplicates[0]
        console.print(f"{len(report.duplicates)} item(s) with byte-identical audio dropped (kept in the earliest "
                      f"split), e.g. {tname}: {d.dropped} ({d.split}) = {d.kept} ({d.kept_split}); "
                      f"listed in task.yaml provenance", highlight=False)
    for tname, folder in report.tasks.items():
        counts = ", ".join(f"{s} {n}" for s, n in report.counts[tname].items())
        console.print(f"{tname}: {counts} ({report.minutes[tname]:.1f} min) → {folder}", highlight=False)
    if report.skipped:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach ``pool`` and ``import`` to the ``musicrep data`` app."""
    app.command("pool")(pool)
    app.command("import")(import_)

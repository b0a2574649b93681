"""The ``musicrep`` command line (typer).

Each command is a thin shell over a library function, so everything the CLI does can be done from
Python too. Commands that walk many files never stop at a bad one: they report it by name, finish the
rest, and exit with status 1 if anything failed.

Errors that are the user's to fix (a bad task folder, audio file, config, weights file, dataset, option
value: :data:`USER_ERRORS`) are handled once, for every command, by the top-level group: the error's own
message (the file, what is wrong, the fix) goes to stderr and the exit status is 2. ``--debug`` (or
``MUSICREP_DEBUG=1``) lets the exception through with its traceback instead. Anything else is a bug and
always shows its traceback.

Sub-command groups (``musicrep data …``, ``musicrep reps …``) live beside the stage they drive and are
attached at the bottom of this file.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Optional
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from musicrep import __version__

#: Errors that are the user's to fix, as ``module:Class``. Each names the file or key and the fix in its
#: message, so the CLI prints that message alone and exits 2. Names, not classes: importing every stage to
#: get its error class would slow every command; a class whose module was never imported cannot have been
#: raised, so it is looked up only in the modules already loaded (:func:`user_error_types`). Bad option
#: values raise :class:`OptionError`, always a user error.
USER_ERRORS: tuple[str, ...] = (
    "musicrep.audio:AudioError",
    "musicrep.config:ConfigError",
    "musicrep.data.task:TaskError",
    "musicrep.data.importers:DatasetError",
    "musicrep.data.pool:PoolError",
    "musicrep.data.render:RenderError",
    "musicrep.models.base:WeightsError",
    "musicrep.report:ReportError",
    "musicrep.augment.base:DeformationError",
    "musicrep.train.config:PretrainConfigError",
    "musicrep.train.data:TrainDataError",
    "musicrep.search.index:SearchError",
)
_DEBUG = "musicrep.debug"  # key in click's ctx.meta, shared by every nested command context

console = Console()
err_console = Console(stderr=True)


class OptionError(ValueError):
    """A command-line value that cannot be used; the message names the option and what it accepts."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """:class:`OptionError` and the classes named in :data:`USER_ERRORS` whose modules are loaded."""
    found: list[type[BaseException]] = [OptionError]  # this module's own, whether imported or run as __main__
    for name in USER_ERRORS:
        module, _, cls = name.partition(":")
        if module in sys.modules:
            found.append(getattr(importlib.import_module(module), cls))
    return tuple(found)


class _Group(TyperGroup):
    """The top-level command group: turns a user error raised by any command below it into one message."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if ctx.meta.get(_DEBUG) or not isinstance(exc, user_error_types()):
                raise
            err_console.print(Text.assemble(("error", "bold red"), f": {exc}"), soft_wrap=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="musicrep",
    cls=_Group,
    help=(
        "Learn and evaluate music audio representations when labelled data is scarce.\n\n"
        "Audio is read with libsndfile (wav, flac, ogg, opus, mp3, …) and resampled to 16 kHz mono."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"musicrep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", envvar="MUSICREP_DEBUG",
                               help="Show the full traceback of user errors (bad file, config, …) too."),
) -> None:
    """musicrep command line."""
    ctx.meta[_DEBUG] = debug


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

    from musicrep.audio import ClipTooShortError, load
    from musicrep.frontends import FRONTENDS, get_frontend

    if frontend not in FRONTENDS:
        raise OptionError(f"unknown --frontend {frontend!r}; choose one of: {', '.join(FRONTENDS)}")
    y = load(file, sr=sr)
    module = get_frontend(frontend, sample_rate=sr)
    try:
        with torch.inference_mode():
            feats = module(torch.from_numpy(y))[0].numpy().astype(np.float32)
    except ClipTooShortError as exc:
        raise OptionError(f"{file}: {exc}") from None
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
    from musicrep.config import load_config
    from musicrep.evaluate import evaluate as run_evaluate
    from musicrep.results import leaderboard, print_leaderboard

    cfg = load_config(config).resolve_paths(Path.cwd())
    if out is not None:
        cfg = cfg.model_copy(update={"out": out})
    results = run_evaluate(cfg, progress=not quiet, console=console)
    print_leaderboard(leaderboard(results), console)
    console.print(f"results: {cfg.out / 'results.csv'}")


@app.command()
def study(
    name: str = typer.Argument(..., help="robustness | augmentation | layerwise | limited-data | finetune."),
    config: Optional[Path] = typer.Argument(None, help="YAML config of the study (or give --preset)."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="smoke (seconds, CI) | laptop (2 cores, "
                                         "< 1 h) | paper (the seeds' settings)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Results folder (default: the config's, or "
                                       "runs/NAME-PRESET)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run a study: rows with its own columns into OUT/results.csv; a re-run does only what is missing.

    Tasks in a study config may be render specs ({render: pitch, n: 96}); they are rendered under OUT/data
    on first use. `musicrep report OUT --out OUT/report.html` draws the results.
    """
    from musicrep.results import leaderboard, print_leaderboard
    from musicrep.studies import STUDIES, load_study

    cfg = load_study(name, config, preset, out)
    t0 = time.perf_counter()
    results = STUDIES[name].run(cfg, progress=not quiet, console=console)
    board = leaderboard(results[results["study"] == name])
    print_leaderboard(board[board["deformation"] == "none"] if "deformation" in board else board, console)
    console.print(f"{name}: {len(results)} rows in {cfg.out / 'results.csv'} ({time.perf_counter() - t0:.0f} s)")


@app.command()
def embed(
    file: Path = typer.Argument(..., help="Audio file to embed (any format libsndfile reads)."),
    rep: str = typer.Option(..., "--rep", "-r", help="Representation name (see `musicrep reps list`)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Frames: .npy float32 [L, W·T, H], the T frames of "
                                    "each of the W windows in window order (windows overlap when hop < window)."),
    mean: Path | None = typer.Option(None, "--mean", "-m", help="Timeline mean: .npy float32 [L, H], the mean "
                                     "over windows of each window's frame mean (what the embedding store holds)."),
    window: float | None = typer.Option(None, "--window", help="Window length (s); default: the "
                                        "representation's input window (3 s for the encoders), as the store."),
    hop: float | None = typer.Option(None, "--hop", help="Hop between windows (s); default: the store's (2 s)."),
    pad: bool | None = typer.Option(None, "--pad/--no-pad", help="Cover the whole clip (an end-aligned tail "
                                    "window; a short clip zero-padded), as the store does by default."),
    layers: str = typer.Option("all", "--layers", help="'all' or comma-separated layer indices, e.g. 0,2,5."),
    size: str | None = typer.Option(None, "--size", help="Model size: small | paper (encoders only)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the untrained random twin (encoders)."),
    weights: Path | None = typer.Option(None, "--weights", help="Trained weights (.safetensors or .pt)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Windows per forward pass."),
    opt: list[str] = typer.Option([], "--opt", help="Extra constructor setting KEY=VALUE (JSON values), "
                                  "repeatable, e.g. --opt n_mfcc=13 or --opt module=hearbaseline."),
) -> None:
    """Embed FILE as extraction does for the store (same windows, same numbers) and save frames and/or the mean.

    Give --out (every window's frames), --mean (the timeline mean the store holds), or both.
    """
    import numpy as np
    from pydantic import ValidationError

    from musicrep.audio import ClipTooShortError
    from musicrep.embed import WindowConfig, embed_file
    from musicrep.models import get
    from musicrep.models.cli import build_kwargs, parse_layers
    from musicrep.util import validation_problems

    if out is None and mean is None:
        raise OptionError("give --out FRAMES.npy, --mean MEAN.npy, or both")
    given = {"window_seconds": window, "hop_seconds": hop, "pad": pad}
    try:
        win = WindowConfig(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise OptionError("; ".join(f"--{k.split('_')[0]}: {m}" for k, m in validation_problems(exc))) from None
    try:
        r = get(rep, **build_kwargs(size, seed, weights, opt))
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:  # unknown, unavailable or misconfigured
        raise OptionError(f"--rep {rep}: {exc.args[0] if exc.args else exc}") from None
    try:
        idx = parse_layers(layers, r.n_layers)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    try:
        res = embed_file(file, r, win, layers=idx, frames=out is not None, batch_size=batch_size)
    except ClipTooShortError as exc:
        raise OptionError(f"{file}: {exc}") from None
    if out is not None:
        assert res.frames is not None
        n_win, n_lay, n_t, width = res.frames.shape
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, np.ascontiguousarray(res.frames.transpose(1, 0, 2, 3).reshape(n_lay, n_win * n_t, width)))
    if mean is not None:
        mean.parent.mkdir(parents=True, exist_ok=True)
        np.save(mean, res.mean)
    w = res.window
    saved = " and ".join(f"{what} → {path}" for what, path in (("frames", out), ("mean", mean)) if path is not None)
    console.print(f"{file}: {r.id} layers={len(idx)} windows={len(res.starts)} ({w.window_seconds:g} s every "
                  f"{w.hop_seconds:g} s) {r.frame_rate:g} Hz width={res.mean.shape[1]}: {saved}", highlight=False,
                  soft_wrap=True)


@app.command()
def pretrain(
    config: Optional[Path] = typer.Argument(None, help="YAML config (keys of `musicrep.train.config.PretrainConfig`); "
                                            "or give --preset. Its keys win over the preset's."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="smoke (seconds, CI) | laptop (a small encoder "
                                         "in ≤ 30 min on 2 cores) | paper (the seeds' settings) | musicrep-small "
                                         "(the shipped model's recipe)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Encoder: vgg, musicnn, samplecnn, ast, tmae, "
                                        "nfnet, conformer."),
    objective: Optional[str] = typer.Option(None, "--objective", help="supervised | simclr | masked | bestrq."),
    minutes: Optional[str] = typer.Option(None, "--minutes", help="Budget: minutes of the pool/task (nested), or all."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="Unlabelled pool folder (`musicrep data pool`)."),
    task: Optional[Path] = typer.Option(None, "--task", help="Or a task folder (labels for supervised)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimiser steps (the same for every budget)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Checkpoint folder (default: the config's, or "
                                       "runs/pretrain-PRESET)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT's last checkpoint (with only --out: "
                                "the settings OUT/config.yaml saved)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto (CUDA when available) | cpu | cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Pretrain an encoder with an objective on a budget of a pool (or task); OUT is then a representation.

    Use it as {name: MODEL, config: {weights: OUT}} in `musicrep evaluate`/study configs, or
    `musicrep embed --rep MODEL --weights OUT`. Under `torchrun --nproc_per_node N` it trains with DDP.
    """
    from musicrep.train.config import load_pretrain
    from musicrep.train.trainer import completed
    from musicrep.train.trainer import pretrain as run_pretrain

    if config is None and preset is None and resume and out is not None and (out / "config.yaml").is_file():
        config = out / "config.yaml"  # `--resume --out DIR` alone: continue the run with the settings it saved
    if config is None and preset is None:
        raise OptionError("give a CONFIG.yaml or --preset smoke|laptop|paper (or --resume --out DIR of a started run)")
    cfg = load_pretrain(config, preset, model=model, objective=objective, minutes=minutes, pool=pool, task=task,
                        steps=steps, out=out, device=device)
    if resume and completed(cfg.out, cfg.steps):
        console.print(f"{cfg.out}: already complete ({cfg.steps} steps); nothing to do", highlight=False, soft_wrap=True)
        return
    t0 = time.perf_counter()
    folder = run_pretrain(cfg, resume=resume, progress=not quiet)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    console.print(f"{cfg.model}/{cfg.objective}: {cfg.steps} steps in {time.perf_counter() - t0:.0f} s → {folder}\n"
                  f"use it as {{name: {cfg.model}, config: {{weights: {folder}}}}}", highlight=False, soft_wrap=True)


@app.command()
def finetune(
    config: Optional[Path] = typer.Argument(None, help="YAML config (keys of `musicrep.train.config.FinetuneConfig`); "
                                            "or give --preset. Its keys win over the preset's."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="smoke (seconds, CI) | laptop (a small encoder "
                                         "in minutes on 2 cores)."),
    task: Optional[Path] = typer.Option(None, "--task", "-t", help="Labelled task folder: trains on its train split."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Encoder: vgg, musicnn, samplecnn, ast, tmae, "
                                        "nfnet, conformer."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="Starting checkpoint folder (`musicrep "
                                           "pretrain --out`) or a shipped model (musicrep-small); default: untrained "
                                           "weights."),
    unfreeze: Optional[str] = typer.Option(None, "--unfreeze", help="all | N: train every block, or only the "
                                           "encoder's last N (one per layer) and the head."),
    per_class: Optional[int] = typer.Option(None, "--per-class", help="Labelled budget: training items per class."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimiser steps."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (default 1e-4)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Checkpoint folder (default: the config's, or "
                                       "runs/finetune-PRESET)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT's last checkpoint (with only --out: "
                                "the settings OUT/config.yaml saved)."),
    score: bool = typer.Option(True, "--score/--no-score", help="Score the model's own head on the task's test "
                               "split afterwards (rows in OUT/eval/results.csv)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto (CUDA when available) | cpu | cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fine-tune an encoder (from a checkpoint) with a task head on a labelled task; OUT is a representation
    and, with its head, a classifier.

    The pretraining trainer and checkpoint format: use OUT as {name: MODEL, config: {weights: OUT}} anywhere a
    representation goes. --unfreeze N trains only the last N blocks (+ head); the rest stay the checkpoint's.
    """
    from musicrep.train.config import load_finetune
    from musicrep.train.finetune import finetune as run_finetune
    from musicrep.train.trainer import completed

    if config is None and preset is None and resume and out is not None and (out / "config.yaml").is_file():
        config = out / "config.yaml"  # `--resume --out DIR` alone: continue the run with the settings it saved
    if config is None and preset is None:
        raise OptionError("give a CONFIG.yaml or --preset smoke|laptop (or --resume --out DIR of a started run)")
    if unfreeze is not None and unfreeze != "all" and not unfreeze.isdigit():
        raise OptionError(f"--unfreeze: {unfreeze!r}; give all or a number of blocks")
    cfg = load_finetune(config, preset, task=task, model=model, weights=weights, per_class=per_class, steps=steps,
                        lr=lr, out=out, device=device,
                        unfreeze=None if unfreeze is None else (unfreeze if unfreeze == "all" else int(unfreeze)))
    done = resume and completed(cfg.out, cfg.steps)
    t0 = time.perf_counter()
    if done:
        console.print(f"{cfg.out}: already complete ({cfg.steps} steps)", highlight=False, soft_wrap=True)
    else:
        run_finetune(cfg, resume=resume, progress=not quiet)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    if not done:
        console.print(f"{cfg.model}/finetune (unfreeze {cfg.unfreeze}): {cfg.steps} steps in "
                      f"{time.perf_counter() - t0:.0f} s → {cfg.out}\nuse it as {{name: {cfg.model}, config: "
                      f"{{weights: {cfg.out}}}}}", highlight=False, soft_wrap=True)
    if score:
        from musicrep.results import best_line
        from musicrep.studies.finetune import score_head

        rows = score_head(cfg.out, cfg.task, progress=not quiet)
        said = best_line(rows) if len(rows) else "no readable test items"
        console.print(f"its own head on the test split of {cfg.task}: {said} → {cfg.out / 'eval' / 'results.csv'}",
                      highlight=False, soft_wrap=True)


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders (each holds results.csv, as written by "
                                      "`musicrep evaluate` or `musicrep study`)."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML page to write; the markdown "
                             "summary goes beside it with the same stem (.md)."),
) -> None:
    """Write one self-contained HTML report (leaderboard, a plot per study, configs, versions) + a markdown summary.

    The page embeds every figure, so it opens anywhere, e.g. from a mail attachment.
    """
    from musicrep.report import write_report

    files = write_report(runs, out)
    console.print(f"report: {files.html} ({files.n_figures} figures)\nsummary: {files.markdown}", highlight=False,
                  soft_wrap=True)


from musicrep.data.cli import app as _data_app  # noqa: E402

app.add_typer(_data_app, name="data")

from musicrep.models.cli import reps_app as _reps_app  # noqa: E402

app.add_typer(_reps_app, name="reps")

from musicrep.search.cli import app as _index_app  # noqa: E402

app.add_typer(_index_app, name="index")

from musicrep.compare import register as _register_compare  # noqa: E402

_register_compare(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

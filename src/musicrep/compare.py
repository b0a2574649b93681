"""``musicrep compare DATA --out DIR``: here is my labelled set — which representation and probe should I use,
and how sure is that?

Takes DATA — a folder with one sub-folder of audio per class, a folder of audio plus a CSV of labels
(``--labels``), or a task folder (``task.yaml``) — and gives, in DIR:

- ``task/``: DATA imported once (:func:`musicrep.data.importers.import_dataset`, the ``folder`` or ``csv``
  importer; unreadable files are named and left out) and reused by a re-run;
- ``results.csv``, ``leaderboard.csv`` (with 95 % CIs), ``predictions/``, ``ties.csv``: an
  :func:`musicrep.evaluate.evaluate` run of :func:`default_representations` (plus ``--rep``) × linear / MLP /
  kNN probes, each task winner re-fitted with 3 probe seeds (:func:`musicrep.evaluate.refit_winners`);
- ``recommendation.md`` (also printed): the winner (representation, probe, layer), its score and CI, and the
  entries a paired bootstrap over the same items cannot tell apart from it
  (:func:`musicrep.results.tied_with_winner`);
- ``report.html``: the usual report of the run (:func:`musicrep.report.write_report`).

Small sets are cross-validated (:func:`choose_folds`): when the test split would hold fewer than
:data:`MIN_TEST_ITEMS` items, or fewer than :data:`MIN_TEST_PER_CLASS` of some class, every item is scored
out of fold (:data:`FOLDS`-fold, :mod:`musicrep.probe.crossval`). Why those numbers: a 95 % CI of an accuracy
near 0.7 over n items is about ±0.9/√n wide, so 100 items give ±0.09, enough to tell a good representation
from a poor one; below that, or with a class seen a handful of times, the split's noise decides the ranking.
With 200 clips a 10 % test split holds 20 (±0.2); 5-fold cross-validation scores all 200 (±0.06).

Why a module of its own above ``report``: it is a user's whole session (import → evaluate → ties → report);
the CLI command is a thin shell over :func:`compare`, so the same can be done from Python.
"""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

__all__ = ["FOLDS", "HANDCRAFTED", "HOP_SECONDS", "MIN_TEST_ITEMS", "MIN_TEST_PER_CLASS", "NOT_BY_DEFAULT", "PROBES",
           "RANDOM_TWINS", "CompareResult", "choose_folds", "command", "compare",
           "default_representations", "parse_rep", "recommendation", "register"]

#: Handcrafted features in the default set: the demo's (MFCC for timbre, CQT-chroma for harmony, CQT for pitch).
HANDCRAFTED: tuple[str, ...] = ("mfcc", "chroma-cqt", "cqt")
#: Random-init twins in the default set: the small trainable encoders cheap enough for 100 min of audio in the
#: budget (VGG-ish CNN, ~22× realtime loaded). Left out: tmae and samplecnn (3× slower per second of audio),
#: musicnn (as costly as vgg and no better as an untrained baseline on the demo tasks).
RANDOM_TWINS: tuple[dict[str, Any], ...] = (
    {"name": "vgg", "config": {"size": "small", "seed": 0}, "label": "vgg-random"},
)
#: The default set (mfcc, chroma-cqt, cqt, vgg-random, musicrep-small; no pretrained model was fast enough
#: here) ran benchmarks/compare.py's 200 × 30 s clips in 98 s wall, 179 s CPU (2 cores, load 1.0–1.6); on
#: the machine shared with 4 other jobs, without musicrep-small, 462 s.
#: Offline pretrained models left out of the default set, with the reason; ``--rep NAME`` adds one. Speeds
#: measured on 30 s clips with 2 cores shared with other jobs (load 4–9): at 7–15× realtime the first three
#: alone take 7–14 min for 100 min of audio, over the 10-minute budget of the whole comparison.
NOT_BY_DEFAULT: dict[str, str] = {
    "crepe": "pitch tracker, ~7× realtime: ~14 min for 100 min of audio",
    "basic-pitch": "note transcriber, ~8× realtime: ~12 min for 100 min of audio",
    "madmom-key": "key classifier, ~15× realtime: ~7 min for 100 min of audio",
    # benchmarks/compare.py's 200 × 30 s run: 252 s, as long as vgg's; its 12-d chroma duplicates chroma-cqt's
    "madmom-chroma": "deep chroma, 252 s for 100 min of audio (a third of the budget); chroma-cqt covers chroma",
}
#: Windows of 3 s every 3 s (the store's default hops 2 s): abutting windows cover a clip once, a third less
#: work for a clip-level timeline mean that overlap barely changes. Every representation registered today
#: has a 3 s window (or more: tempogram's 8 s, which then overlap); one with a shorter window would be
#: sampled with gaps.
HOP_SECONDS = 3.0
#: The probes every representation gets.
PROBES: tuple[str, ...] = ("linear", "mlp", "knn")
#: Folds of the cross-validation small sets get.
FOLDS = 5
#: A test split smaller than this (or with fewer than MIN_TEST_PER_CLASS items of a class) means cross-validation.
MIN_TEST_ITEMS = 100
MIN_TEST_PER_CLASS = 10

#: Beside the imported task: the files the import left out and why (a re-run reuses the import and names them).
SKIPPED_CSV = "skipped.csv"
_PROBE_NAMES = {"linear": "linear", "mlp": "MLP", "knn": "kNN", "centroid": "centroid"}


@dataclass
class CompareResult:
    """What :func:`compare` wrote and decided."""

    out: Path
    task: Path
    folds: int
    why_folds: str
    recommendation: str
    results: Any = None
    ties: Any = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- the set
def parse_rep(text: str) -> dict[str, Any]:
    """``"NAME"`` or ``"NAME:KEY=VALUE,KEY=VALUE"`` (JSON values; ``hear:MODULE`` too) → a ``representations:``
    entry.

    Raises :class:`~musicrep.config.ConfigError` naming ``--rep`` and the fix for an unknown name or a bad pair.
    """
    from musicrep import models
    from musicrep.config import ConfigError
    from musicrep.models.cli import parse_opts

    hear = text.startswith("hear:")  # hear:MODULE names a HEAR module; its settings follow a second colon
    name, _, opts = (text[len("hear:"):] if hear else text).partition(":")
    name = ("hear:" if hear else "") + name.strip()
    if not name.startswith("hear:") and name not in models.names():
        raise ConfigError(f"--rep {text}: unknown representation {name!r}; `musicrep reps list` shows them all")
    try:
        config = parse_opts([o for o in opts.split(",") if o.strip()]) if opts else {}
    except ValueError:
        raise ConfigError(f"--rep {text}: settings go as NAME:KEY=VALUE,KEY=VALUE, e.g. vgg:size=small,seed=0") from None
    return {"name": name, **({"config": config} if config else {})}


def default_representations() -> list[dict[str, Any]]:
    """The default set: :data:`HANDCRAFTED`, :data:`RANDOM_TWINS`, every offline pretrained model that can run
    here except :data:`NOT_BY_DEFAULT`, and every model shipped with musicrep (``models.shipped.SHIPPED``:
    musicrep-small)."""
    from musicrep import models
    from musicrep.config import available_pretrained

    reps: list[dict[str, Any]] = [{"name": n} for n in HANDCRAFTED] + [dict(r) for r in RANDOM_TWINS]
    reps += available_pretrained(skip=tuple(NOT_BY_DEFAULT))
    from musicrep.models.shipped import SHIPPED

    reps += [{"name": n} for n in SHIPPED if all(r["name"] != n for r in reps) and models.entry(n).available()[0]]
    return reps


def _representations(add: Sequence[str], only: Sequence[str]) -> list[dict[str, Any]]:
    from musicrep.config import RepresentationConfig

    reps = [parse_rep(r) for r in only] if only else default_representations()
    reps += [parse_rep(r) for r in add]
    seen: set[str] = set()
    out = []
    for r in reps:  # a --rep that repeats a default (same label) is evaluated once
        label = RepresentationConfig(**r).display
        if label not in seen:
            seen.add(label)
            out.append(r)
    return out


# ---------------------------------------------------------------------------------------------- the data
def _data_error(msg: str) -> Exception:
    from musicrep.data.importers import DatasetError

    return DatasetError(msg)


_LAYOUT = ("give a folder with one sub-folder of audio per class (DATA/<class>/<clip>.wav), a folder of audio "
           "with --labels FILE.csv (columns path,label), or a task folder (task.yaml)")


def _import(data: Path, labels: Path | None, dest: Path, console: Console,
            progress: bool) -> tuple[Path, list[tuple[str, str]]]:
    """DATA as a task folder: DATA itself when it is one, else DATA imported into ``dest`` (once)."""
    from musicrep.audio import find_audio
    from musicrep.data.importers import DatasetError, ImportOptions, import_dataset
    from musicrep.util import read_yaml_mapping

    if labels is None and data.is_file() and data.suffix.lower() == ".csv":
        data, labels = data.parent, data
    if not data.exists():
        raise _data_error(f"{data}: not found; {_LAYOUT}")
    if (data / "task.yaml").is_file():
        return data, []
    if not data.is_dir():
        raise _data_error(f"{data}: not a folder; {_LAYOUT}")
    importer, root = ("csv", labels) if labels is not None else ("folder", data)
    if labels is not None and not labels.is_file():
        raise _data_error(f"{labels}: --labels file not found; give a CSV with path,label columns")
    if (dest / "task.yaml").is_file():
        prov = read_yaml_mapping(dest / "task.yaml", DatasetError, "task keys").get("provenance", {}) or {}
        if str(prov.get("root", "")) == str(root.resolve()) and prov.get("importer") == importer:
            console.print(f"{dest}: imported earlier from {root} (delete it to import again)", highlight=False)
            seen = dest / SKIPPED_CSV
            return dest, ([tuple(r) for r in csv.reader(seen.open(encoding="utf-8"))][1:] if seen.is_file() else [])
        raise _data_error(f"{dest}: holds a task imported from {prov.get('root', '?')}, not {root}; give another "
                          f"--out or delete {dest}")
    if labels is None:
        audio = find_audio(data)
        if not audio:
            raise _data_error(f"{data}: no audio files found; {_LAYOUT}")
        if all(f.parent == data for f in audio):
            raise _data_error(f"{data}: the audio files lie directly in the folder, so they have no class; put each "
                              "class's clips in a sub-folder (DATA/<class>/<clip>), or give --labels FILE.csv")
    report = import_dataset(importer, root, dest, options=ImportOptions(audio=data if labels is not None else None),
                            progress=progress)
    with (dest / SKIPPED_CSV).open("w", newline="", encoding="utf-8") as f:  # so a re-run still names them
        csv.writer(f).writerows([("file", "reason"), *report.skipped])
    return dest, report.skipped


def _check_classes(task: Any, data: Path, created: bool) -> None:
    """At least two classes with items, else a one-line error (and the just-written import removed)."""
    from musicrep.kinds import get_kind

    if get_kind(task.kind).loss != "ce":
        return
    classes = sorted(task.items["label"].astype(str).unique())
    if len(classes) < 2:
        if created:
            shutil.rmtree(task.root, ignore_errors=True)
        found = f"only one class ({classes[0]!r})" if classes else "no labelled items"
        raise _data_error(f"{data}: {found} found; a comparison needs at least two classes — one sub-folder of "
                          "audio per class (DATA/<class>/<clip>)")


def choose_folds(task: Any, folds: int | None = None) -> tuple[int, str]:
    """``(k, why)``: :data:`FOLDS`-fold cross-validation when the task's test split is small (see the module
    docstring), else 0 (its own splits). ``folds`` forces k (0: the task's splits)."""
    from musicrep.kinds import get_kind

    items = task.items
    n = len(items)
    test = items[items["split"] == "test"]
    if folds is not None:
        return folds, ("--folds 0: scored on the task's own test split" if folds == 0
                       else f"--folds {folds}: every one of the {n} items scored out of fold")
    per_class = None
    if get_kind(task.kind).loss == "ce":
        counts = test["label"].astype(str).value_counts()
        per_class = min((int(counts.get(c, 0)) for c in items["label"].astype(str).unique()), default=0)
    small = len(test) < MIN_TEST_ITEMS or (per_class is not None and per_class < MIN_TEST_PER_CLASS)
    if small:
        what = (f"{len(test)} items" + ("" if per_class is None else f" ({per_class} of the rarest class)"))
        return FOLDS, (f"a test split would hold {what} (under {MIN_TEST_ITEMS} items or {MIN_TEST_PER_CLASS} per "
                       f"class: too few for a useful CI), so {FOLDS}-fold cross-validation scores all {n} items "
                       "out of fold")
    return 0, f"scored on the task's test split ({len(test)} items, at least {MIN_TEST_PER_CLASS} per class)"


# ---------------------------------------------------------------------------------------------- the answer
def _rep_name(label: str) -> str:
    return f"{label[:-len('-random')]} (random)" if label.endswith("-random") else label


def _layer_name(layer: Any) -> str:
    text = str(layer)
    return text.split(":", 1)[1] if ":" in text else text


def _entry(row: Any, layers_of: dict[str, int]) -> str:
    """``mfcc + MLP`` or ``vgg (random) + linear on block4`` (the layer only where there is a choice)."""
    layer = f" on {_layer_name(row['layer'])}" if layers_of.get(str(row["representation"]), 1) > 1 else ""
    return f"{_rep_name(str(row['representation']))} + {_PROBE_NAMES.get(str(row['probe']), row['probe'])}{layer}"


def _score(row: Any) -> str:
    ci = "" if row["ci_low"] != row["ci_low"] else f" [{float(row['ci_low']):.2f}, {float(row['ci_high']):.2f}]"
    return f"{float(row['value']):.2f}{ci}"


def recommendation(ties: Any, results: Any, why_folds: str, task_name: str = "") -> str:
    """The plain-language answer, as markdown: the winner, its score and CI, the entries statistically
    indistinguishable from it, how it was measured, and the whole ranking.

    ``ties``: one task's :func:`musicrep.results.tied_with_winner` rows; ``results``: the results table
    (layer counts per representation, so a layer is named only where there was a choice).
    """
    from musicrep.results import seed_spread

    layers_of = {str(r): int(g["layer"].nunique()) for r, g in results.groupby("representation")}
    ties = ties.sort_values("value", ascending=False, kind="stable")
    top = ties[ties["status"] == "winner"].iloc[0]
    metric = str(top["metric"])
    tied, worse = ties[ties["status"] == "tied"], ties[ties["status"] == "worse"]
    missing = ties[ties["status"] == "no predictions"]
    scored = results.loc[results["representation"] == top["representation"], "n_test"].dropna()
    on = f"on these {int(scored.max())} clips" if len(scored) else "on these clips"
    head = f"**{_entry(top, layers_of)}** ({metric} {_score(top)}) is best"
    if len(tied):
        names = [f"{_entry(r, layers_of)} ({float(r['value']):.2f})" for _, r in tied.iterrows()]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        head += f"; {listed} cannot be told apart from it {on}"
        head += "" if worse.empty else "; the rest are worse"
    elif len(worse):
        head += f"; every other entry is worse {on}" if len(worse) > 1 else f"; the other entry is worse {on}"
    else:
        head += "; nothing else was compared with it"
    head += "."
    spread = seed_spread(top)
    lines = [f"# Recommendation{f' for {task_name}' if task_name else ''}", "", head, ""]
    if ":" in spread:
        lines += [f"Refitted with {int(top['seeds'])} probe seeds, the winner scores {spread.split(': ')[1]}.", ""]
    lines += [
        f"How: {why_folds}. Each representation's probe and layer are chosen on validation data, never on the "
        "test score; 95 % CIs are percentile bootstraps over items. \"Cannot be told apart\" means a paired "
        "bootstrap over the same items puts 0 inside the 95 % CI of the difference from the winner (each "
        "comparison on its own, no correction for several).",
        "",
        f"| rank | representation | probe | layer | {metric} | 95 % CI | seeds | vs the winner |",
        "|---:|---|---|---|---:|---|---|---|",
    ]
    for i, (_, r) in enumerate(ties.iterrows(), 1):
        ci = "" if r["ci_low"] != r["ci_low"] else f"[{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]"
        vs = {"winner": "winner", "no predictions": "not compared"}.get(str(r["status"]))
        if vs is None:
            vs = (f"{r['status']}: {float(r['difference']):+.3f} [{float(r['diff_low']):+.3f}, "
                  f"{float(r['diff_high']):+.3f}]")
        lines.append(f"| {i} | {r['representation']} | {_PROBE_NAMES.get(str(r['probe']), r['probe'])} | "
                     f"{_layer_name(r['layer'])} | {float(r['value']):.3f} | {ci} | {seed_spread(r)} | {vs} |")
    if len(missing):
        lines += ["", "Not compared (no per-item predictions): " + ", ".join(map(str, missing["representation"]))]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- the run
def compare(data: str | Path, out: str | Path, *, labels: str | Path | None = None, reps: Sequence[str] = (),
            only: Sequence[str] = (), folds: int | None = None, console: Console | None = None,
            progress: bool = True) -> CompareResult:
    """Import DATA (once), evaluate the default set (or ``only``) plus ``reps`` × :data:`PROBES`, re-fit the
    winner with 3 probe seeds, and write the leaderboard, ``ties.csv``, ``recommendation.md`` and
    ``report.html`` into ``out``. A re-run reuses the import, the embeddings and finished results.

    ``reps``/``only``: :func:`parse_rep` strings. ``folds``: k for cross-validation (0: the task's splits;
    default: :func:`choose_folds`). Raises :class:`~musicrep.data.importers.DatasetError` (DATA missing,
    empty, one class) or :class:`~musicrep.config.ConfigError` (a bad ``--rep``), each naming the fix.
    """
    from musicrep.config import load_config
    from musicrep.data.task import Task
    from musicrep.evaluate import evaluate, refit_winners
    from musicrep.report import write_report
    from musicrep.results import leaderboard, print_leaderboard, write_ties

    t0 = time.perf_counter()
    console = console or Console()
    data, out = Path(data).expanduser(), Path(out).expanduser()
    representations = _representations(reps, only)  # bad names fail before any work
    dest = out / "task"
    created = not (dest / "task.yaml").is_file()
    task_dir, skipped = _import(data, None if labels is None else Path(labels).expanduser(), dest, console, progress)
    created = created and task_dir == dest
    for file, why in skipped:
        console.print(f"[red]skipped[/red] {file}: {why}", highlight=False, soft_wrap=True)
    task = Task.load(task_dir)
    _check_classes(task, data, created)
    k, why = choose_folds(task, folds)
    classes = task.items["label"].astype(str).value_counts()
    console.print(f"{task.name}: {len(task.items)} items, {len(classes)} classes "
                  f"({', '.join(f'{c} {n}' for c, n in classes.sort_index().items())}); {why}", highlight=False)
    raw = {"out": str(out), "tasks": [str(task_dir)], "representations": representations, "probes": list(PROBES),
           "grid": "faster", "layers": "all", "seeds": [0], "bootstrap": 1000, "folds": k,
           "window": {"hop_seconds": HOP_SECONDS}}
    cfg = load_config(raw)
    console.print("representations: " + ", ".join(r.display for r in cfg.representations), highlight=False)
    console.rule("evaluate representations × probes")
    results = evaluate(cfg, console=console, progress=progress)
    results = refit_winners(cfg, results, console, progress=progress)
    if leaderboard(results).empty:
        raise _data_error(f"{data}: no representation could be scored (see {out / 'errors.csv'})")
    console.rule("leaderboard")
    print_leaderboard(leaderboard(results), console)
    ties = write_ties(results, out, n=max(cfg.bootstrap, 1000))
    mine = ties[ties["task"] == task.name]
    text = recommendation(mine, results[results["task"] == task.name], why, task.name)
    unreadable = _unreadable(out)
    if skipped or unreadable:
        text += "\nLeft out (unreadable audio):\n" + "".join(f"- {f}: {w}\n" for f, w in [*skipped, *unreadable])
    (out / "recommendation.md").write_text(text, encoding="utf-8")
    page = write_report([out], out / "report.html")
    console.rule("recommendation")
    console.print(text.split("\n\n", 2)[1].replace("**", ""), highlight=False, soft_wrap=True)
    for f, w in unreadable:
        console.print(f"[red]skipped[/red] {f}: {w}", highlight=False, soft_wrap=True)
    seconds = time.perf_counter() - t0
    console.print(f"\n{out / 'recommendation.md'}, leaderboard {out / 'leaderboard.csv'}, report {page.html} "
                  f"({seconds:.0f} s)", highlight=False, soft_wrap=True)
    return CompareResult(out, task_dir, k, why, text, results, ties, skipped + unreadable, seconds)


def _unreadable(out: Path) -> list[tuple[str, str]]:
    """Files extraction could not read (``errors.csv``), once each."""
    import pandas as pd

    path = out / "errors.csv"
    if not path.is_file():
        return []
    err = pd.read_csv(path, dtype=str, keep_default_na=False)
    err = err[err["representation"] != ""]  # the rest are task-level notes, not files
    return list(dict.fromkeys(zip(err["path"], err["error"], strict=True)))


# ---------------------------------------------------------------------------------------------- the command
def command(
    data: Path = typer.Argument(..., help="A folder with one sub-folder of audio per class (DATA/<class>/<clip>), "
                                "a folder of audio with --labels, or a task folder (task.yaml + items.csv)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the import (task/), results, leaderboard, "
                             "recommendation.md and report.html; a re-run reuses what is there."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV with path,label[,split][,group] columns; "
                                          "paths relative to DATA."),
    rep: list[str] = typer.Option([], "--rep", "-r", help="Add a representation (repeatable): NAME or "
                                  "NAME:KEY=VALUE,… e.g. --rep crepe, --rep vgg:weights=runs/pretrain-laptop."),
    only_rep: list[str] = typer.Option([], "--only-rep", help="Evaluate only these representations (repeatable), "
                                       "instead of the default set."),
    folds: Optional[int] = typer.Option(None, "--folds", min=0, help="k-fold cross-validation over all items "
                                        f"(0: the task's own splits). Default: {FOLDS} when the test split would "
                                        f"hold < {MIN_TEST_ITEMS} items or < {MIN_TEST_PER_CLASS} of a class."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Which representation and probe suit this labelled set, and how sure is that?

    Imports DATA once, then evaluates linear, MLP and kNN probes on:
    handcrafted features (mfcc, chroma-cqt, cqt), a random-init twin (vgg),
    every offline pretrained model that runs here (the slow crepe,
    basic-pitch, madmom-key and madmom-chroma only with --rep) and the
    shipped musicrep-small (its random twin is the vgg).
    Small sets are scored by 5-fold cross-validation: every clip once.

    Prints and writes OUT/recommendation.md: the winner with its 95 % CI and
    the entries a paired bootstrap over the same clips cannot tell apart
    from it; also OUT/leaderboard.csv (with CIs) and OUT/report.html.
    A re-run reuses the import, the embeddings and finished results.
    """
    from musicrep.config import ConfigError

    if folds in (1, 2):
        raise ConfigError("--folds: give 0 (the task's own splits) or at least 3")
    compare(data, out, labels=labels, reps=rep, only=only_rep, folds=folds, progress=not quiet)


def register(app: typer.Typer) -> None:
    """Attach ``compare`` to the top-level ``musicrep`` app."""
    app.command("compare")(command)

"""``make demo``: the main job on the embedded default, end to end, from nothing but the package.

1. renders the demo tasks (key, instrument, pitch, tagging, and the instrument task tested on FluidR3)
   with the SoundFont inside pretty_midi, unless a valid copy is already in ``--data``;
2. evaluates the preset ``presets/demo.yaml``: handcrafted features, random-init twins and every offline
   pretrained model available on this machine, with linear and MLP probes;
3. re-fits each task's winner with :data:`musicrep.evaluate.WINNER_SEEDS` probe seeds (the spread says how much of a score
   is the probe's initialisation), prints the leaderboard and, per task, one sentence: the winner, its
   95 % CI, its seed spread and the representations a paired bootstrap over the same test items cannot
   tell apart from it (``ties.csv``);
4. writes ``runs/demo/report.html`` and leaves ``runs/demo/`` (results.csv, leaderboard.csv, ties.csv,
   predictions/, resolved config, versions) for people to open, and prints the wall time.

Re-running reuses the rendered audio, the embedding store and finished results.
"""

from __future__ import annotations

import argparse
import resource
import time
from importlib import resources
from pathlib import Path

import yaml
from rich.console import Console

DEMO_TASKS = ("key", "instrument", "instrument-fluidr3", "pitch", "tagging")
#: The task that needs the FluidR3 SoundFont (Debian ``fluid-soundfont-gm``); skipped where it is missing.
SHIFT_TASK = "instrument-fluidr3"


def _wanted_tasks() -> tuple[str, ...]:
    from musicrep.data.render.demo import shift_available

    return DEMO_TASKS if shift_available() else tuple(t for t in DEMO_TASKS if t != SHIFT_TASK)


def _tasks_ready(data: Path) -> bool:
    from musicrep.data.task import Task, TaskError

    try:
        for name in _wanted_tasks():
            Task.load(data / name)
    except (TaskError, FileNotFoundError):
        return False
    return True


def preset(name: str = "demo") -> dict:
    """The packaged preset as a dict."""
    text = resources.files("musicrep.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text)


#: The demo tasks each offline pretrained model is evaluated on (slow ones only where they make sense, so the
#: whole demo stays near 6 minutes); any other available pretrained model runs on all. How each is built
#: (crepe's tiny capacity, …) is :data:`musicrep.config.PRETRAINED_SETTINGS`, shared with ``musicrep compare``.
PRETRAINED_TASKS: dict[str, list[str]] = {
    "crepe": ["pitch", "instrument"],
    "basic-pitch": ["pitch"],
    "madmom-key": ["key"],
    "madmom-chroma": ["key"],
    "essentia-hpcp": ["key"],
    "musicnn-tf": ["tagging", "instrument"],
}


def available_pretrained() -> list[dict]:
    """The demo's offline pretrained representations that can run here, each limited to its demo tasks."""
    from musicrep.config import available_pretrained as available

    return [{**r, **({"tasks": PRETRAINED_TASKS[r["name"]]} if r["name"] in PRETRAINED_TASKS else {})}
            for r in available(also=tuple(PRETRAINED_TASKS))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="results folder")
    parser.add_argument("--data", type=Path, default=Path("data/demo"), help="where the demo tasks are rendered")
    parser.add_argument("--no-pretrained", action="store_true", help="skip the offline pretrained models")
    args = parser.parse_args(argv)
    console = Console()
    t0 = time.perf_counter()

    from musicrep.config import load_config
    from musicrep.evaluate import evaluate, refit_winners
    from musicrep.results import leaderboard, print_leaderboard, tie_sentence, write_ties

    tasks = _wanted_tasks()
    if SHIFT_TASK not in tasks:
        console.print(f"[yellow]FluidR3 SoundFont not found (Debian package fluid-soundfont-gm): the {SHIFT_TASK} "
                      "test set (instrument probes tested on another SoundFont) is skipped.[/yellow]")
    if _tasks_ready(args.data):
        console.print(f"demo tasks found in {args.data} (delete the folder to render again)")
    else:
        from musicrep.data.render import render_task

        console.rule("1. render the demo tasks")
        for rep in render_task("demo", args.data, seed=0, workers=2):
            console.print(rep.summary(), highlight=False)

    raw = preset("demo")
    raw["out"] = str(args.out)
    raw["tasks"] = [str(args.data / t) for t in raw["tasks"] if t in tasks]
    if not args.no_pretrained:
        raw["representations"] += available_pretrained()
    cfg = load_config(raw)
    console.rule("2. evaluate representations × tasks × probes")
    results = evaluate(cfg, console=console)
    results = refit_winners(cfg, results, console)
    console.rule("3. leaderboard")
    print_leaderboard(leaderboard(results), console)
    ties = write_ties(results, args.out, n=max(cfg.bootstrap, 1000))
    console.rule("4. which representations can this test set tell apart?")
    for _, g in ties.groupby("task", sort=True):
        console.print(tie_sentence(g), highlight=False)
    from musicrep.report import write_report

    page = write_report([args.out], args.out / "report.html")
    console.print(f"\n{len(results)} result rows in {args.out / 'results.csv'}; "
                  f"leaderboard in {args.out / 'leaderboard.csv'}, ties in {args.out / 'ties.csv'}")
    console.print(f"report: {page.html} (summary {page.markdown})")
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    console.print(f"demo wall time: {time.perf_counter() - t0:.0f} s ({(time.perf_counter() - t0) / 60:.1f} min; "
                  f"CPU time {cpu:.0f} s)")


if __name__ == "__main__":
    main()

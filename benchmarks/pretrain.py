"""Is the input pipeline ever the bottleneck of pretraining? And does memory grow with the pool?

For each encoder's small config (one subprocess each, so peak RSS is that run's alone), in the same run:

* ``full``: steps/s of the real loop — ``musicrep.train.trainer`` with ``train.data`` crops (cached
  log-mel memmap / waveform, augmentation, DataLoader workers) and the objective;
* ``bare``: steps/s of forward + backward + AdamW step of the same objective on ONE pre-made batch of the
  same shape (no data work at all);
* their ratio ``bare / full`` (target ≤ 1.3: the pipeline costs at most 30 % over the model itself);
* peak RSS of the process and its workers (``ru_maxrss`` of self + children).

Give ``--pool`` more than once to compare pools; ``--tile 10`` adds a synthetic pool 10× the first one
(every track listed 10 times under new ids, its cache a sparse float16 file 10× the size, built in
seconds) to check that peak RSS does not grow with the pool (the cache is read by memmap only; target
≤ 4 GB).

    python benchmarks/pretrain.py --pool data/pool [--tile 10] [--steps 30] [--workers 1]
    python benchmarks/pretrain.py --pool data/pool --bf16      # and --compile: keep them only where faster
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENCODERS = ("vgg", "musicnn", "samplecnn", "ast", "tmae", "nfnet", "conformer")
#: an objective each encoder trains with (samplecnn is a waveform encoder: SimCLR, as CLMR)
OBJECTIVE = {"tmae": "masked"}


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024  # Linux reports KiB


def one(model: str, objective: str, pool: str, steps: int, warm: int, batch: int, workers: int,
        threads: int, bf16: bool = False, compile: bool = False) -> dict[str, float | str]:
    """Measure one encoder (runs inside its own process)."""
    import torch

    from musicrep.train.config import load_pretrain
    from musicrep.train.trainer import build

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_pretrain({"model": model, "objective": objective, "pool": pool, "steps": warm + steps,
                             "batch_size": batch, "workers": workers, "checkpoint_every": 10**9, "val_every": 0,
                             "log_every": warm, "device": "cpu", "out": tmp,
                             "bf16": bf16, "compile": compile})
        built = build(cfg)
        trainer = built.trainer(cfg)
        trainer.run()
        rows = [r for r in trainer.curves if int(r["step"]) > warm]
        full = float(rows[-1]["steps_per_s"]) if rows else float("nan")  # the rate after the warm-up steps

        obj = built.objective
        obj.train()
        batch0 = built.data.batch(0)
        opt = torch.optim.AdamW([p for p in obj.parameters() if p.requires_grad], lr=1e-4)

        runner = torch.compile(obj) if compile else obj

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss, _ = runner(batch0)
            loss.backward()
            opt.step()

        for _ in range(warm):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        bare = steps / (time.perf_counter() - t0)
    return {"model": model, "objective": objective, "pool": pool, "full_steps_s": full, "bare_steps_s": bare,
            "ratio": bare / full, "peak_rss_mb": _peak_rss_mb()}


def tiled_pool(pool: Path, n: int, out: Path) -> Path:
    """A pool ``n``× ``pool``: the manifest repeated with ids ``ID#k`` (same audio files, for augmentation),
    and its log-mel cache laid out as the real one tiled — a sparse features file (zeros) of ``n``× the
    rows, so it costs no build time and no disk, yet every read goes through a memmap ``n``× as large."""
    import os

    import pandas as pd

    from musicrep.data.pool import MANIFEST, load_pool
    from musicrep.train.data import CACHE_FOLDER, FeatureCache, build_cache, cache_digest

    items = load_pool(pool)
    real = build_cache(items, "logmel", cache_dir=pool / CACHE_FOLDER, progress=False)
    big = pd.concat([items.assign(id=items["id"] + f"#{k}") for k in range(n)], ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    big.to_csv(out / MANIFEST, index=False)  # absolute paths: the same FLACs
    root = out / CACHE_FOLDER / cache_digest(load_pool(out), "logmel")
    root.mkdir(parents=True, exist_ok=True)
    rows = real.total_rows
    index = pd.concat([real.index.assign(id=real.index["id"] + f"#{k}", offset=real.index["offset"] + k * rows)
                       for k in range(n)], ignore_index=True)
    index.to_csv(root / FeatureCache.INDEX, index=False)
    (root / FeatureCache.META).write_text((real.root / FeatureCache.META).read_text())
    with open(root / FeatureCache.FEATURES, "wb") as fh:
        os.truncate(fh.fileno(), n * rows * int(real.width or 1) * 2)  # float16, sparse
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", action="append", required=True, help="pool folder (repeatable)")
    p.add_argument("--models", default=",".join(ENCODERS))
    p.add_argument("--objective", default="simclr", help="objective for every encoder but those in OBJECTIVE")
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--warm", type=int, default=5, help="untimed steps first")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads of the training process")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (compare with a run without)")
    p.add_argument("--compile", action="store_true", help="torch.compile the objective (compare likewise)")
    p.add_argument("--tile", type=int, default=0, help="also measure a synthetic pool this many times the first")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one is not None:  # child: one measurement, as JSON on the last line
        model, objective, pool = a.one.split("|")
        print(json.dumps(one(model, objective, pool, a.steps, a.warm, a.batch, a.workers, a.threads, a.bf16,
                             a.compile)))
        return
    if a.tile > 1:
        a.pool.append(str(tiled_pool(Path(a.pool[0]), a.tile, Path(tempfile.mkdtemp()) / f"pool-x{a.tile}")))
    print(f"{'model':<10} {'objective':<8} {'pool':<24} {'full/s':>8} {'bare/s':>8} {'ratio':>6} {'peak RSS':>9}")
    for pool in a.pool:
        for model in a.models.split(","):
            objective = OBJECTIVE.get(model, a.objective)
            cmd = [sys.executable, __file__, "--pool", pool, "--one", f"{model}|{objective}|{pool}",
                   "--steps", str(a.steps), "--warm", str(a.warm), "--batch", str(a.batch),
                   "--workers", str(a.workers), "--threads", str(a.threads)]
            cmd += ["--bf16"] * a.bf16 + ["--compile"] * a.compile
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{model:<10} {objective:<8} {Path(pool).name:<24} failed: {res.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{model:<10} {objective:<8} {Path(pool).name:<24} {r['full_steps_s']:8.2f} {r['bare_steps_s']:8.2f} "
                  f"{r['ratio']:6.2f} {r['peak_rss_mb']:7.0f} MB", flush=True)


if __name__ == "__main__":
    main()

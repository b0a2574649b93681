"""Stand-ins for the trainer tests: a seeded fake data source and a tiny objective, plus a script entry.

Used by tests/test_train_trainer.py in-process and as a subprocess (``python tests/trainer_stubs.py OUT …``,
also under ``torchrun``), so a run can be killed with SIGKILL and resumed, or split over 2 DDP processes.
Not the real ``musicrep.train.data`` / ``musicrep.train.objectives``: the trainer only needs their
interfaces (``.batch(step, rank, world_size) -> Batch``; ``objective.encoder``, ``forward(batch) -> (loss, logs)``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicrep import models
from musicrep.models.encoder import seeded
from musicrep.train.batch import Batch
from musicrep.train.config import PretrainConfig


class FakeData:
    """Global batch of step ``s`` = standardised-looking noise from ``rng([seed, s])``; rank r takes slice r."""

    def __init__(self, batch_size: int = 4, frames: int = 64, n_tracks: int = 10, seed: int = 0,
                 sleep: float = 0.0, kind: str = "logmel") -> None:
        self.batch_size, self.frames, self.n_tracks, self.seed, self.sleep, self.kind = (
            batch_size, frames, n_tracks, seed, sleep, kind)
        self.calls: list[int] = []

    def global_batch(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, step])
        shape = (self.batch_size, 1, 96, self.frames) if self.kind == "logmel" else (self.batch_size, 16 * self.frames * 10)
        x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
        track = torch.from_numpy(rng.integers(0, self.n_tracks, self.batch_size))
        return Batch(x=x, track=track)

    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> Batch:
        self.calls.append(step)
        if self.sleep:
            time.sleep(self.sleep)
        b = self.global_batch(step)
        lo, hi = rank * self.batch_size // world_size, (rank + 1) * self.batch_size // world_size
        return Batch(x=b.x[lo:hi], track=b.track[lo:hi])


class MeanTarget(nn.Module):
    """MSE between a linear head on the last layer's time mean and a fixed target; a per-item mean loss.

    Adds ``torch.randn`` noise to the input so the global RNG matters (resume must replay it).
    """

    name = "mean-target"
    needs_pairs = False
    needs_labels = False

    def __init__(self, encoder: nn.Module, noise: float = 0.01) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.layer_dims[-1], 4)
        self.register_buffer("target", torch.linspace(-1, 1, 4))
        self.noise = noise

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch.x + self.noise * torch.randn_like(batch.x)
        z = self.encoder.forward_input(x)[-1].mean(dim=1)  # [B, H]
        err = ((self.head(z) - self.target) ** 2).mean(dim=1)  # [B]
        return err.mean(), {"z": float(z.detach().abs().mean())}


def make(out: Path, model: str = "vgg", steps: int = 6, batch_size: int = 4, checkpoint_every: int = 2,
         seed: int = 0, sleep: float = 0.0, n_tracks: int = 10, minutes: float | str = "all",
         noise: float = 0.01, **cfg_kw: object) -> tuple[PretrainConfig, MeanTarget, FakeData]:
    cfg = PretrainConfig.model_validate({
        "model": model, "objective": "mean-target", "steps": steps, "batch_size": batch_size, "lr": 1e-2,
        "warmup_steps": 2, "checkpoint_every": checkpoint_every, "val_every": 0, "log_every": 1,
        "device": "cpu", "seed": seed, "out": str(out), "minutes": minutes, **cfg_kw})
    enc = models.get(model, size="small", seed=seed)
    data = FakeData(batch_size=batch_size, seed=seed, sleep=sleep, n_tracks=n_tracks,
                    kind=getattr(enc, "input_kind", "logmel"))
    with seeded(seed):  # as train.trainer.build draws heads: from the run's seed
        objective = MeanTarget(enc, noise=noise)
    return cfg, objective, data


def main() -> None:
    from musicrep.train.trainer import Trainer

    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--model", default="vgg")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--checkpoint-every", type=int, default=2)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--grads", type=Path, default=None, help="save rank 0's final gradients here")
    a = p.parse_args()
    torch.set_num_threads(1)  # the same reduction order in every run (bit-exact comparisons)
    cfg, obj, data = make(a.out, a.model, a.steps, a.batch_size, a.checkpoint_every, sleep=a.sleep)
    trainer = Trainer(cfg, obj, data)
    trainer.run(resume=a.resume)
    if a.grads is not None and trainer.rank == 0:
        torch.save({k: p.grad.clone() for k, p in obj.named_parameters() if p.grad is not None}, a.grads)


if __name__ == "__main__":
    main()

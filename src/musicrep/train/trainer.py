"""The training loop: one encoder + one objective + seeded batches → a checkpoint folder that is a representation.

Takes a :class:`~musicrep.train.config.PretrainConfig`, an objective (an ``nn.Module`` whose ``encoder``
attribute is the encoder and whose ``forward(batch) -> (loss, logs)``) and a data object with
``.batch(step, rank, world_size) -> Batch``. :func:`build` constructs the real ones from the config
(``musicrep.train.data`` / ``musicrep.train.objectives``); :class:`Trainer` receives them, so tests and
benchmarks can inject their own.

Optimiser: AdamW; learning rate: linear warm-up then cosine decay to 0 (:func:`lr_factor`, via
``LambdaLR``). The number of steps is ``cfg.steps`` whatever the budget, so budgets differ only in data.

Checkpoint folder ``OUT`` (every ``checkpoint_every`` steps and at the end; rank 0 only; each file written
atomically)::

    weights.safetensors   the ENCODER's state dict: `models.get(MODEL, weights=OUT)` loads it
    head.safetensors      labelled objectives only (supervised, finetune): the task head, so the
                          checkpoint predicts (`musicrep.train.finetune.load_predictor`)
    model.json            {"name", "config"}: rebuilds the encoder (size etc.)
    config.yaml           the resolved PretrainConfig
    meta.json             step, budget, data digest/tracks, wall seconds, steps/s, representation id
    curves.csv            step, loss, lr, val_loss, steps_per_s
    state/trainer.pt      objective (encoder + heads), optimiser, scheduler, step, curves, RNG states;
                          plain tensors/containers only (torch.load(weights_only=True) reads it)

Resume is bit-exact: ``state/trainer.pt`` is written first and alone decides where a resumed run starts,
every random draw of step ``s`` comes from generators seeded with ``(seed, s, rank)`` (torch's global RNG
is re-seeded per step, the data are a pure function of the step), so a run killed with SIGKILL and
resumed ends with the same weights as one never interrupted (on the same machine and thread count).

DDP: under ``torchrun`` (``WORLD_SIZE > 1``) the process group is opened (gloo on CPU, NCCL on CUDA),
the objective is wrapped in ``DistributedDataParallel`` (gradients averaged over ranks), each rank takes
its share of the global batch (``data.batch(step, rank, world_size)``) and only rank 0 writes. The
averaged gradient equals the single-process gradient of the global batch for any loss that is a mean
over items and has no batch statistics (BatchNorm normalises per rank's share).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from musicrep.models.base import CHECKPOINT_MODEL, CHECKPOINT_WEIGHTS
from musicrep.train.batch import Batch
from musicrep.train.config import PretrainConfig, PretrainConfigError
from musicrep.util import atomic_path

__all__ = ["CURVE_COLUMNS", "HEAD_WEIGHTS", "STATE", "BatchSource", "Built", "Trainer", "build", "check_out", "completed", "lr_factor", "pretrain", "train_to_completion",
           "resolve_device", "step_seed"]

#: The resumable state, relative to the checkpoint folder.
STATE = Path("state") / "trainer.pt"
#: The task head a labelled objective leaves beside the encoder's weights (``Objective.exports``).
HEAD_WEIGHTS = "head.safetensors"
#: Columns of ``curves.csv``.
CURVE_COLUMNS = ("step", "loss", "lr", "val_loss", "steps_per_s")
#: Settings a resumed run may change (they do not alter the numbers it computes).
_RESUMABLE_CHANGES = frozenset({"out", "device", "workers", "checkpoint_every", "log_every", "compile"})


def check_out(out: Path, resume: bool) -> Path:
    """``OUT/state/trainer.pt``, checked: it must exist to resume, and must not exist to start (a run never
    overwrites another's checkpoint). Raises :class:`PretrainConfigError` saying which flag to use."""
    path = Path(out) / STATE
    if resume and not path.is_file():
        raise PretrainConfigError(f"{path}: no checkpoint to resume; run without --resume to start")
    if not resume and path.is_file():
        raise PretrainConfigError(f"{out}: holds a checkpoint already; pass --resume to continue it or choose "
                                  "another --out")
    return path


def completed(out: str | os.PathLike[str], steps: int) -> bool:
    """Whether the checkpoint folder ``out`` holds a finished run of ``steps`` steps (its ``meta.json`` says so):
    what `--resume`, the limited-data and the finetune studies check before training again."""
    meta = Path(out) / "meta.json"
    return meta.is_file() and int(json.loads(meta.read_text(encoding="utf-8")).get("step", 0)) >= steps


class BatchSource(Protocol):
    """What the trainer needs of a data object (``musicrep.train.data.TrainData`` is one)."""

    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> Batch: ...


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Learning-rate multiplier of optimiser update ``step`` (0-based): linear warm-up, then cosine to 0.

    ``(step + 1) / warmup`` for ``step < warmup`` (so the first update is not wasted at 0), then
    ``½ (1 + cos(π · (step − warmup) / (total − warmup)))``, reaching 0 at ``step == total``.
    """
    if step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


#: ``step_seed`` streams: the step's global torch RNG, the mixup generator, validation
STREAM_STEP, STREAM_MIXUP, STREAM_VAL = 0, 1, 2


def step_seed(seed: int, step: int, rank: int = 0, stream: int = STREAM_STEP) -> int:
    """A 63-bit seed for ``(seed, step, rank, stream)`` (all ≥ 0): independent streams, the same after a resume."""
    entropy = [seed, step, rank, stream]
    return int(np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> np.uint64(1))


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without a GPU is a config error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise PretrainConfigError("device: cuda asked for but no CUDA device is available; use device: auto or cpu")
    return torch.device(device)


def _shard(batch: Batch, rank: int, world: int) -> Batch:
    """Rank ``rank``'s contiguous share of every tensor of ``batch`` (the validation batches under DDP)."""
    n = len(batch)
    lo, hi = rank * n // world, (rank + 1) * n // world
    return replace(batch, **{f.name: v[lo:hi] for f in fields(batch) if isinstance(v := getattr(batch, f.name), Tensor)})


def _rng_state() -> dict[str, Any]:
    # numpy's and python's states as plain tensors/lists so torch.load(weights_only=True) reads them back
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, pystate, pygauss = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(pystate), "gauss": pygauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Runs ``cfg.steps`` optimiser steps of ``objective`` on ``data``; writes and resumes checkpoints.

    Args:
        cfg: the resolved config (``steps``, ``lr``, ``warmup_steps``, ``seed``, ``out``, …).
        objective: ``nn.Module`` with ``.encoder`` and ``forward(batch) -> (scalar loss, logs dict)``.
        data: ``.batch(step, rank, world_size) -> Batch`` (this rank's share of the global batch).
        val: fixed validation batches (whole global batches; sharded over ranks under DDP).
        batches: ``(start_step, rank, world_size) -> iterable of Batch`` for steps ``start_step…steps-1``
            (e.g. a DataLoader with workers); default: ``data.batch`` called in the loop.
        mixup: ``(batch, generator) -> Batch`` applied to every training batch, or ``None``.
        meta: facts about the data for ``meta.json`` (budget minutes, manifest digest, tracks, …).
        progress: show a progress bar (loss, steps/s) on rank 0.
    """

    def __init__(self, cfg: PretrainConfig, objective: nn.Module, data: BatchSource, *,
                 val: list[Batch] | None = None,
                 batches: Callable[[int, int, int], Iterable[Batch]] | None = None,
                 mixup: Callable[[Batch, torch.Generator], Batch] | None = None,
                 meta: dict[str, Any] | None = None, progress: bool = False) -> None:
        self.cfg = cfg
        self.objective = objective
        self.encoder: nn.Module = objective.encoder  # type: ignore[assignment]
        self.data = data
        self.val = list(val or [])
        self.batches = batches
        self.mixup = mixup
        self.meta = dict(meta or {})
        self.progress = progress
        self.out = Path(cfg.out)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", self.local_rank)
        self.step = 0
        self.curves: list[dict[str, float | str]] = []
        self.wall = 0.0  # seconds spent in run() over every (resumed) session
        # NHWC weights and inputs for the 2-D CNNs that declare it: measured 1.8x faster training steps of
        # the small VGG with SimCLR on a 2-core AVX2 CPU (oneDNN's NHWC convolutions), same numbers
        self.channels_last = bool(getattr(self.encoder, "prefers_channels_last", False)) and self.device.type == "cpu"

    def _on_device(self, batch: Batch) -> Batch:
        return batch.to(self.device, channels_last=self.channels_last)

    # ------------------------------------------------------------------ setup
    def _init_distributed(self) -> None:
        import torch.distributed as dist

        if self.world > 1 and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    def _optimiser(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        params = [p for p in self.objective.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        warm, total = self.cfg.warmup_steps, self.cfg.steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warm, total))
        return opt, sched

    def _wrapped(self) -> nn.Module:
        model: nn.Module = self.objective
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            # An objective that leaves some parameter out of a step's loss (a head used by some batches only)
            # says so with `find_unused_parameters = True`; DDP would otherwise wait for that gradient forever.
            # Off by default: the search costs an extra pass over the autograd graph every step.
            model = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=bool(getattr(self.objective, "find_unused_parameters", False)))
        if self.cfg.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        return model

    # ------------------------------------------------------------ checkpoints
    def _check_resumable(self, resume: bool) -> dict[str, Any] | None:
        path = check_out(self.out, resume)
        if not resume:
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged state file is the user's to remove
            raise PretrainConfigError(f"{path}: cannot read the checkpoint state ({exc}); remove the folder to "
                                      "start again") from None
        saved, now = state["config"], self.cfg.resolved()
        changed = sorted(k for k in set(saved) | set(now) if k not in _RESUMABLE_CHANGES and saved.get(k) != now.get(k))
        if changed:
            diffs = ", ".join(f"{k} ({saved.get(k)!r} → {now.get(k)!r})" for k in changed)
            raise PretrainConfigError(f"{self.out / 'config.yaml'}: the resumed run differs in {diffs}; resume "
                                      "with the same settings or choose another --out")
        return state

    def state_dict(self, opt: torch.optim.Optimizer, sched: Any) -> dict[str, Any]:
        """Everything a resumed run needs (plain tensors and containers)."""
        return {"step": self.step, "objective": self.objective.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "curves": list(self.curves), "wall": self.wall,
                "config": self.cfg.resolved(), "rng": _rng_state()}

    def save(self, opt: torch.optim.Optimizer, sched: Any, steps_per_s: float) -> None:
        """Write the checkpoint folder (rank 0), each file atomically, ``state/trainer.pt`` first."""
        if self.rank != 0:
            return
        from safetensors.torch import save_file

        (self.out / STATE).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / STATE) as tmp:
            torch.save(self.state_dict(opt, sched), tmp)
        weights = {k: v.detach().to("cpu").contiguous() for k, v in self.encoder.state_dict().items()}
        with atomic_path(self.out / CHECKPOINT_WEIGHTS) as tmp:
            save_file(weights, str(tmp))
        exports = self.objective.exports() if hasattr(self.objective, "exports") else {}
        if exports:
            with atomic_path(self.out / HEAD_WEIGHTS) as tmp:
                save_file({k: v.to("cpu").contiguous() for k, v in exports.items()}, str(tmp))
        encoder_config = self.encoder.config() if hasattr(self.encoder, "config") else {}
        self._write_text(CHECKPOINT_MODEL, json.dumps({"name": getattr(self.encoder, "name", self.cfg.model),
                                                       "config": encoder_config}, indent=2, default=str) + "\n")
        import yaml

        self._write_text("config.yaml", yaml.safe_dump(self.cfg.resolved(), sort_keys=False))
        rep_id = self.encoder.id if hasattr(self.encoder, "id") else None
        meta = {**self.meta, "step": self.step, "steps": self.cfg.steps, "wall_seconds": round(self.wall, 3),
                "steps_per_s": round(steps_per_s, 4), "world_size": self.world, "device": str(self.device),
                "representation_id": rep_id, "torch": torch.__version__}
        self._write_text("meta.json", json.dumps(meta, indent=2, default=str) + "\n")
        with atomic_path(self.out / "curves.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, CURVE_COLUMNS)
            w.writeheader()
            w.writerows(self.curves)

    def _write_text(self, name: str, text: str) -> None:
        with atomic_path(self.out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")

    # ------------------------------------------------------------------ loop
    def _batches(self, start: int) -> Iterator[Batch]:
        if self.batches is not None:
            yield from self.batches(start, self.rank, self.world)
        else:
            for s in range(start, self.cfg.steps):
                yield self.data.batch(s, self.rank, self.world)

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def validate(self) -> float:
        """Mean objective loss over the fixed validation batches (eval mode, no gradient, fixed RNG).

        Under DDP each rank takes its share of each batch and the losses are averaged over ranks, so the
        value equals the single-process one for per-item-mean losses.
        """
        if not self.val:
            return float("nan")
        was = self.objective.training
        self.objective.eval()
        total = torch.zeros((), device=self.device)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(step_seed(self.cfg.seed, 0, self.rank, STREAM_VAL))  # the same masks at every validation
            with torch.no_grad(), self._autocast():
                for b in self.val:
                    b = _shard(b, self.rank, self.world) if self.world > 1 else b
                    total += self.objective(self._on_device(b))[0].float()
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
            total /= self.world
        self.objective.train(was)
        return float(total) / len(self.val)

    def run(self, resume: bool = False) -> Path:
        """Train to ``cfg.steps`` (from the last checkpoint with ``resume``); return the checkpoint folder.

        Raises :class:`PretrainConfigError` when ``OUT`` already holds a checkpoint and ``resume`` is false,
        when there is none to resume, or when the resumed run's settings differ from the saved ones.
        """
        self._init_distributed()
        state = self._check_resumable(resume)
        self.objective.to(self.device)
        if self.channels_last:
            self.objective.to(memory_format=torch.channels_last)
        opt, sched = self._optimiser()
        if state is not None:
            self.objective.load_state_dict(state["objective"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            self.step, self.curves, self.wall = int(state["step"]), list(state["curves"]), float(state["wall"])
            _set_rng_state(state["rng"])
        model = self._wrapped()
        self.objective.train()
        bar = None
        if self.progress and self.rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.cfg.steps, initial=self.step, unit="step", desc=f"{self.cfg.model}/{self.cfg.objective}",
                       dynamic_ncols=True)
        t_session, t_log, step_log = time.perf_counter(), time.perf_counter(), self.step
        wall0, loss_sum, n_loss, rate = self.wall, torch.zeros((), device=self.device), 0, 0.0
        it = iter(self._batches(self.step))
        while self.step < self.cfg.steps:
            s = self.step
            torch.manual_seed(step_seed(self.cfg.seed, s, self.rank))  # every draw of step s is replayable
            batch = self._on_device(next(it))
            if self.mixup is not None:
                gen = torch.Generator(device="cpu").manual_seed(step_seed(self.cfg.seed, s, self.rank, STREAM_MIXUP))
                batch = self.mixup(batch, gen)
            opt.zero_grad(set_to_none=True)
            with self._autocast():
                loss, logs = model(batch)
            loss.backward()
            lr = opt.param_groups[0]["lr"]  # the rate of this update (the scheduler moves it on below)
            opt.step()
            sched.step()
            self.step = s + 1
            loss_sum += loss.detach().float()
            n_loss += 1
            last = self.step == self.cfg.steps
            do_val = self.cfg.val_every > 0 and (self.step % self.cfg.val_every == 0 or last)
            do_save = self.step % self.cfg.checkpoint_every == 0 or last
            # a row at every checkpoint too, so the curves a resumed run continues are the ones it saved
            if self.step % self.cfg.log_every == 0 or do_val or do_save:
                now = time.perf_counter()
                rate = (self.step - step_log) / max(now - t_log, 1e-9)
                t_log, step_log = now, self.step
                row: dict[str, float | str] = {"step": self.step, "loss": float(loss_sum) / n_loss,
                                               "lr": lr, "val_loss": "",
                                               "steps_per_s": round(rate, 4)}
                loss_sum.zero_()
                n_loss = 0
                if do_val:
                    row["val_loss"] = self.validate()
                self.curves.append(row)
                if bar is not None:
                    shown = {"loss": f"{row['loss']:.4g}", **{k: f"{v:.3g}" for k, v in logs.items()
                                                              if isinstance(v, (int, float))}}
                    if row["val_loss"] != "":
                        shown["val"] = f"{row['val_loss']:.4g}"
                    bar.set_postfix(shown, refresh=False)
            if bar is not None:
                bar.update(1)
            if do_save:
                self.wall = wall0 + time.perf_counter() - t_session
                self.save(opt, sched, rate)
        if bar is not None:
            bar.close()
        return self.out


class Built:
    """What :func:`build` gives: the objective (with its encoder), the data, validation batches and
    the pieces :class:`Trainer` takes (``trainer_kwargs``)."""

    def __init__(self, objective: nn.Module, data: Any, val: list[Batch], batches: Any, mixup: Any,
                 meta: dict[str, Any]) -> None:
        self.objective, self.data, self.val, self.batches, self.mixup, self.meta = (
            objective, data, val, batches, mixup, meta)

    def trainer(self, cfg: PretrainConfig, progress: bool = False) -> Trainer:
        return Trainer(cfg, self.objective, self.data, val=self.val, batches=self.batches, mixup=self.mixup,
                       meta=self.meta, progress=progress)


def build(cfg: PretrainConfig) -> Built:
    """The real encoder, objective and data of ``cfg`` (``musicrep.models`` / ``.train.objectives`` /
    ``.train.data``), imported here so the trainer itself depends on none of them.

    Raises :class:`PretrainConfigError` naming the key (model, objective, pool/task, …) that is wrong.
    """
    if cfg.pool is None and cfg.task is None:
        raise PretrainConfigError("pool: give a pool folder (`musicrep data pool …`) with pool: DIR / --pool, or a "
                                  "task folder with task: DIR / --task")
    from musicrep import models
    from musicrep.train import data as train_data
    from musicrep.train import objectives as train_objectives

    try:
        encoder = models.get(cfg.model, seed=cfg.seed, **cfg.encoder_config)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise PretrainConfigError(f"model/model_config: {exc.args[0] if exc.args else exc}") from None
    if not hasattr(encoder, "input_kind"):
        raise PretrainConfigError(f"model: {cfg.model} is not a trainable encoder (choose vgg, musicnn, samplecnn, "
                                  "ast, tmae, nfnet or conformer)")
    if cfg.objective not in train_objectives.OBJECTIVES:
        raise PretrainConfigError(f"objective: unknown {cfg.objective!r}; choose one of "
                                  f"{', '.join(sorted(train_objectives.OBJECTIVES))}")
    kind = train_objectives.OBJECTIVES[cfg.objective]
    needs_labels = bool(getattr(kind, "needs_labels", False))
    if needs_labels and cfg.task is None:
        raise PretrainConfigError(f"task: objective {cfg.objective} needs labels; give task: DIR (a task folder)")
    data = train_data.TrainData(
        pool=cfg.pool, task=cfg.task, minutes=None if cfg.minutes == "all" else float(cfg.minutes),
        budget_seed=cfg.budget_seed, kind=encoder.input_kind, crop_seconds=cfg.crop_seconds,
        batch_size=cfg.batch_size, pairs=bool(getattr(kind, "needs_pairs", False)), labels=needs_labels,
        augment_fraction=cfg.augment_fraction, augmentations=cfg.augmentations, seed=cfg.seed,
        **cfg.data_options(),
    )
    from musicrep.models.encoder import seeded

    with seeded(cfg.seed):  # heads/projectors drawn from the run's seed, not whatever the global RNG holds
        objective = train_objectives.get_objective(
            cfg.objective, encoder, n_classes=getattr(data, "n_classes", None) if needs_labels else None,
            # a labelled objective's loss follows the task's kind (BCE for tags, CE for classes) unless set
            **({"kind": data.kind} if needs_labels and "kind" not in cfg.objective_settings() else {}),
            **cfg.objective_settings())
    have = getattr(data, "minutes", None)
    if cfg.minutes != "all" and have is not None and float(have) < float(cfg.minutes) - 1e-6:
        import warnings

        warnings.warn(f"minutes: a budget of {float(cfg.minutes):g} min is more than the {float(have):.1f} training "
                      f"minutes in {cfg.pool or cfg.task}; training on all of them", stacklevel=2)
    val = train_data.val_batches(data, cfg.val_batches) if cfg.val_batches and cfg.val_every else []
    batches = None
    if cfg.workers > 0:
        def batches(start: int, rank: int, world: int) -> Iterable[Batch]:
            return train_data.loader(data, start_step=start, total_steps=cfg.steps, rank=rank, world_size=world,
                                     workers=cfg.workers)
    mixup = None
    if cfg.mixup:
        from musicrep.train.mixup import mixup
    meta: dict[str, Any] = {"model": cfg.model, "objective": cfg.objective,
                            "budget_minutes": cfg.minutes, "source": str(cfg.pool or cfg.task)}
    for key in ("digest", "n_tracks", "minutes", "n_classes", "kind", "vocabulary"):
        if (v := getattr(data, key, None)) is not None and not callable(v):
            meta[f"data_{key}"] = v
    return Built(objective, data, val, batches, mixup, meta)


def pretrain(cfg: PretrainConfig, resume: bool = False, progress: bool = False) -> Path:
    """Build ``cfg``'s encoder, objective and data and train them; return the checkpoint folder."""
    check_out(cfg.out, resume)  # before building: a wrong --resume / --out fails in a second, not after caching
    return build(cfg).trainer(cfg, progress=progress).run(resume=resume)


def train_to_completion(cfg: PretrainConfig, progress: bool = False,
                        say: Callable[[bool], None] | None = None) -> Path:
    """``cfg.out`` finished: reused as it is (:func:`completed`), resumed from its saved state, or trained from
    the start — what a study does for each checkpoint it needs. ``say(resuming)`` is called before training.
    Works for a :class:`~musicrep.train.config.FinetuneConfig` too (fine-tuning is this trainer)."""
    out = Path(cfg.out)
    if completed(out, cfg.steps):
        return out
    resume = (out / STATE).is_file()
    if say is not None:
        say(resume)
    return pretrain(cfg, resume=resume, progress=progress)

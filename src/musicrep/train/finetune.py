"""Fine-tuning with the pretraining trainer, and the fine-tuned checkpoint as a classifier.

Takes a :class:`~musicrep.train.config.FinetuneConfig` (an encoder, optional starting weights ``DIR``, a
labelled task, ``unfreeze: all | N``, a per-class budget); gives a checkpoint folder in the pretraining
format — ``weights.safetensors`` (the encoder: ``models.get(MODEL, weights=OUT)`` loads it, so
``{name: MODEL, config: {weights: OUT}}`` is a representation like any other), ``model.json``,
``config.yaml``, ``meta.json`` (with the task's ``data_vocabulary`` and ``data_kind``), ``curves.csv``,
``state/`` (resume) — plus ``head.safetensors``, the task head, so :func:`load_predictor` can classify.

Nothing here is a second trainer: :func:`finetune` is :func:`musicrep.train.trainer.pretrain` on a
config whose objective is ``finetune`` (:mod:`musicrep.train.objectives.finetune`: the supervised loss,
blocks outside the last N frozen), whose encoder starts from ``weights`` and whose data are the task's
per-class budget validated on its ``valid`` split (:class:`musicrep.train.data.TrainData`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from musicrep.kinds import get_kind
from musicrep.models.base import (
    CHECKPOINT_MODEL,
    WeightsError,
    load_state,
    read_checkpoint_model,
)
from musicrep.train.config import FinetuneConfig
from musicrep.train.trainer import HEAD_WEIGHTS, pretrain

__all__ = ["Predictor", "finetune", "load_predictor"]


def finetune(cfg: FinetuneConfig, resume: bool = False, progress: bool = False) -> Path:
    """Fine-tune ``cfg``'s encoder on its task (the pretraining trainer and checkpoint format); return ``cfg.out``.

    Raises :class:`~musicrep.train.config.PretrainConfigError` for a bad key, an ``OUT`` that already holds
    a run (without ``resume``) or a resumed run with other settings.
    """
    return pretrain(cfg, resume=resume, progress=progress)


@dataclass
class Predictor:
    """A checkpoint with a task head: ``objective`` (encoder + head, eval mode), the task's ``kind`` and
    ``vocabulary`` (what class id ``i`` means, :meth:`musicrep.kinds.Kind.classes`)."""

    objective: Any
    kind: str
    vocabulary: list[str] | None

    @property
    def encoder(self) -> Any:
        return self.objective.encoder

    @property
    def head(self) -> torch.nn.Module:
        return self.objective.head

    @torch.no_grad()
    def scores(self, audio: Tensor) -> Tensor:
        """16 kHz audio crops ``[B, samples]`` (the training crop length, 3 s by default) → class scores
        ``[B, C]`` (softmax or sigmoid, by the task kind), as the head was trained: on the crop's time-pooled
        last layer."""
        enc = self.encoder
        return get_kind(self.kind).output(self.objective.logits(enc.prepare(audio)).float())

    @torch.no_grad()
    def scores_from_embedding(self, last_layer: Tensor) -> Tensor:
        """Pooled last-layer embeddings ``[N, H]`` (e.g. the store's timeline mean of the last layer, cut to its
        width ``layer_dims[-1]``) → class scores ``[N, C]``."""
        return get_kind(self.kind).output(self.head(last_layer.float()).float())


def load_predictor(folder: str | Path) -> Predictor:
    """The encoder and task head of a checkpoint folder that has ``head.safetensors`` (``musicrep finetune``, or
    supervised pretraining), in eval mode.

    Raises :class:`~musicrep.models.base.WeightsError` naming the file when the folder lacks a head, its
    ``config.yaml``/``meta.json``, or when the head does not fit.
    """
    from safetensors.torch import load_file

    from musicrep import models
    from musicrep.train.objectives import get_objective
    from musicrep.train.objectives.supervised import SupervisedConfig

    folder = Path(folder)
    head_path = folder / HEAD_WEIGHTS
    if not head_path.is_file():
        raise WeightsError(f"{head_path}: not found; only checkpoints of labelled objectives (musicrep finetune, "
                           "supervised pretraining) have a task head")
    try:
        cfg = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{folder}: cannot read config.yaml / meta.json beside the head ({exc})") from None
    name = read_checkpoint_model(folder)["name"]
    kind, n_classes = meta.get("data_kind"), meta.get("data_n_classes")
    if kind is None or n_classes is None:
        raise WeightsError(f"{folder / 'meta.json'}: no data_kind / data_n_classes; not a labelled checkpoint")
    encoder = models.get(name, weights=str(folder))
    head_cfg = {k: v for k, v in dict(cfg.get("objective_config") or {}).items() if k in SupervisedConfig.model_fields}
    objective = get_objective("supervised", encoder, n_classes=int(n_classes), **{"kind": kind, **head_cfg})
    load_state(objective.head, load_file(str(head_path)), head_path, f"the {name} head ({CHECKPOINT_MODEL})")
    objective.eval()
    vocab = meta.get("data_vocabulary")
    return Predictor(objective, str(kind), None if vocab is None else list(vocab))

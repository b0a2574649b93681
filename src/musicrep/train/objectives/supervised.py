"""Supervised pretraining: clip embedding → MLP projector → task targets (McCallum et al. 2022).

Takes ``batch.x`` (encoder input) and ``batch.y`` ``[B, C]`` float targets (multi-hot for multi-label
tags, one-hot — or mixup-softened — for single-label classes); the encoder's last layer is averaged over
time to ``[B, H]``, a projector of ``layers`` hidden ReLU layers maps it to ``[B, C]`` logits (McCallum et
al. put the same 3 × 4096 projector on supervised models as on SimCLR ones; the small default width keeps
CPU runs fast). Loss from the task kind (:mod:`musicrep.kinds`): BCE with logits for ``multilabel``
(soft targets fine), cross-entropy with probability targets for the class kinds, MSE for ``regression``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

from musicrep.kinds import KINDS, get_kind
from musicrep.models.encoder import Encoder
from musicrep.train.batch import Batch
from musicrep.train.objectives.base import (
    Objective,
    ObjectiveConfig,
    logs,
    mlp,
    pooled,
    register,
)


class SupervisedConfig(ObjectiveConfig):
    kind: str = Field("multilabel", description=f"task kind, one of {sorted(KINDS)}; picks BCE / CE / MSE")
    hidden: int = Field(256, ge=1, description="projector hidden width (paper: 4096)")
    layers: int = Field(3, ge=0, description="projector hidden ReLU layers (paper: 3)")

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"unknown task kind {v!r}; one of {sorted(KINDS)}")
        return v


@register
class Supervised(Objective):
    """Projector + BCE / CE / MSE on the task's targets (see module docstring)."""

    name = "supervised"
    Config = SupervisedConfig
    needs_labels = True
    cfg: SupervisedConfig

    def __init__(self, encoder: Encoder, n_classes: int | None = None, **cfg: Any) -> None:
        super().__init__(encoder, n_classes, **cfg)
        if not n_classes:
            raise ValueError("objective 'supervised' needs n_classes (the task's number of classes); train on a task")
        self.loss_kind = get_kind(self.cfg.kind).loss
        self.head = mlp(encoder.layer_dims[-1], self.cfg.hidden, self.cfg.layers, n_classes)

    def exports(self) -> dict[str, Tensor]:
        """The head's state (``head.safetensors``): with the encoder it predicts the task's classes."""
        return {k: v.detach() for k, v in self.head.state_dict().items()}

    def logits(self, x: Tensor) -> Tensor:
        """Class logits ``[B, C]`` of the encoder input ``x`` (the head on the time-pooled last layer)."""
        return self.head(pooled(self.encoder, x))

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """``batch.x`` ``[B, ...]``, ``batch.y`` ``[B, C]`` → (loss, {"loss"})."""
        self.check(batch)
        assert batch.y is not None
        logits = self.logits(batch.x).float()  # [B, C]; loss in float32 under autocast
        y = batch.y.float()
        if self.loss_kind == "bce":
            loss = F.binary_cross_entropy_with_logits(logits, y)
        elif self.loss_kind == "ce":
            loss = F.cross_entropy(logits, y)  # probability targets: one-hot or mixed
        else:
            loss = F.mse_loss(logits, y)
        return loss, logs(loss=loss)

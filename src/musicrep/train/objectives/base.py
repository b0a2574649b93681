"""What every training objective is: :class:`Objective`, its validated :class:`ObjectiveConfig`, the registry.

An objective owns the encoder it trains (``self.encoder`` is a submodule), so ONE module — and so one
``DistributedDataParallel`` wrap and one state dict — holds the encoder together with the objective's
heads (projectors, decoders, frozen BEST-RQ codebooks). ``forward(batch)`` takes a
:class:`musicrep.train.batch.Batch` whose ``x``/``x2`` are already the encoder's input
(``Encoder.prepare``: standardised log-mel ``[B, 1, n_mels, frames]`` or waveform ``[B, samples]``), runs
``encoder.forward_input`` and returns ``(scalar loss, logs)``; ``logs`` are plain floats for the progress
bar and the training curves.

Adding an objective is one file with a ``@register``-ed subclass plus one import line in
``objectives/__init__.py``. Random draws (masks) use torch's global RNG, which the trainer checkpoints, so
a resumed run draws the same masks.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import Tensor, nn

from musicrep.models.encoder import Encoder
from musicrep.train.batch import Batch

__all__ = [
    "OBJECTIVES",
    "Objective",
    "ObjectiveConfig",
    "get_objective",
    "logs",
    "mlp",
    "pooled",
    "register",
]


class ObjectiveConfig(BaseModel):
    """Base of every objective's hyper-parameters (unknown keys are errors that name the key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def config_error(objective: str, exc: ValidationError) -> str:
    """One line naming each offending key of an objective's config (pydantic's message is a page)."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(config)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {key!r}")
        else:
            parts.append(f"key {key!r}: {err['msg']}")
    return f"objective {objective!r} config: " + "; ".join(parts)


class Objective(nn.Module):
    """A training objective wrapping its encoder: ``forward(batch) → (loss, logs)``.

    Class attributes: ``name`` (registry key), ``Config`` (its :class:`ObjectiveConfig`), ``needs_pairs``
    (reads ``batch.x2``: a second view of the same tracks), ``needs_labels`` (reads ``batch.y`` and needs
    ``n_classes``). Subclasses build their heads in ``__init__`` after calling ``super().__init__``.

    Raises:
        ValueError: a config key is unknown or has a bad value (one line naming the key and the valid ones).
    """

    name: ClassVar[str]
    Config: ClassVar[type[ObjectiveConfig]] = ObjectiveConfig
    needs_pairs: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False

    def __init__(self, encoder: Encoder, n_classes: int | None = None, **cfg: Any) -> None:
        super().__init__()
        try:
            self.cfg = self.Config.model_validate(cfg)
        except ValidationError as exc:
            valid = ", ".join(sorted(self.Config.model_fields)) or "none"
            raise ValueError(f"{config_error(self.name, exc)} (valid keys: {valid})") from None
        self.encoder = encoder
        self.n_classes = n_classes

    def check(self, batch: Batch) -> None:
        """Raise a one-line ``ValueError`` when ``batch`` lacks what this objective reads."""
        if self.needs_pairs and batch.x2 is None:
            raise ValueError(f"objective {self.name!r} needs pairs of views (batch.x2); build the data with pairs=True")
        if self.needs_labels and batch.y is None:
            raise ValueError(f"objective {self.name!r} needs labels (batch.y); train on a task folder (--task DIR)")

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:  # pragma: no cover - abstract
        """One step's loss on ``batch``: ``(scalar loss, logs)``."""
        raise NotImplementedError

    def exports(self) -> dict[str, Tensor]:
        """Tensors a checkpoint keeps beside the encoder's weights so the trained model can predict
        (``OUT/head.safetensors``): the task head of a labelled objective; ``{}`` (no file) for the others,
        whose heads only serve the pretext task."""
        return {}


OBJECTIVES: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: add ``cls`` to :data:`OBJECTIVES` under ``cls.name``."""
    if cls.name in OBJECTIVES and OBJECTIVES[cls.name] is not cls:
        raise ValueError(f"objective {cls.name!r} is registered twice")
    OBJECTIVES[cls.name] = cls
    return cls


def get_objective(name: str, encoder: Encoder, n_classes: int | None = None, **cfg: Any) -> Objective:
    """Build the registered objective ``name`` around ``encoder`` with config ``cfg``.

    Raises:
        ValueError: unknown ``name`` (the message lists the registered names) or a bad config key.
    """
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; registered: {', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name](encoder, n_classes=n_classes, **cfg)


def mlp(in_dim: int, hidden: int, n_hidden: int, out_dim: int) -> nn.Sequential:
    """Projector: ``n_hidden`` Linear → ReLU layers of width ``hidden``, then Linear to ``out_dim``
    (McCallum et al. 2022 use 3 × 4096 for both SimCLR and supervised heads). ``[B, in] → [B, out]``."""
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(n_hidden):
        layers += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
        d = hidden
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def pooled(encoder: Encoder, x: Tensor) -> Tensor:
    """Clip embedding ``[B, H]``: the encoder's last layer ``[B, T, H]`` averaged over time (the global
    average pooling McCallum et al. 2022 read their embedding from)."""
    return encoder.forward_input(x)[-1].mean(dim=1)


def logs(**values: Tensor | float) -> dict[str, float]:
    """Detached scalars → floats with ONE device sync (a ``.item()`` each would sync once per value)."""
    names = list(values)
    vals = [v.detach().float().reshape(()) if isinstance(v, Tensor) else torch.tensor(float(v)) for v in values.values()]
    dev = next((v.device for v in vals if v.device.type != "cpu"), torch.device("cpu"))
    return dict(zip(names, torch.stack([v.to(dev) for v in vals]).tolist(), strict=True))

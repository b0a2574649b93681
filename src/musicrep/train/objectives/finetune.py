"""Fine-tuning: the supervised objective with only the encoder's last N blocks (and the head) trained.

Takes an encoder (usually a checkpoint: ``models.get(name, weights=DIR)``) and a task's targets; gives
the supervised loss (:mod:`musicrep.train.objectives.supervised`, unchanged) with every parameter
outside the last ``unfreeze`` blocks frozen. What a block is comes from the encoder itself
(:meth:`musicrep.models.encoder.Encoder.layer_blocks`: the modules behind each layer), so this file
knows no encoder family.

Why frozen blocks stay in eval mode: a frozen BatchNorm that kept updating its running statistics would
change the frozen part of the model (its buffers) and make its training-time output differ from the
checkpoint's; frozen means the checkpoint's function, bit for bit.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import nn

from musicrep.models.encoder import Encoder
from musicrep.train.objectives.base import register
from musicrep.train.objectives.supervised import Supervised, SupervisedConfig

__all__ = ["Finetune", "FinetuneObjectiveConfig", "frozen_names"]


class FinetuneObjectiveConfig(SupervisedConfig):
    unfreeze: Literal["all"] | int = Field("all", description="'all', or train only the encoder's last N blocks "
                                           "(one block per layer, Encoder.layer_blocks) and the head")


def frozen_names(encoder: Encoder, unfreeze: Literal["all"] | int) -> set[str]:
    """Names of the encoder's parameters and buffers outside its last ``unfreeze`` blocks (none for ``"all"``).

    Raises ``ValueError`` when ``unfreeze`` is not ``"all"`` or between 0 and the number of blocks.
    """
    if unfreeze == "all":
        return set()
    n_blocks = len(encoder.layer_blocks())
    if not isinstance(unfreeze, int) or not 0 <= unfreeze <= n_blocks:
        raise ValueError(f"unfreeze: {unfreeze!r}; give 'all' or a number of blocks from 0 to {n_blocks} "
                         f"({encoder.name} has {n_blocks}: {', '.join(encoder.layer_names)})")
    first = n_blocks - unfreeze
    names = [n for n, _ in encoder.named_parameters()] + [n for n, _ in encoder.named_buffers()]
    return {n for n in names if encoder.block_of(n) < first}


@register
class Finetune(Supervised):
    """:class:`Supervised` with the encoder frozen outside its last ``unfreeze`` blocks (see module docstring)."""

    name = "finetune"
    Config = FinetuneObjectiveConfig
    cfg: FinetuneObjectiveConfig

    def __init__(self, encoder: Encoder, n_classes: int | None = None, **cfg: Any) -> None:
        super().__init__(encoder, n_classes, **cfg)
        try:
            frozen = frozen_names(encoder, self.cfg.unfreeze)
        except NotImplementedError as exc:
            raise ValueError(str(exc)) from None
        for n, p in encoder.named_parameters():
            p.requires_grad_(n not in frozen)
        self._frozen_modules: list[nn.Module] = []
        if frozen:  # the modules inside frozen blocks stay in eval mode (BatchNorm statistics, dropout)
            first = len(encoder.layer_blocks()) - int(self.cfg.unfreeze)
            self._frozen_modules = [m for n, m in encoder.named_modules() if n and _block(encoder, n) < first]

    def train(self, mode: bool = True) -> Finetune:
        super().train(mode)
        for m in self._frozen_modules:
            m.eval()
        return self


def _block(encoder: Encoder, name: str) -> int:
    """The block of module ``name``; containers above the blocks (``blocks``) count as trainable."""
    try:
        return encoder.block_of(name)
    except KeyError:
        return len(encoder.layer_blocks())

"""Training objectives, a registry: ``get_objective(name, encoder, n_classes=None, **cfg)`` → an
:class:`Objective` module (encoder + heads) whose ``forward(batch)`` gives ``(loss, logs)``.

Registered: ``supervised`` (BCE / CE through a projector), ``simclr`` (NT-Xent on two views),
``masked`` (log-mel reconstruction: TMAE patches or time spans), ``bestrq`` (random-projection quantiser
targets), ``finetune`` (supervised with only the encoder's last N blocks trained). Adding one is a file with a ``@register``-ed class and an import line below.
"""

from musicrep.train.objectives.base import (
    OBJECTIVES,
    Objective,
    ObjectiveConfig,
    get_objective,
    register,
)

# one import line per objective file: importing registers it
from musicrep.train.objectives import supervised as supervised  # isort: skip
from musicrep.train.objectives import simclr as simclr  # isort: skip
from musicrep.train.objectives import masked as masked  # isort: skip
from musicrep.train.objectives import bestrq as bestrq  # isort: skip
from musicrep.train.objectives import finetune as finetune  # isort: skip

__all__ = ["OBJECTIVES", "Objective", "ObjectiveConfig", "get_objective", "register"]

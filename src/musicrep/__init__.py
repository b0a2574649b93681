"""musicrep: learn and evaluate music audio representations when labelled data is scarce."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from musicrep.models import Representation

__version__ = "0.1.0"
__all__ = ["__version__", "load"]


def load(name: str, **config: Any) -> Representation:
    """Build the representation registered as ``name`` — e.g. ``musicrep.load("musicrep-small")``, the shipped
    model, or ``load("vgg", seed=0)``, a random-init twin — the same as :func:`musicrep.models.get`.

    Works offline: shipped weights are package data. Raises ``KeyError`` naming the registered names for an
    unknown one, ``RuntimeError`` naming what to install when the representation cannot run here.
    """
    from musicrep import models  # lazy: `import musicrep` stays cheap

    return models.get(name, **config)

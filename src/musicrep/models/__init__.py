"""Representations: a registry of names → constructors, all honouring :class:`Representation`.

``get(name, **config)`` builds one; ``names()`` lists the registry; ``entries()`` gives the metadata
``musicrep reps list`` shows, ``entry(name)`` one name's. One file per family registers itself with :func:`register`, so adding a
representation is adding one file (and one import line in :data:`_FAMILIES`).

Every trainable encoder accepts ``seed=`` (the untrained "random twin" is ``get(name, seed=s)``) and
``weights=PATH`` (a trained checkpoint); nothing else downstream distinguishes them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from musicrep.models.base import Representation, TorchEncoder, WeightsError, align_layers, load_weights, state_checksum

__all__ = [
    "Representation",
    "TorchEncoder",
    "WeightsError",
    "RepresentationEntry",
    "align_layers",
    "entries",
    "entry",
    "get",
    "load_weights",
    "names",
    "register",
    "state_checksum",
]


@dataclass
class RepresentationEntry:
    """Registry metadata for one representation name."""

    name: str
    factory: Callable[..., Representation]
    family: str
    description: str
    #: returns ``(True, "")`` or ``(False, "what to install / which file is needed")``
    available: Callable[[], tuple[bool, str]] = field(default=lambda: (True, ""))


_REGISTRY: dict[str, RepresentationEntry] = {}
#: Modules that register representations when imported (one per family).
_FAMILIES: list[str] = [
    "musicrep.models.vgg",
    "musicrep.models.musicnn",
    "musicrep.models.patch_transformer",
    "musicrep.models.samplecnn",
    "musicrep.models.nfnet",
    "musicrep.models.conformer",
    "musicrep.models.handcrafted",
    "musicrep.models.rhythm",
    "musicrep.models.packaged.crepe",
    "musicrep.models.packaged.madmom",
    "musicrep.models.packaged.basic_pitch",
    "musicrep.models.packaged.essentia_hpcp",
    "musicrep.models.packaged.musicnn_tf",
    "musicrep.models.checkpoints.mert",
    "musicrep.models.checkpoints.musicfm",
    "musicrep.models.checkpoints.muq",
    "musicrep.models.checkpoints.torch_module",
    "musicrep.models.hear",
    "musicrep.models.shipped",
]
_loaded = False


def register(
    name: str,
    family: str,
    description: str,
    available: Callable[[], tuple[bool, str]] | None = None,
) -> Callable[[Callable[..., Representation]], Callable[..., Representation]]:
    """Decorator: register ``factory`` under ``name``."""

    def deco(factory: Callable[..., Representation]) -> Callable[..., Representation]:
        if name in _REGISTRY:
            raise ValueError(f"representation {name!r} registered twice")
        _REGISTRY[name] = RepresentationEntry(name, factory, family, description, available or (lambda: (True, "")))
        return factory

    return deco


def _load_families() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _FAMILIES:
            importlib.import_module(mod)


def names() -> list[str]:
    """All registered representation names, sorted."""
    _load_families()
    return sorted(_REGISTRY)


def entries() -> list[RepresentationEntry]:
    """Registry entries, sorted by name."""
    _load_families()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def entry(name: str) -> RepresentationEntry:
    """The registry entry of ``name`` (factory, family, description, availability check).

    Raises ``KeyError`` naming the registered names when ``name`` is unknown."""
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown representation {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def get(name: str, **config: Any) -> Representation:
    """Build the representation registered as ``name`` with ``config`` (e.g. ``size="small", seed=0``)."""
    if name.startswith("hear:"):  # any installed HEAR-API module, e.g. "hear:hearbaseline"
        return get("hear", module=name[len("hear:"):], **config)
    found = entry(name)
    ok, why = found.available()
    if not ok:
        raise RuntimeError(f"representation {name!r} is not available here: {why}")
    return found.factory(**config)

"""Models trained by musicrep and shipped inside the package: ``musicrep-small``.

Each is a checkpoint folder written by ``musicrep pretrain`` (``weights.safetensors`` + ``model.json``)
under ``musicrep/models/weights/<name>/``, with the SHA-256 of its weights beside them (verified on every
load by :func:`musicrep.models.base.load_weights`), its training record (``training.json``, the
checkpoint's ``meta.json``) and its model card (``card.md``). The recipe that trains it bit for bit is a
``musicrep pretrain`` preset of the same name. Nothing is downloaded: the weights are package data.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from musicrep.models import register
from musicrep.models.base import CHECKPOINT_MODEL, CHECKPOINT_WEIGHTS, Representation, read_checkpoint_model

__all__ = ["SHIPPED", "ShippedModel", "folder", "model_card"]


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model: registry name, one-line description, and its ``musicrep pretrain`` preset."""

    name: str
    description: str
    preset: str


SHIPPED: dict[str, ShippedModel] = {m.name: m for m in [
    ShippedModel("musicrep-small", "Small VGG (134 k parameters, 5 layers, 128-d last) trained with SimCLR on 830 min "
                 "of Debian-packaged music; `--weights musicrep-small` starts fine-tuning from it", preset="musicrep-small"),
]}


def folder(name: str) -> Path:
    """The installed checkpoint folder of shipped model ``name``; ``KeyError`` for another name."""
    if name not in SHIPPED:
        raise KeyError(f"{name!r} is not a shipped model; shipped: {', '.join(SHIPPED)}")
    return Path(str(resources.files("musicrep.models").joinpath("weights", name)))


def model_card(name: str) -> str | None:
    """The model card (Markdown) of ``name``, or None when it is not a shipped model."""
    if name not in SHIPPED:
        return None
    card = folder(name) / "card.md"
    return card.read_text(encoding="utf-8") if card.is_file() else None


def _available(name: str) -> tuple[bool, str]:
    d = folder(name)
    missing = [f for f in (CHECKPOINT_WEIGHTS, CHECKPOINT_MODEL) if not (d / f).is_file()]
    if missing:
        return False, f"{d}: {', '.join(missing)} missing from the installed package; reinstall musicrep"
    return True, ""


def _factory(name: str) -> Any:
    def build(**config: Any) -> Representation:
        """The trained encoder (its registry family, e.g. ``vgg``), weights checksum-verified."""
        from musicrep import models

        d = folder(name)
        arch = read_checkpoint_model(d)["name"]
        return models.get(arch, weights=str(d), **config)

    return build


for _m in SHIPPED.values():
    register(_m.name, "shipped", _m.description, available=lambda n=_m.name: _available(n))(_factory(_m.name))

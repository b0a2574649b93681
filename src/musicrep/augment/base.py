"""The deformation contract: a registry of transforms and the canonical ``name[:variant][@k=v,…]`` strings.

Why strings: a results row, a store key and a CLI flag must all say the same thing about what was done
to the audio, and a string is the one form all three can hold. Parameters are written in the order the
transform declares them, numbers in shortest form (``snr=10``, ``rate=1.1``), so one deformation has
exactly one string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFORMATIONS", "Deformation", "DeformationError", "Transform", "apply", "item_rng", "parse", "register"]


class DeformationError(ValueError):
    """A deformation string or parameter is wrong; the message names it and lists what is allowed."""


#: ``fn(audio [n] float32, sr, rng, variant, **params) -> audio [n'] float32`` (length fixed by the caller)
TransformFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Transform:
    """A registered deformation.

    ``params``: the parameter names in canonical order with their defaults. ``variants``: allowed
    ``:variant`` values (first is the default). ``natural``: an effect a listener meets in real recordings
    (the augmentation study uses only these). ``changes``: task kinds whose labels it alters (a pitch shift
    changes a key or pitch label), so augmentation skips it there.
    """

    name: str
    fn: TransformFn
    params: dict[str, Any]
    description: str
    variants: tuple[str, ...] = ()
    natural: bool = False
    changes: tuple[str, ...] = ()


DEFORMATIONS: dict[str, Transform] = {}


def register(name: str, params: Mapping[str, Any], description: str, *, variants: tuple[str, ...] = (),
             natural: bool = False, changes: tuple[str, ...] = ()) -> Callable[[TransformFn], TransformFn]:
    """Decorator: register ``fn`` as deformation ``name`` with ``params`` (name → default, canonical order)."""

    def deco(fn: TransformFn) -> TransformFn:
        if name in DEFORMATIONS:
            raise ValueError(f"deformation {name!r} registered twice")
        DEFORMATIONS[name] = Transform(name, fn, dict(params), description, variants, natural, changes)
        return fn

    return deco


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() else f"{f:g}"
    return str(v)


@dataclass(frozen=True)
class Deformation:
    """One deformation with its parameters; ``str()`` is its canonical string.

    Build with :func:`parse` (``parse("noise:pink@snr=10")``) or directly
    (``Deformation("noise", "pink", {"snr": 10})``). Unknown names, variants or parameters raise
    :class:`DeformationError`; parameters left out take the transform's defaults.
    """

    name: str
    variant: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.transform
        if t.variants:
            v = self.variant or t.variants[0]
            if v not in t.variants:
                raise DeformationError(f"{self.name}: unknown variant {self.variant!r}; choose one of "
                                       f"{', '.join(t.variants)}")
            object.__setattr__(self, "variant", v)
        elif self.variant:
            raise DeformationError(f"{self.name} has no variants (got ':{self.variant}')")
        unknown = sorted(set(self.params) - set(t.params))
        if unknown:
            raise DeformationError(f"{self.name}: unknown parameter(s) {unknown}; it takes {', '.join(t.params) or 'none'}")
        full = {}
        for k, default in t.params.items():
            v = self.params.get(k, default)
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise DeformationError(f"{self.name}: parameter {k}={v!r} is not a number") from None
            full[k] = v
        object.__setattr__(self, "params", full)

    @property
    def transform(self) -> Transform:
        try:
            return DEFORMATIONS[self.name]
        except KeyError:
            raise DeformationError(f"unknown deformation {self.name!r}; known: {', '.join(sorted(DEFORMATIONS))}") from None

    def __str__(self) -> str:
        head = f"{self.name}:{self.variant}" if self.variant else self.name
        if not self.params:
            return head
        return head + "@" + ",".join(f"{k}={_fmt(v)}" for k, v in self.params.items())

    def to_dict(self) -> dict[str, Any]:
        """``{name, variant, params}`` (YAML/JSON-friendly)."""
        return {"name": self.name, "variant": self.variant, "params": dict(self.params)}

    def __call__(self, audio: np.ndarray, sr: int, *, item_id: str = "", seed: int = 0) -> np.ndarray:
        return apply(self, audio, sr, item_id=item_id, seed=seed)


def parse(spec: str | Deformation | Mapping[str, Any]) -> Deformation:
    """A deformation from its canonical string (``"mp3@kbps=64"``), a dict, or a Deformation.

    Raises :class:`DeformationError` naming the bad part (``"mp3@kbs=64"``: unknown parameter ``kbs``).
    """
    if isinstance(spec, Deformation):
        return spec
    if isinstance(spec, Mapping):
        return Deformation(str(spec["name"]), str(spec.get("variant", "") or ""), dict(spec.get("params", {})))
    text = str(spec).strip()
    head, _, tail = text.partition("@")
    name, _, variant = head.partition(":")
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in tail.split(","))):
        k, sep, v = part.partition("=")
        if not sep:
            raise DeformationError(f"{text!r}: parameter {part!r} must be KEY=VALUE, e.g. 'noise:pink@snr=10'")
        params[k.strip()] = v.strip()
    return Deformation(name.strip(), variant.strip(), params)


def item_rng(item_id: str, deformation: str, seed: int) -> np.random.Generator:
    """The generator for one item under one deformation and seed (SHA-256 of the three, so stable everywhere)."""
    digest = hashlib.sha256(f"{item_id}\x00{deformation}\x00{int(seed)}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def apply(deformation: str | Deformation, audio: np.ndarray, sr: int, *, item_id: str = "",
          seed: int = 0) -> np.ndarray:
    """Deform mono ``audio [samples]`` (float32 at ``sr`` Hz); same length, finite, deterministic.

    Raises :class:`DeformationError` for a bad spec or non-mono input.
    """
    d = parse(deformation)
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise DeformationError(f"{d}: expected mono audio [samples], got shape {x.shape}")
    if len(x) == 0:
        return x.copy()
    y = d.transform.fn(x, int(sr), item_rng(item_id, str(d), seed), d.variant, **d.params)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    # length is part of the contract: windows, labels and store keys assume the item's duration
    if len(y) > len(x):
        y = y[: len(x)]
    elif len(y) < len(x):
        y = np.concatenate([y, np.zeros(len(x) - len(y), np.float32)])
    return np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)

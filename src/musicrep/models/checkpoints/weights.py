"""Reading released weights from disk: state dicts, JSON configs, the file inside a release folder, key names.

Everything here raises :class:`~musicrep.models.base.WeightsError` naming the file (and what to pass
instead) when a file is missing or unreadable; nothing downloads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from musicrep.models.base import WeightsError

__all__ = ["read_json", "read_state_dict", "release_state", "resolve_weights"]


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or a weights-only ``.pt``/``.bin``/``.ckpt`` (no pickled code).

    A ``{"state_dict": …}`` or ``{"model": …}`` wrapper (Lightning / training checkpoints) is unwrapped.
    Raises :class:`WeightsError` if the file is absent or cannot be parsed.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p))
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad weights file
        raise WeightsError(f"{p}: cannot read weights ({exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON file beside the weights (``config.json``, ``*_stats.json``) as a dict.

    Raises :class:`WeightsError` ``"<path>: cannot read <what> (<reason>)"`` if it is unreadable or not JSON.
    """
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot read {what} ({exc})") from None


def resolve_weights(path: str | Path | None, names: tuple[str, ...], what: str, arg: str = "weights") -> Path:
    """A weights file: ``path`` itself, or the first of ``names`` inside the folder ``path``.

    ``what`` (the representation name) and ``arg`` (the keyword the user passes) make the error message.
    Raises :class:`WeightsError` if ``path`` is None, or neither it nor any of ``names`` in it exists.
    """
    if path is None:
        raise WeightsError(f"{what}: pass {arg}=FILE or a folder holding {names[0]}")
    p = Path(path).expanduser()
    if p.is_dir():
        for n in names:
            if (p / n).is_file():
                return p / n
        raise WeightsError(f"{what}: expected {p / names[0]} (or {', '.join(names[1:])}) — not found")
    if not p.is_file():
        raise WeightsError(f"{what}: weights file {p} not found")
    return p


def release_state(state: dict[str, Tensor], prefixes: tuple[str, ...], ignored: tuple[str, ...],
                  renames: dict[str, str] | None = None) -> dict[str, Tensor]:
    """Map a released state dict onto our module's key names.

    Per key: strip the first of ``prefixes`` it starts with (the wrapper a release saved it under, e.g.
    ``model.``), replace each ``renames`` substring (e.g. new-style weight-norm names), and drop it if it then
    starts with one of ``ignored`` (pretraining-only heads and targets inference does not use).
    """
    out = {}
    for k, v in state.items():
        for pre in prefixes:
            if k.startswith(pre):
                k = k[len(pre):]
                break
        for old, new in (renames or {}).items():
            k = k.replace(old, new)
        if not k.startswith(ignored):
            out[k] = v
    return out

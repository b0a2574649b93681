"""``musicrep reps list`` and ``musicrep embed``: look at the representation registry, embed one file.

``reps list`` builds every available representation at ``small`` size to report its parameter count,
layers and frame rate (and, for the unavailable ones, what they need). ``embed`` is the one-file
version of extraction: load (any format, resampled to the representation's rate), cut into the
representation's windows (hop = window, the last one zero-padded), embed each, and save the frames of
all windows in order as ``[L, T_total, H]`` float32 (``--layers`` keeps a subset of L).

Both are thin shells over :mod:`musicrep.models` and :func:`embed_file`, usable from Python too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

__all__ = ["reps_app", "embed", "embed_file", "parse_layers", "parse_opts", "build_kwargs"]

reps_app = typer.Typer(help="List and inspect registered representations.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def parse_layers(spec: str, n_layers: int) -> list[int]:
    """``"all"`` → every layer; ``"0,2,-1"`` → those indices (negative counts from the end)."""
    if spec.strip().lower() == "all":
        return list(range(n_layers))
    out = []
    for tok in spec.split(","):
        try:
            i = int(tok)
        except ValueError:
            raise ValueError(f"--layers: {tok!r} is not an integer; use 'all' or e.g. '0,2,5'") from None
        if not -n_layers <= i < n_layers:
            raise ValueError(f"--layers: index {i} out of range for {n_layers} layers (0..{n_layers - 1})")
        out.append(i % n_layers)
    return out


def parse_opts(opts: list[str]) -> dict[str, Any]:
    """``["module=hearbaseline", "n_mfcc=13", "channels=[8,16]"]`` → dict; values are JSON when they parse."""
    import json

    out: dict[str, Any] = {}
    for item in opts:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--opt {item!r}: expected KEY=VALUE, e.g. --opt module=hearbaseline")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def build_kwargs(size: str | None, seed: int | None, weights: Path | None,
                 opts: list[str] | None = None) -> dict[str, Any]:
    """Only the options the user gave (plus ``--opt`` pairs), so every representation is built alike."""
    kw: dict[str, Any] = parse_opts(opts or [])
    if size is not None:
        kw["size"] = size
    if seed is not None:
        kw["seed"] = seed
    if weights is not None:
        kw["weights"] = str(weights)
    return kw


def embed_file(path: str | Path, rep: Any, layers: list[int] | None = None, batch_size: int = 8) -> np.ndarray:
    """Embed a whole file with ``rep``: windows of ``rep.window_seconds`` (hop = window, last padded).

    Returns float32 ``[L, T_total, H]``: the windows' frames concatenated in time order. A file shorter
    than one window is padded to one window. ``window_seconds=None`` embeds the file in one piece.
    """
    import torch

    from musicrep.audio import frame_signal, load

    y = load(path, sr=rep.sample_rate)
    if rep.window_seconds is None:
        windows = y[None]
    else:
        windows = frame_signal(y, rep.sample_rate, rep.window_seconds, rep.window_seconds, pad=True)
        if len(windows) == 0:  # empty file: one silent window rather than nothing
            windows = np.zeros((1, int(round(rep.window_seconds * rep.sample_rate))), dtype=np.float32)
        windows = np.array(windows, dtype=np.float32)  # writable copy of the read-only strided view
    from musicrep.models.base import for_inference

    rep = for_inference(rep)  # eval mode, folded batch norms, channels-last: as extraction runs it
    chunks = []
    with torch.inference_mode():
        for s in range(0, len(windows), batch_size):
            e = rep.embed(torch.from_numpy(windows[s : s + batch_size]))  # [B, L, T, H]
            if layers is not None:
                e = e[:, layers]
            chunks.append(e.permute(1, 0, 2, 3).reshape(e.shape[1], -1, e.shape[3]))
    return torch.cat(chunks, dim=1).numpy().astype(np.float32)


@reps_app.command("list")
def list_reps(
    size: str = typer.Option("small", "--size", help="Size to build when counting parameters."),
    describe: bool = typer.Option(False, "--describe", "-d", help="Add a description column."),
) -> None:
    """Show every registered representation: family, parameters, layers, frame rate, availability.

    "needs: …" means the code is installed but the representation cannot be built without more
    configuration (typically local weights: the message names the file or option it expects).
    """
    from musicrep.models import entries

    table = Table("name", "family", "params", "layers", "rate (Hz)", "available")
    if describe:
        table.add_column("description")
    for col in table.columns[:5]:
        col.no_wrap = True
    for e in entries():
        ok, why = e.available()
        params = layers = rate = "–"
        status = "yes" if ok else f"no: {why}"
        if ok:
            try:
                try:
                    rep = e.factory(size=size)
                except (TypeError, ValueError):
                    rep = e.factory()  # representations without named sizes
                params = f"{rep.n_params:,}"
                layers = str(rep.n_layers)
                rate = f"{rep.frame_rate:g}"
            except Exception as exc:  # noqa: BLE001 - report, keep listing
                status = f"needs: {str(exc).splitlines()[0]}"
        row = [e.name, e.family, params, layers, rate, status] + ([e.description] if describe else [])
        table.add_row(*row)
    console.print(table)


def embed(
    file: Path = typer.Argument(..., help="Audio file to embed (any format libsndfile reads)."),
    rep: str = typer.Option(..., "--rep", "-r", help="Representation name (see `musicrep reps list`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npy, float32 [L, T, H]."),
    layers: str = typer.Option("all", "--layers", help="'all' or comma-separated layer indices, e.g. 0,2,5."),
    size: str | None = typer.Option(None, "--size", help="Model size: small | paper (encoders only)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the untrained random twin (encoders)."),
    weights: Path | None = typer.Option(None, "--weights", help="Trained weights (.safetensors or .pt)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Windows per forward pass."),
    opt: list[str] = typer.Option([], "--opt", help="Extra constructor setting KEY=VALUE (JSON values), "
                                  "repeatable, e.g. --opt n_mfcc=13 or --opt module=hearbaseline."),
) -> None:
    """Embed FILE with a representation and save every (or the chosen) layer as [L, T, H]."""
    import torch

    from musicrep.audio import AudioError
    from musicrep.models import WeightsError, get

    try:
        r = get(rep, **build_kwargs(size, seed, weights, opt))
    except (KeyError, ValueError, TypeError, RuntimeError, WeightsError) as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        idx = parse_layers(layers, r.n_layers)
        with torch.inference_mode():  # scoped: the CLI may run inside a larger process (tests, demo)
            arr = embed_file(file, r, idx, batch_size=batch_size)
    except ValueError as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except AudioError as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, arr)
    names = [r.layer_names[i] for i in idx]
    console.print(f"{file}: {r.id} layers={len(names)} frames={arr.shape[1]} ({r.frame_rate:g} Hz) "
                  f"width={arr.shape[2]} → {out}", highlight=False)

"""``musicrep reps list`` and ``reps show NAME``: look at the representation registry (and a shipped
model's card); and the option parsers every command that builds a representation shares (``--layers``,
``--opt``, ``--size``/``--seed``/``--weights``).

``reps list`` builds every available representation at ``small`` size to report its parameter count,
layers and frame rate (and, for the unavailable ones, what they need). ``musicrep embed`` lives in
:mod:`musicrep.cli`, above the extraction floor whose windows it shares (:func:`musicrep.embed.embed_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["reps_app", "parse_layers", "parse_opts", "build_kwargs"]

reps_app = typer.Typer(help="List and inspect registered representations.", no_args_is_help=True)
console = Console()


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



@reps_app.command("show")
def show_rep(name: str = typer.Argument(..., help="Registered name, e.g. musicrep-small or vgg.")) -> None:
    """One representation in full: family, description, availability, layers with their widths, frame rate,
    parameters, id; and the model card of a shipped model (training data and licences, budget, objective,
    scores against handcrafted features and its random twin)."""
    from rich.markdown import Markdown

    from musicrep.models import entry
    from musicrep.models.shipped import model_card

    try:
        e = entry(name)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from None
    ok, why = e.available()
    console.print(f"[bold]{e.name}[/bold] ({e.family}): {e.description}")
    if not ok:
        console.print(f"not available here: {why}")
    else:
        try:
            rep = e.factory()
        except Exception as exc:  # noqa: BLE001 - say what it needs, as `reps list` does
            console.print(f"needs: {str(exc).splitlines()[0]}")
        else:
            console.print(f"id {rep.id} · {rep.n_params:,} parameters · {rep.sample_rate} Hz input · "
                          f"{rep.frame_rate:g} frames/s")
            console.print("layers: " + ", ".join(f"{n} ({d})" for n, d in zip(rep.layer_names, rep.layer_dims)))
    card = model_card(name)
    if card is not None:
        console.print(Markdown(card))

"""``musicrep index …``: build a similarity-search index of audio clips, query it with a file, add files later.

Thin shells over :mod:`musicrep.search.build`; their errors (:class:`~musicrep.search.index.SearchError`,
``AudioError``, ``TaskError``) are printed as one message with exit status 2 by the top-level group
(:data:`musicrep.cli.USER_ERRORS`), not here. faiss and the models are imported inside the commands, so
``musicrep --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(name="index", help="Similarity search: index clips by a representation, find a file's nearest "
                  "neighbours.", no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True)


def _report_errors(errors: list[dict[str, str]]) -> None:
    for e in errors:
        err_console.print(f"skipped {e.get('error') or e.get('path')}", highlight=False, soft_wrap=True)


@app.command()
def build(
    rep: str = typer.Option(..., "--rep", "-r", help="Representation name (see `musicrep reps list`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Index folder to write (index.faiss, items.csv, index.json)."),
    audio: Path | None = typer.Option(None, "--audio", help="Folder of audio files (searched recursively)."),
    task: Path | None = typer.Option(None, "--task", help="Task folder (task.yaml + items.csv): index its items, "
                                        "with their split, label and group as metadata."),
    split: list[str] = typer.Option([], "--split", help="With --task: index only these splits (repeatable)."),
    layer: int = typer.Option(-1, "--layer", help="Which layer's timeline mean to index (-1: the last)."),
    kind: str = typer.Option("auto", "--kind", help="auto (exact below 100k items, IVF above) | flat | ivf | hnsw."),
    metric: str = typer.Option("cosine", "--metric", help="cosine | ip | l2."),
    standardise: bool = typer.Option(True, "--standardise/--raw", help="Z-score each feature with the indexed "
                                     "clips' statistics before the metric (default; --raw: the vectors as embedded)."),
    store: Path | None = typer.Option(None, "--store", help="Embedding store to extract into / reuse "
                                         "(default: OUT/store; share one with `musicrep evaluate` runs)."),
    size: str | None = typer.Option(None, "--size", help="Model size: small | paper (encoders only)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the untrained random twin (encoders)."),
    weights: Path | None = typer.Option(None, "--weights", help="Trained weights (.safetensors, .pt or a "
                                           "`musicrep pretrain` folder)."),
    opt: list[str] = typer.Option([], "--opt", help="Extra constructor setting KEY=VALUE (JSON values), repeatable."),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per forward pass."),
) -> None:
    """Embed --audio DIR or --task T with --rep and write a search index of one vector per clip to --out."""
    from musicrep.models.cli import build_kwargs
    from musicrep.search.build import build_index

    try:
        config = build_kwargs(size, seed, weights, opt)
    except ValueError as exc:
        from musicrep.search.index import SearchError

        raise SearchError(str(exc)) from None
    index, errors = build_index(rep, audio=audio, task=task, store=store or out / "store", config=config, layer=layer,
                                splits=split or None, metric=metric, kind=kind, batch_size=batch_size,
                                standardise=standardise)
    index.save(out)
    _report_errors(errors)
    console.print(f"index: {out} ({index.kind}, {index.metric}, {index.count} items × {index.dim} dims of "
                  f"{index.info['representation']['id']} layer {index.info['layer_name']}, {index.nbytes / 1e6:.1f} MB)",
                  highlight=False, soft_wrap=True)
    if errors:
        raise typer.Exit(1)


@app.command()
def query(
    index_dir: Path = typer.Argument(..., help="Index folder written by `musicrep index build`."),
    file: Path = typer.Argument(..., help="Audio file whose neighbours to find."),
    k: int = typer.Option(10, "-k", "--k", help="Neighbours to return."),
    exclude_self: bool = typer.Option(False, "--exclude-self", help="Leave out items with the query's own content."),
    as_json: bool = typer.Option(False, "--json", help="Print the neighbours as JSON lines instead of a table."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also save the neighbours (.csv, or .json)."),
) -> None:
    """Embed FILE with the index's representation and print its k nearest items (rank, score, metadata)."""
    from musicrep.search.build import query_file
    from musicrep.search.index import Index

    index = Index.load(index_dir)
    table = query_file(index, file, k, exclude_self=exclude_self)
    if out is not None:
        from musicrep.util import atomic_path

        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            if out.suffix.lower() == ".json":
                table.to_json(tmp, orient="records", indent=1)
            else:
                table.to_csv(tmp, index=False)
    if as_json:
        for row in table.to_dict(orient="records"):
            typer.echo(json.dumps(row, default=str))
        return
    shown = [c for c in table.columns if c not in ("key",)]
    t = Table(title=f"{file} → {index_dir} ({index.info['representation']['name']}, {index.metric})")
    for c in shown:
        t.add_column(c, overflow="fold")
    for row in table[shown].itertuples(index=False):
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)


@app.command()
def add(
    index_dir: Path = typer.Argument(..., help="Index folder written by `musicrep index build`."),
    audio: Path = typer.Option(..., "--audio", help="Folder of audio files to add (files already indexed, by "
                               "content, are skipped)."),
    store: Path | None = typer.Option(None, "--store", help="Embedding store (default: INDEX/store)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per forward pass."),
) -> None:
    """Embed the new files under --audio with the index's representation and add them to the index."""
    from musicrep.search.build import add_audio
    from musicrep.search.index import Index

    index = Index.load(index_dir)
    n, errors = add_audio(index, audio, store or index_dir / "store", batch_size=batch_size)
    if n:
        index.save(index_dir)
    _report_errors(errors)
    console.print(f"index: {index_dir} +{n} items ({index.count} in all)", highlight=False)
    if errors:
        raise typer.Exit(1)

"""Reading run folders: the results table and the files beside it, tolerant of every optional file.

Takes folders written by ``musicrep evaluate`` or ``musicrep study``; gives one :class:`Run` per folder
with its results (through :func:`musicrep.results.read_results`, the one reader of the table), its
resolved config text, package versions, unreadable-file records, layer-to-layer CKA table and, where
the demo or ``musicrep compare`` wrote one, ``ties.csv`` (which entries a paired bootstrap cannot tell apart from each task's winner).

Why tolerant: a report is often made from a run that was interrupted or copied without its side files;
a missing ``versions.json`` should cost one line in the report, not the report. Only a folder without a
``results.csv`` is an error (:class:`ReportError`), because there is then nothing to report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from musicrep.results import TIES_COLUMNS, TIES_FILE, read_results

__all__ = ["CKA_COLUMNS", "ReportError", "Run", "load_run", "load_runs"]

#: Columns of ``cka.csv`` (written by the layerwise study): linear CKA between two layers of one
#: representation, computed on one task's items.
CKA_COLUMNS: list[str] = ["representation", "task", "layer_a", "layer_b", "cka"]


class ReportError(ValueError):
    """A run folder that cannot be reported on, or an output path that cannot be written; the message
    names the path and the fix."""


@dataclass
class Run:
    """One run folder. ``name`` is unique among the runs of one report (the folder name, with its parent's
    name prepended when two folders share a name). ``notes`` lists side files that were missing or
    unreadable, one sentence each."""

    name: str
    path: Path
    results: pd.DataFrame
    config_text: str | None = None
    versions: dict[str, Any] | None = None
    errors: pd.DataFrame | None = None
    cka: pd.DataFrame | None = None
    ties: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def load_run(path: str | Path, name: str | None = None) -> Run:
    """Read one run folder. Raises :class:`ReportError` when the folder or its ``results.csv`` is missing
    or the table cannot be parsed; any other file may be absent or broken (a note says so)."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: no such folder; give a run folder written by `musicrep evaluate` or "
                          "`musicrep study` (it holds results.csv)")
    table = path / "results.csv"
    if not table.is_file():
        raise ReportError(f"{path}: no results.csv in this folder; give the --out folder of `musicrep evaluate` "
                          "or `musicrep study`")
    try:
        results = read_results(table)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReportError(f"{table}: not a readable results table ({exc}); re-run the study that wrote it") from None
    run = Run(name or path.resolve().name, path, results)

    config = path / "config.resolved.yaml"
    if config.is_file():
        run.config_text = config.read_text(encoding="utf-8", errors="replace")
    else:
        run.notes.append("config.resolved.yaml is missing")
    versions = path / "versions.json"
    if versions.is_file():
        try:
            loaded = json.loads(versions.read_text(encoding="utf-8"))
            run.versions = loaded if isinstance(loaded, dict) else {"versions.json": loaded}
        except (ValueError, UnicodeDecodeError) as exc:
            run.notes.append(f"versions.json is not valid JSON ({exc})")
    else:
        run.notes.append("versions.json is missing")
    errors = path / "errors.csv"
    if errors.is_file():
        try:
            run.errors = pd.read_csv(errors, dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as exc:
            run.notes.append(f"errors.csv is not readable ({exc})")
    run.cka = _side_table(path / "cka.csv", CKA_COLUMNS, {"representation": str, "task": str, "layer_a": str,
                                                          "layer_b": str}, "CKA matrices", run.notes)
    # ties.csv is written by the demo and compare (musicrep.results.write_ties); absent elsewhere
    run.ties = _side_table(path / TIES_FILE, TIES_COLUMNS, {"representation": str, "task": str, "winner": str,
                                                             "status": str}, "the tie sentences", run.notes)
    return run


def _side_table(path: Path, columns: list[str], dtype: dict[str, type], what: str, notes: list[str]) -> pd.DataFrame | None:
    """An optional table beside ``results.csv``: ``None`` when absent; when unreadable or missing one of
    ``columns``, ``None`` and a note saying what the page leaves out."""
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, dtype=dtype)
    except (ValueError, pd.errors.ParserError) as exc:
        notes.append(f"{path.name} is not readable ({exc})")
        return None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        notes.append(f"{path.name} lacks the column(s) {', '.join(missing)}; {what} left out")
        return None
    return frame


def load_runs(paths: list[str | Path]) -> list[Run]:
    """:func:`load_run` for each folder, names made unique (``parent/name`` when two folders share a name).
    Raises :class:`ReportError` for an empty list or a folder given twice."""
    if not paths:
        raise ReportError("no run folder given; name at least one folder holding results.csv")
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise ReportError(f"a run folder is given twice: {', '.join(str(p) for p in paths)}; name each once")
    names = [p.name for p in resolved]
    unique = [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in resolved]
    return [load_run(p, n) for p, n in zip(paths, unique, strict=True)]

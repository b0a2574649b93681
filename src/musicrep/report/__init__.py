"""The report people look at: run folders → one self-contained HTML page + a markdown summary beside it.

Takes one or more run folders (``results.csv``, and where present ``config.resolved.yaml``,
``versions.json``, ``errors.csv``, ``cka.csv``); gives ``OUT.html`` and ``OUT.md``. The table is read only
through :mod:`musicrep.results` (``read_results``, ``leaderboard``), so the report ranks exactly as the
leaderboard does: seeds averaged, (layer, probe) chosen on validation, the test value and its CI shown.

- :mod:`~musicrep.report.runs` reads the folders (tolerating every missing side file);
- :mod:`~musicrep.report.views` turns rows into the tables each study is judged by;
- :mod:`~musicrep.report.plots` draws them with matplotlib (PNG bytes, no pyplot state);
- :mod:`~musicrep.report.page` lays out the HTML (figures as base64 ``data:`` PNGs, inline CSS, no
  script) and the markdown.

Why one file with everything inside: the page is mailed and archived; a page that needs a folder of
images or a CDN stops rendering once it travels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from musicrep.report.page import Page, build_page
from musicrep.report.runs import ReportError, Run, load_run, load_runs
from musicrep.util import atomic_path

__all__ = ["Page", "ReportError", "ReportFiles", "Run", "build_page", "load_run", "load_runs", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    """Where :func:`write_report` wrote the page and its summary, and how many figures the page holds."""

    html: Path
    markdown: Path
    n_figures: int


def write_report(run_dirs: list[str | os.PathLike[str]], out: str | os.PathLike[str]) -> ReportFiles:
    """Write the report on ``run_dirs`` to ``out`` (``.html``) and its markdown summary to the same stem + ``.md``.

    Raises :class:`ReportError` when ``out`` does not end in ``.html``/``.htm``, a folder or its
    ``results.csv`` is missing, or a folder is named twice.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"--out {out}: the report is an HTML page; give a path ending in .html, e.g. report.html")
    if out.is_dir():
        raise ReportError(f"--out {out} is a folder; give a file path such as {out / 'report.html'}")
    page = build_page(load_runs(list(run_dirs)))
    out.parent.mkdir(parents=True, exist_ok=True)
    md = out.with_suffix(".md")
    _write_atomic(out, page.html)
    _write_atomic(md, page.markdown)
    return ReportFiles(out, md, page.n_figures)


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, so a reader never sees half a page."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")

"""The report page: one self-contained HTML file and a markdown summary, built from run folders.

Takes :class:`~musicrep.report.runs.Run` objects; gives the HTML text (every figure a base64 ``data:``
PNG, the CSS inline, no script, no font or file from anywhere else, so it renders the same opened from a
mail attachment) and the markdown text (the same tables, no figures).

Sections: the clean leaderboard per task (table + bars with CI whiskers), then for each run and each study
present in its rows — layerwise (heat-map, CKA, best/weighted/last), robustness (curves, relative drop),
augmentation (score vs labelled budget), limited-data (score vs pretraining minutes) — then each run's
config, package versions and unreadable files in collapsible blocks.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd

from musicrep.metrics import primary_metric
from musicrep.results import seed_spread, tie_sentence
from musicrep.report import plots, views
from musicrep.report.runs import Run

__all__ = ["Page", "build_page"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2em auto;max-width:1100px;
padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.8em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.5em}table{border-collapse:collapse;margin:.6em 0 1em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f2f2f2}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr.best td{font-weight:600}
img{max-width:100%;height:auto;display:block;margin:.5em 0 1.2em}
details{margin:.4em 0;border:1px solid #ddd;border-radius:4px;padding:.3em .8em}summary{cursor:pointer;font-weight:600}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.85em}.note{color:#666;font-size:.9em}
nav ul{columns:2}code{background:#f2f2f2;padding:0 .2em}.scroll{overflow-x:auto;max-width:100%}
"""


@dataclass
class Page:
    """The report as HTML and markdown text, plus how many figures it embeds."""

    html: str
    markdown: str
    n_figures: int = 0


@dataclass
class _Builder:
    """Accumulates HTML and markdown side by side; ``toc`` holds (anchor, title) of the h2 sections."""

    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    toc: list[tuple[str, str]] = field(default_factory=list)
    n_figures: int = 0

    def section(self, anchor: str, title: str) -> None:
        self.toc.append((anchor, title))
        self.html.append(f'<h2 id="{_e(anchor)}">{_e(title)}</h2>')
        self.md.append(f"\n## {title}\n")

    def heading(self, title: str) -> None:
        self.html.append(f"<h3>{_e(title)}</h3>")
        self.md.append(f"\n### {title}\n")

    def note(self, text: str) -> None:
        self.html.append(f'<p class="note">{_e(text)}</p>')
        self.md.append(f"\n_{text}_\n")

    def figure(self, png: bytes, alt: str) -> None:
        data = base64.b64encode(png).decode("ascii")
        self.html.append(f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">')
        self.n_figures += 1

    def table(self, frame: pd.DataFrame, numeric: tuple[str, ...] = (), best_first: bool = False) -> None:
        """Both forms of a table of text cells (already formatted); ``numeric`` columns right-aligned."""
        head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
        body = []
        for i, row in enumerate(frame.itertuples(index=False)):
            cells = "".join(f'<td class="num">{_e(v)}</td>' if c in numeric else f"<td>{_e(v)}</td>"
                            for c, v in zip(frame.columns, row, strict=True))
            body.append(f'<tr class="best">{cells}</tr>' if best_first and i == 0 else f"<tr>{cells}</tr>")
        self.html.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                         f"<tbody>{''.join(body)}</tbody></table></div>")
        self.md.append("\n| " + " | ".join(map(str, frame.columns)) + " |\n|" + "---|" * len(frame.columns) + "\n"
                       + "".join("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |\n"
                                 for row in frame.itertuples(index=False)))


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(v: object, digits: int = 3) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):.{digits}f}"


def _ci(lo: object, hi: object) -> str:
    return "—" if pd.isna(lo) or pd.isna(hi) else f"[{float(lo):.3f}, {float(hi):.3f}]"


def _metric(rows: pd.DataFrame) -> str:
    """The primary metric's name for the task kind of ``rows``."""
    kind = rows["kind"].dropna()
    return primary_metric(str(kind.iloc[0])).name if len(kind) else str(rows["metric"].iloc[0])


def _anchor(*parts: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else "-" for ch in p.lower()) for p in parts)


def build_page(runs: list[Run]) -> Page:
    """The report on ``runs`` (see the module docstring for its sections)."""
    from musicrep import __version__

    b = _Builder()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    _runs_overview(b, runs)
    _leaderboard(b, runs)
    for run in runs:
        for study in views.studies_present(run.results):
            draw = _STUDY_SECTIONS.get(study)
            if draw is not None:
                draw(b, run, len(runs) > 1)
    _provenance(b, runs)

    toc = "".join(f'<li><a href="#{_e(a)}">{_e(t)}</a></li>' for a, t in b.toc)
    title = "musicrep report — " + ", ".join(r.name for r in runs)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1><p class=\"note\">made {stamp} by musicrep {_e(__version__)}. Every number is "
            "the test-split value of the layer and probe chosen on the validation split (mean over seeds), "
            "with its bootstrap 95 % confidence interval.</p>"
            f"<nav><strong>Contents</strong><ul>{toc}</ul></nav>" + "\n".join(b.html) + "</body></html>\n")
    md = (f"# {title}\n\n_made {stamp} by musicrep {__version__}; figures are in the HTML report beside this file. "
          "Every number is the test value of the layer and probe chosen on validation (mean over seeds), "
          "with its bootstrap 95 % CI._\n" + "".join(b.md))
    return Page(page, md, b.n_figures)


# ----------------------------------------------------------------------------------------------- sections
def _runs_overview(b: _Builder, runs: list[Run]) -> None:
    b.section("runs", "Runs")
    rows = []
    for r in runs:
        studies = views.studies_present(r.results)
        rows.append({"run": r.name, "folder": str(r.path), "rows": len(r.results),
                     "studies": ", ".join(studies) or "—",
                     "tasks": ", ".join(sorted(map(str, r.results["task"].dropna().unique()))) or "—",
                     "representations": str(r.results["representation"].nunique()),
                     "notes": "; ".join(r.notes) or "—"})
    b.table(pd.DataFrame(rows), numeric=("rows", "representations"))


def _entry_labels(board: pd.DataFrame) -> pd.Series:
    """Bar/row labels for a task's leaderboard: the representation, plus the pretraining budget, study
    and run wherever they are needed to tell two entries apart."""
    label = board["representation"].astype(str)
    if board["budget_minutes"].notna().any():
        label = label + board["budget_minutes"].map(lambda m: "" if pd.isna(m) else f" @ {float(m):g} min")
    if (board.groupby(["run", "representation"])["study"].transform("nunique") > 1).any():
        label = label + " [" + board["study"].astype(str) + "]"
    if board["run"].nunique() > 1:
        label = label + " (" + board["run"].astype(str) + ")"
    return label


def _leaderboard(b: _Builder, runs: list[Run]) -> None:
    b.section("leaderboard", "Leaderboard (clean audio, every labelled item)")
    parts = [views.leaderboard_view(r.results).assign(run=r.name) for r in runs]
    parts = [p for p in parts if len(p)]
    if not parts:
        b.note("No clean rows with a validation score in these runs, so there is nothing to rank.")
        return
    board = pd.concat(parts, ignore_index=True)
    for task, g in board.groupby("task", sort=True):
        g = g.sort_values("value", ascending=False).reset_index(drop=True)
        metric = _metric(g)
        g = g.assign(label=_entry_labels(g))
        b.heading(f"{task} — {metric}")
        b.table(pd.DataFrame({
            "rank": range(1, len(g) + 1), "representation": g["label"], "probe": g["probe"], "layer": g["layer"],
            f"{metric} (test)": g["value"].map(_num), "95 % CI": [_ci(lo, hi) for lo, hi in zip(g["ci_low"], g["ci_high"])],
            "valid": g["valid_value"].map(_num), "seeds: min–max": [seed_spread(r) for _, r in g.iterrows()],
        }), numeric=("rank", f"{metric} (test)", "valid", "seeds: min–max"), best_first=True)
        for r in runs:  # the demo's sentence: winner, CI, seed spread and what is tied with it
            if r.ties is not None and (r.ties["task"] == task).any():
                prefix = f"run {r.name}: " if len(runs) > 1 else ""
                b.note(prefix + tie_sentence(r.ties[r.ties["task"] == task]))
        b.figure(plots.leaderboard_figure(g, str(task), metric), f"leaderboard bars for {task}")


def _section_title(name: str, run: Run, several: bool) -> tuple[str, str]:
    return _anchor(name, run.name), f"{name}" + (f" — run {run.name}" if several else "")


def _layerwise(b: _Builder, run: Run, several: bool) -> None:
    rows = run.results[run.results["study"] == "layerwise"]
    b.section(*_section_title("Layer-wise", run, several))
    scores = views.layer_scores(rows)
    comp = views.layer_comparison(rows)
    if scores.empty:
        b.note("No single-layer rows with a validation score in this study.")
    for task, g in scores.groupby("task", sort=True):
        metric = _metric(g)
        best = comp[(comp["task"] == task) & (comp["choice"] == "best single")]
        b.heading(f"{task} — {metric} of every layer")
        b.figure(plots.layer_heatmap(g, best, str(task), metric), f"layer heat-map for {task}")
    if run.cka is not None and len(run.cka):
        b.heading("Layer-to-layer similarity (linear CKA)")
        b.figure(plots.cka_figure(run.cka), "linear CKA matrices")
    elif run.cka is None:
        b.note("No cka.csv in this run folder, so no layer-similarity matrices.")
    if comp.empty:
        return
    for task, g in comp.groupby("task", sort=True):
        metric = _metric(rows[rows["task"] == task])
        b.heading(f"{task} — best single layer vs learned weighted sum vs last layer")
        table = []
        for rep, rg in g.groupby("representation", sort=True):
            by = {r.choice: r for r in rg.itertuples()}
            cell = {c: (f"{_num(by[c].value)} {_ci(by[c].ci_low, by[c].ci_high)}" if c in by else "—")
                    for c in ("best single", "weighted", "last")}
            table.append({"representation": rep,
                          "best single layer (chosen on valid)": by["best single"].layer if "best single" in by else "—",
                          f"best single {metric}": cell["best single"], f"weighted sum {metric}": cell["weighted"],
                          "last layer": by["last"].layer if "last" in by else "—", f"last {metric}": cell["last"]})
        b.table(pd.DataFrame(table))
        b.figure(plots.layer_comparison_figure(g, str(task), metric), f"layer choice comparison for {task}")


def _robustness(b: _Builder, run: Run, several: bool) -> None:
    b.section(*_section_title("Robustness", run, several))
    view = views.robustness_view(run.results)
    if view.empty:
        b.note("No robustness rows with a validation score.")
        return
    for task, g in view.groupby("task", sort=True):
        metric = _metric(g)
        b.heading(f"{task} — {metric} vs severity")
        b.figure(plots.robustness_figure(g, str(task), metric), f"robustness curves for {task}")
        deformed = g[g["deformation"] != views.CLEAN]
        if deformed.empty:
            continue
        b.note(f"{metric} (test) on deformed audio and, in brackets, its relative change vs clean audio, "
               f"(value − clean) / |clean| in %: negative is a loss. One table per training condition; the first "
               f"row is the clean {metric}.")
        order = views.deformation_order(deformed)
        reps = sorted(g["representation"].unique())
        for train in sorted(g["train_deformation"].unique(), key=lambda t: (t != views.CLEAN, t)):  # clean first
            tg = g[g["train_deformation"] == train]
            first = "test audio (probes trained on " + ("clean audio" if train == views.CLEAN else train) + ")"
            clean = tg.drop_duplicates("representation").set_index("representation")["clean"]
            table = [{first: f"clean {metric}", **{r: _num(clean.get(r)) for r in reps}}]
            by = tg.drop_duplicates(["deformation", "representation"]).set_index(["deformation", "representation"])
            for d in order:
                table.append({first: d, **{r: _score_and_change(by, d, r) for r in reps}})
            b.table(pd.DataFrame(table), numeric=tuple(reps))


def _score_and_change(by: pd.DataFrame, deformation: str, rep: str) -> str:
    """``0.512 (-12.3 %)``: a robustness cell (the change left out where there is no clean score)."""
    if (deformation, rep) not in by.index:
        return "—"
    r = by.loc[(deformation, rep)]
    change = "" if pd.isna(r["drop"]) else f" ({-100 * float(r['drop']):+.1f} %)"
    return f"{_num(r['value'])}{change}"


def _augmentation(b: _Builder, run: Run, several: bool) -> None:
    b.section(*_section_title("Augmentation", run, several))
    view = views.augmentation_view(run.results)
    if view.empty:
        b.note("No augmentation rows with a validation score.")
        return
    for task, g in view.groupby("task", sort=True):
        metric = _metric(g)
        b.heading(f"{task} — {metric} vs labelled budget")
        b.figure(plots.augmentation_figure(g, str(task), metric), f"augmentation curves for {task}")
        budgets = sorted(g["labelled_per_class"].dropna().astype(float).unique())
        columns = [f"{v:g}" for v in budgets] + (["all"] if g["labelled_per_class"].isna().any() else [])
        table = []
        for (rep, frac, weight), sg in g.groupby(["representation", "augment_fraction", "sample_weight"], sort=True):
            row = {"representation": rep, "augmented share": f"{float(frac):.0%}", "sample weight": _num(weight, 2)}
            row.update(dict.fromkeys(columns, "—"))
            for r in sg.itertuples():
                col = "all" if pd.isna(r.labelled_per_class) else f"{float(r.labelled_per_class):g}"
                row[col] = f"{_num(r.value)} {_ci(r.ci_low, r.ci_high)}"
            table.append(row)
        b.note(f"{metric} (test) [95 % CI] by labelled items per class (columns; all = every labelled item).")
        b.table(pd.DataFrame(table), numeric=tuple(columns))


#: Line order of the fine-tune figure: fine-tuning variants first, then the frozen methods.
_FROZEN_METHODS = ["probe", "knn"]


def _finetune(b: _Builder, run: Run, several: bool) -> None:
    b.section(*_section_title("Fine-tuning", run, several))
    view = views.finetune_view(run.results)
    if view.empty:
        b.note("No fine-tune rows with a validation score.")
        return
    view = view.assign(line=view["method"].astype(str))
    for task, g in view.groupby("task", sort=True):
        metric = _metric(g)
        tuned = sorted(m for m in g["line"].unique() if m not in _FROZEN_METHODS)
        lines = tuned + [m for m in _FROZEN_METHODS if m in set(g["line"])]
        b.heading(f"{task} — {metric} vs labelled budget, per method")
        b.figure(plots.budget_figure(g, lines, f"Fine-tuning — {task}: fine-tuned head vs frozen probe vs kNN "
                                     "(bands: 95 % CI)", metric), f"fine-tuning curves for {task}")
        budgets = sorted(g["labelled_per_class"].dropna().astype(float).unique())
        columns = [f"{v:g}" for v in budgets] + (["all"] if g["labelled_per_class"].isna().any() else [])
        table = []
        for (rep, method), sg in g.groupby(["representation", "line"], sort=True):
            row = {"representation": rep, "method": method, **dict.fromkeys(columns, "—")}
            for r in sg.itertuples():
                col = "all" if pd.isna(r.labelled_per_class) else f"{float(r.labelled_per_class):g}"
                row[col] = f"{_num(r.value)} {_ci(r.ci_low, r.ci_high)}"
            table.append(row)
        b.note(f"{metric} (test) [95 % CI] by labelled items per class (columns; all = every labelled item). "
               "probe: the better of linear / MLP on validation; finetune-*: the model's own head.")
        b.table(pd.DataFrame(table), numeric=tuple(columns))


def _limited_data(b: _Builder, run: Run, several: bool) -> None:
    b.section(*_section_title("Limited data", run, several))
    curves, baselines = views.limited_data_view(run.results)
    if curves.empty:
        b.note("No limited-data rows with a pretraining budget and a validation score.")
        return
    ratios = views.curve_ratios(curves)
    for task, g in curves.groupby("task", sort=True):
        metric = str(g["metric"].iloc[0])
        b.heading(f"{task} — {metric} vs pretraining minutes")
        b.figure(plots.limited_data_figure(g, baselines[baselines["task"] == task], str(task), metric),
                 f"limited-data learning curves for {task}")
        r = ratios[ratios["task"] == task] if len(ratios) else ratios
        if len(r):
            b.note("How close the smallest budget and the untrained twin come to the largest budget (ratio of "
                   "test scores; 1.0 = as good).")
            b.table(pd.DataFrame({
                "curve": [f"{rep} ({d}), {p}" for rep, d, p in zip(r["representation"], r["pretrain_data"],
                                                                    r["probe"], strict=True)],
                "random twin": r["twin"].map(_num),
                "smallest budget": [f"{_num(v)} @ {m:g} min" for v, m in zip(r["smallest"], r["smallest_minutes"],
                                                                              strict=True)],
                "largest budget": [f"{_num(v)} @ {m:g} min" for v, m in zip(r["largest"], r["largest_minutes"],
                                                                             strict=True)],
                "smallest / largest": r["smallest_over_largest"].map(_num),
                "twin / largest": r["twin_over_largest"].map(_num),
            }), numeric=("random twin", "smallest / largest", "twin / largest"))
        g = g.sort_values(["representation", "pretrain_data", "probe", "budget_minutes"])
        b.table(pd.DataFrame({
            "representation": g["representation"], "pretrained on": g["pretrain_data"], "probe": g["probe"],
            "pretraining minutes": g["budget_minutes"].map(lambda v: _num(v, 0)),
            f"{metric} (test, mean over seeds)": g["value"].map(_num),
            "95 % CI band": [_ci(lo, hi) for lo, hi in zip(g["ci_low"], g["ci_high"], strict=True)],
            "seeds": g["seeds"].astype(int).astype(str),
        }), numeric=("pretraining minutes", f"{metric} (test, mean over seeds)", "seeds"))


#: What each study adds to the page (``evaluate`` rows appear in the leaderboard only).
_STUDY_SECTIONS = {"layerwise": _layerwise, "robustness": _robustness, "augmentation": _augmentation,
                   "limited-data": _limited_data, "finetune": _finetune}


def _provenance(b: _Builder, runs: list[Run]) -> None:
    b.section("provenance", "Configs and package versions")
    for r in runs:
        b.heading(f"run {r.name}")
        blocks = [f"<p class=\"note\">folder: <code>{_e(r.path)}</code></p>"]
        md = [f"- folder: `{r.path}`"]
        if r.config_text is not None:
            blocks.append(f"<details><summary>config.resolved.yaml</summary><pre>{_e(r.config_text)}</pre></details>")
        if r.versions is not None:
            rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in r.versions.items())
            blocks.append(f"<details><summary>package versions (versions.json)</summary><table><thead><tr>"
                          f"<th>package</th><th>version</th></tr></thead><tbody>{rows}</tbody></table></details>")
            md.append("- versions: " + ", ".join(f"{k} {v}" for k, v in r.versions.items()))
        if r.errors is not None and len(r.errors):
            blocks.append(f"<details><summary>{len(r.errors)} problem(s) recorded in errors.csv (unreadable files, "
                          f"classes without training items)</summary>"
                          f"<pre>{_e(r.errors.to_csv(index=False))}</pre></details>")
            md.append(f"- {len(r.errors)} problem(s) recorded in errors.csv (unreadable files, classes without "
                      "training items)")
        for n in r.notes:
            blocks.append(f'<p class="note">{_e(n)}</p>')
            md.append(f"- {n}")
        b.html.append("\n".join(blocks))
        b.md.append("\n" + "\n".join(md) + "\n")

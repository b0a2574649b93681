"""The report's figures: matplotlib drawings of the views in :mod:`musicrep.report.views`, as PNG bytes.

Takes the view frames; gives ``bytes`` of a PNG per figure (the page embeds them as ``data:`` URIs).
Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``, so making a
report neither needs nor changes a global backend and leaves no figure open.

Conventions: the y axis (or colour) is the task's primary metric on the test split, named on the axis;
error bars and bands are the bootstrap 95 % CI averaged over seeds (absent where the CI is NaN, e.g. with
``bootstrap: 0``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from musicrep.report.views import CLEAN, deformation_order, layer_index

__all__ = [
    "augmentation_figure",
    "cka_figure",
    "layer_comparison_figure",
    "layer_heatmap",
    "leaderboard_figure",
    "limited_data_figure",
    "robustness_figure",
]

_DPI = 100
#: Units of the severity parameters of :mod:`musicrep.augment` (for axis labels).
_UNITS: dict[str, str] = {"snr": "SNR, dB", "kbps": "bitrate, kbit/s", "semitones": "semitones", "db": "gain, dB",
                          "room": "room size 0–1", "rate": "stretch rate", "drive_db": "drive, dB",
                          "threshold_db": "threshold, dB", "low_db": "low shelf, dB"}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def _err(values: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    """``[2, n]`` whisker lengths below/above each value; NaN where the CI is NaN (matplotlib then draws none)."""
    v = values.to_numpy(dtype=float)
    lo = (v - low.to_numpy(dtype=float)).clip(min=0)
    hi = (high.to_numpy(dtype=float) - v).clip(min=0)
    return np.vstack([lo, hi])


def _grid(n: int, ncols: int, width: float, height: float) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _colours(labels: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


def leaderboard_figure(board: pd.DataFrame, task: str, metric: str) -> bytes:
    """Horizontal bars, one per entry of ``board`` (columns ``label``, ``value``, ``ci_low``, ``ci_high``),
    best at the top, with 95 % CI whiskers."""
    board = board.sort_values("value", ascending=True)
    fig = Figure(figsize=(8, 1.2 + 0.42 * len(board)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(board))
    ax.barh(y, board["value"].to_numpy(dtype=float), xerr=_err(board["value"], board["ci_low"], board["ci_high"]),
            color="#4c78a8", ecolor="#222222", capsize=3, height=0.65)
    ax.set_yticks(y, board["label"].tolist())
    ax.set_xlabel(f"{metric} (test split; whiskers: 95 % CI)")
    ax.set_title(f"Leaderboard — {task}")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def layer_heatmap(scores: pd.DataFrame, best: pd.DataFrame, task: str, metric: str) -> bytes:
    """Representation × layer index heat-map of the test value; the layer chosen on validation per
    representation (``best``: columns ``representation``, ``layer``) is outlined. Grey = no such layer."""
    reps = sorted(scores["representation"].unique())
    n_layers = int(scores["layer_index"].max()) + 1
    grid = np.full((len(reps), n_layers), np.nan)
    for r in scores.itertuples():
        grid[reps.index(r.representation), int(r.layer_index)] = float(r.value)
    fig = Figure(figsize=(max(7.0, 2.4 + 0.85 * n_layers), 1.8 + 0.65 * len(reps)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_facecolor("#dddddd")
    im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis")
    fig.colorbar(im, ax=ax, label=f"{metric} (test)")
    if len(reps) * n_layers <= 300:
        finite = grid[np.isfinite(grid)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if v > mid else "white")
    for r in best.itertuples():
        j = layer_index(r.layer)
        if j is not None and r.representation in reps:
            ax.add_patch(_outline(j, reps.index(r.representation)))
    ax.set_xticks(range(n_layers), [str(i) for i in range(n_layers)])
    ax.set_yticks(range(len(reps)), reps)
    ax.set_xlabel("layer index (0 = closest to the input); outlined: layer chosen on validation")
    ax.set_title(f"Score of every layer — {task}")
    return _png(fig)


def _outline(x: int, y: int):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2)


def cka_figure(cka: pd.DataFrame) -> bytes:
    """One linear-CKA matrix (layer × layer, 0–1) per (representation, task) of ``cka.csv``'s rows."""
    groups = list(cka.groupby(["representation", "task"], sort=True))
    fig, axes = _grid(len(groups), 3, 4.0, 3.6)
    im = None
    for ax, ((rep, task), g) in zip(axes, groups, strict=True):
        names = sorted(set(g["layer_a"]) | set(g["layer_b"]),
                       key=lambda s: (layer_index(s) is None, layer_index(s) or 0, s))
        m = np.full((len(names), len(names)), np.nan)
        for r in g.itertuples():
            i, j = names.index(r.layer_a), names.index(r.layer_b)
            m[i, j] = m[j, i] = float(r.cka)
        im = ax.imshow(np.ma.masked_invalid(m), vmin=0, vmax=1, cmap="magma")
        ticks = [str(layer_index(n)) if layer_index(n) is not None else n for n in names]
        ax.set_xticks(range(len(names)), ticks, fontsize=7)
        ax.set_yticks(range(len(names)), ticks, fontsize=7)
        ax.set_xlabel("layer index")
        ax.set_ylabel("layer index")
        ax.set_title(f"{rep} — on {task}", fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=axes, label="linear CKA (0–1)", shrink=0.8)
    fig.suptitle("Layer-to-layer similarity (linear CKA)")
    return _png(fig)


def layer_comparison_figure(comp: pd.DataFrame, task: str, metric: str) -> bytes:
    """Grouped bars per representation: best single layer, learned weighted sum, last layer, with CIs."""
    reps = sorted(comp["representation"].unique())
    choices = ["best single", "weighted", "last"]
    colours = {"best single": "#4c78a8", "weighted": "#f58518", "last": "#54a24b"}
    fig = Figure(figsize=(max(6.0, 1.5 + 1.4 * len(reps)), 4.2), layout="constrained")
    ax = fig.add_subplot()
    width = 0.26
    for k, choice in enumerate(choices):
        sub = comp[comp["choice"] == choice].set_index("representation").reindex(reps)
        x = np.arange(len(reps)) + (k - 1) * width
        ax.bar(x, sub["value"].to_numpy(dtype=float), width, yerr=_err(sub["value"], sub["ci_low"], sub["ci_high"]),
               label=choice, color=colours[choice], ecolor="#222222", capsize=3)
    ax.set_xticks(range(len(reps)), reps, rotation=20 if len(reps) > 4 else 0, ha="right" if len(reps) > 4 else "center")
    ax.set_ylabel(f"{metric} (test; whiskers: 95 % CI)")
    ax.set_title(f"Best single layer vs learned weighted sum vs last layer — {task}")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _band(ax, x: np.ndarray, sub: pd.DataFrame, colour, style: str, label: str) -> None:
    ax.plot(x, sub["value"].to_numpy(dtype=float), style, color=colour, label=label, marker="o", markersize=4)
    lo, hi = sub["ci_low"].to_numpy(dtype=float), sub["ci_high"].to_numpy(dtype=float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        ax.fill_between(x, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), color=colour, alpha=0.18, linewidth=0)


def robustness_figure(view: pd.DataFrame, task: str, metric: str) -> bytes:
    """Score vs severity, one panel per deformation family; a line per representation (dashed: probes
    trained on augmented audio) with its 95 % CI band. The leftmost point of every panel is clean audio."""
    families = sorted(f for f in view["family"].unique() if f != CLEAN)
    reps = sorted(view["representation"].unique())
    colours = _colours(reps)
    fig, axes = _grid(max(1, len(families)), 2, 5.2, 3.8)
    for ax, family in zip(axes, families, strict=False):
        fam = view[view["family"] == family]
        param = fam["param"].dropna().iloc[0] if fam["param"].notna().any() else None
        cats = deformation_order(fam)  # this family's deformations, mild → harsh
        sev = dict(zip(fam["deformation"], fam["severity"], strict=False))
        labels = ["clean"] + [f"{sev[d]:g}" if not pd.isna(sev[d]) else d.partition("@")[2] or d for d in cats]
        pos_of = {CLEAN: 0.0, **{d: float(i + 1) for i, d in enumerate(cats)}}
        lines = view[view["deformation"].isin(pos_of)]
        for (rep, train), g in lines.groupby(["representation", "train_deformation"], sort=True):
            if (g["deformation"] == CLEAN).all():
                continue
            g = g.assign(pos=g["deformation"].map(pos_of)).sort_values("pos")
            style = "-" if train == CLEAN else "--"
            label = rep if train == CLEAN else f"{rep} (trained on {train})"
            _band(ax, g["pos"].to_numpy(dtype=float), g, colours[rep], style, label)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(f"{_UNITS.get(param or '', param or 'setting')} (milder → harsher)")
        ax.set_ylabel(f"{metric} (test)")
        ax.set_title(family)
        ax.grid(alpha=0.3)
    if not families:
        axes[0].text(0.5, 0.5, "only clean rows", ha="center", va="center", transform=axes[0].transAxes)
    _shared_legend(fig, axes)
    fig.suptitle(f"Robustness — {task}: score vs severity (bands: 95 % CI)")
    return _png(fig)


def _shared_legend(fig: Any, axes: Any) -> None:
    """One legend below the panels with every line's label once (panels share colours by label)."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(2, len(labels)), fontsize=9)


def _all_position(budgets: pd.Series) -> float:
    """Where "all labelled items" (NaN) sits on a log axis: twice the largest numeric budget."""
    numeric = budgets.dropna()
    return float(numeric.max()) * 2 if len(numeric) else 1.0


def augmentation_figure(view: pd.DataFrame, task: str, metric: str) -> bytes:
    """Score vs labelled items per class (log x; "all" at the right end), one panel per representation,
    a line per (augmented share, sample weight) setting with its 95 % CI band."""
    view = view.assign(augment_fraction=view["augment_fraction"].astype(float).fillna(0),
                       sample_weight=view["sample_weight"].astype(float).fillna(1))
    settings = sorted(set(zip(view["augment_fraction"], view["sample_weight"], strict=True)))
    names = {s: ("no augmentation" if s[0] == 0 else f"{s[0]:.0%} augmented, weight {s[1]:g}") for s in settings}
    line = [names[s] for s in zip(view["augment_fraction"], view["sample_weight"], strict=True)]
    return budget_figure(view.assign(line=line), [names[s] for s in settings],
                         f"Augmentation — {task}: score vs labelled budget (bands: 95 % CI)", metric)


def budget_figure(view: pd.DataFrame, lines: Sequence[str], title: str, metric: str) -> bytes:
    """Score vs labelled items per class (log x; "all" — NaN — at the right end), one panel per
    representation, one line per value of ``view["line"]`` (in the order of ``lines``) with its 95 % CI band."""
    reps = sorted(view["representation"].unique())
    colours = _colours(list(lines))
    all_x = _all_position(view["labelled_per_class"].astype(float))
    fig, axes = _grid(len(reps), 2, 5.2, 3.9)
    for ax, rep in zip(axes, reps, strict=True):
        for name in lines:
            g = view[(view["representation"] == rep) & (view["line"] == name)]
            if g.empty:
                continue
            x = g["labelled_per_class"].astype(float).fillna(all_x)
            g = g.assign(x=x).sort_values("x")
            _band(ax, g["x"].to_numpy(dtype=float), g, colours[name], "-", name)
        ax.set_xscale("log")
        ticks = sorted(view["labelled_per_class"].dropna().astype(float).unique().tolist())
        has_all = view["labelled_per_class"].isna().any()
        ax.set_xticks(ticks + ([all_x] if has_all else []), [f"{t:g}" for t in ticks] + (["all"] if has_all else []))
        ax.minorticks_off()
        ax.set_xlabel("labelled items per class (log scale)")
        ax.set_ylabel(f"{metric} (test)")
        ax.set_title(rep)
        ax.grid(alpha=0.3)
    _shared_legend(fig, axes)
    fig.suptitle(title)
    return _png(fig)


def limited_data_figure(curves: pd.DataFrame, baselines: pd.DataFrame, task: str, metric: str) -> bytes:
    """Score vs pretraining minutes (log x), one panel per probe; a line per curve (representation ×
    pretraining data) with its band over pretraining seeds (:func:`~musicrep.report.views.limited_data_view`),
    the random-init twin (0 minutes) as the leftmost point, and baselines as dashed horizontal lines."""
    probes = sorted(set(curves["probe"]) | set(baselines["probe"]))
    names = sorted({f"{r} ({d})" for r, d in zip(curves["representation"], curves["pretrain_data"], strict=True)})
    base_names = sorted(set(baselines["representation"]))
    colours = _colours(names + base_names)
    positive = curves.loc[curves["budget_minutes"] > 0, "budget_minutes"]
    zero_at = float(positive.min()) / 2.5 if len(positive) else 1.0  # where "0 (random init)" sits on the log axis
    fig, axes = _grid(max(1, len(probes)), 2, 5.4, 4.0)
    for ax, probe in zip(axes, probes, strict=False):
        sub = curves[curves["probe"] == probe]
        for (rep, data), g in sub.groupby(["representation", "pretrain_data"], sort=True):
            g = g.sort_values("budget_minutes")
            x = g["budget_minutes"].to_numpy(dtype=float)
            _band(ax, np.where(x > 0, x, zero_at), g, colours[f"{rep} ({data})"], "-", f"{rep} ({data})")
        for _, r in baselines[baselines["probe"] == probe].iterrows():
            ax.axhline(float(r["value"]), color=colours[str(r["representation"])], linestyle="--", linewidth=1.2,
                       label=f"{r['representation']} (no pretraining)")
        ax.set_xscale("log")
        ticks = sorted(set(positive.tolist()))
        if (sub["budget_minutes"] == 0).any():
            ax.set_xticks([zero_at, *ticks], ["0\n(random)", *[f"{t:g}" for t in ticks]])
        elif ticks:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("pretraining audio (minutes, log scale)")
        ax.set_ylabel(f"{metric} (test)")
        ax.set_title(f"{probe} probe")
        ax.grid(alpha=0.3)
    if not probes:
        axes[0].text(0.5, 0.5, "no learning-curve rows", ha="center", va="center", transform=axes[0].transAxes)
    _shared_legend(fig, axes)
    fig.suptitle(f"Limited data — {task}: score vs pretraining minutes (bands: 95 % CI over every pretraining seed)")
    return _png(fig)

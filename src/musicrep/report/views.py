"""The tables a report shows, each a view of one run's results table.

Takes the rows of ``results.csv`` (:data:`musicrep.results.RESULT_COLUMNS`); gives small tidy frames,
one row per bar, cell or curve point. Every view goes through :func:`musicrep.results.leaderboard`, so
the selection rule is the leaderboard's everywhere: seeds averaged first, then the (layer, probe) with
the best mean validation score, and its *test* value and CI reported — never chosen by test score.

Deformation strings (:mod:`musicrep.augment`'s canonical form, ``noise:pink@snr=10``) are read here as
text: the family is the part before ``@``, the severity the first numeric parameter. ``none`` is the
clean point.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from musicrep.results import leaderboard

__all__ = [
    "CLEAN",
    "CURVE_KEYS",
    "STUDIES",
    "curve_ratios",
    "augmentation_view",
    "clean_rows",
    "deformation_family",
    "deformation_order",
    "deformation_severity",
    "layer_comparison",
    "layer_index",
    "layer_scores",
    "leaderboard_view",
    "limited_data_view",
    "robustness_view",
    "severity_order",
    "studies_present",
]

#: The study names the report draws, in the order of its sections (``results.csv``'s ``study`` column).
STUDIES: tuple[str, ...] = ("evaluate", "layerwise", "robustness", "augmentation", "limited-data")
#: The ``deformation`` of clean audio.
CLEAN = "none"
#: The value of a severity parameter that means "untouched" (SNR and bitrate: infinite; stretch: rate 1);
#: severities are ordered by their distance from it. Any other parameter is clean at 0 (dB, semitones, room).
_CLEAN_VALUE: dict[str, float] = {"snr": math.inf, "kbps": math.inf, "rate": 1.0}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def studies_present(results: pd.DataFrame) -> list[str]:
    """The studies with rows in ``results``: known ones in :data:`STUDIES` order, then any others."""
    present = [str(s) for s in results["study"].dropna().unique()] if len(results) else []
    return [s for s in STUDIES if s in present] + sorted(s for s in present if s not in STUDIES)


def clean_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows measured under the clean condition: clean test and training audio, every labelled item, no
    augmented copies (whatever the study and the pretraining budget)."""
    if results.empty:
        return results
    keep = ((results["deformation"] == CLEAN) & (results["train_deformation"] == CLEAN)
            & results["labelled_per_class"].isna() & (results["augment_fraction"].fillna(0) == 0))
    return results[keep]


def _board(rows: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard of ``rows``, always with the leaderboard's columns (empty when nothing is ranked)."""
    board = leaderboard(rows) if len(rows) else pd.DataFrame()
    if board.empty:
        return pd.DataFrame(columns=[*rows.columns, "seeds", "value_min", "value_max"])
    return board


def leaderboard_view(results: pd.DataFrame) -> pd.DataFrame:
    """The clean leaderboard: per task, representation, study and pretraining budget, the (layer, probe)
    chosen on validation, with its test value, 95 % CI, validation value and seed count."""
    return _board(clean_rows(results))


def layer_index(layer: object) -> int | None:
    """``"3:conv4"`` → 3; ``"weighted"``, ``"all"``, NaN → None (not a single layer)."""
    head = str(layer).split(":", 1)[0]
    return int(head) if head.isdigit() else None


def layer_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Per task, representation and single layer: the probe chosen on validation *within that layer*,
    with its test value and CI. Adds ``layer_index`` (int). Empty when no row names a single layer."""
    rows = clean_rows(results)
    if rows.empty:
        return pd.DataFrame(columns=[*results.columns, "seeds", "layer_index"])
    index = rows["layer"].map(layer_index)
    parts = [_board(rows[index == i]) for i in sorted(index.dropna().unique())]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=[*results.columns, "seeds", "layer_index"])
    out = pd.concat(parts, ignore_index=True)
    out["layer_index"] = out["layer"].map(layer_index).astype(int)
    return out.sort_values(["task", "representation", "layer_index"]).reset_index(drop=True)


def layer_comparison(results: pd.DataFrame) -> pd.DataFrame:
    """Per task and representation: the best single layer (chosen on validation), the learned weighted
    sum (``layer == "weighted"``) and the last layer (the highest index present), each with its probe
    chosen on validation. Column ``choice`` is ``best single`` | ``weighted`` | ``last``."""
    rows = clean_rows(results)
    cols = ["task", "representation", "choice", "layer", "probe", "metric", "value", "ci_low", "ci_high",
            "valid_value", "seeds"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    index = rows["layer"].map(layer_index)
    single = rows[index.notna()]
    last_index = index[index.notna()].groupby([single["task"], single["representation"]]).transform("max")
    parts = []
    for choice, subset in (("best single", single), ("weighted", rows[rows["layer"] == "weighted"]),
                           ("last", single[index[index.notna()] == last_index])):
        board = _board(subset)
        if len(board):
            parts.append(board.assign(choice=choice))
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    order = {"best single": 0, "weighted": 1, "last": 2}
    out = out.sort_values(["task", "representation", "choice"], key=lambda s: s.map(order) if s.name == "choice"
                          else s).reset_index(drop=True)
    return out[cols]


def deformation_family(deformation: str) -> str:
    """``"noise:pink@snr=10"`` → ``"noise:pink"``; ``"none"`` → ``"none"``."""
    return str(deformation).split("@", 1)[0]


def deformation_severity(deformation: str) -> tuple[str | None, float | None]:
    """``"noise:pink@snr=10"`` → ``("snr", 10.0)``: the first numeric parameter; ``(None, None)`` for
    ``none`` or a deformation without a numeric parameter."""
    _, _, tail = str(deformation).partition("@")
    for part in tail.split(","):
        key, _, value = part.partition("=")
        if _NUMBER.match(value.strip()):
            return key.strip(), float(value)
    return None, None


def severity_order(param: str | None, values: list[float]) -> list[float]:
    """``values`` ordered from mild to severe: by distance from the parameter's clean value (SNR 30 before
    SNR 0, 128 kbit/s before 32, ±1 semitone before ±2), ties by value."""
    clean = _CLEAN_VALUE.get(param or "", 0.0)

    def distance(v: float) -> float:
        return -v if math.isinf(clean) else abs(v - clean)

    return sorted(set(values), key=lambda v: (distance(v), v))


def deformation_order(rows: pd.DataFrame) -> list[str]:
    """The distinct deformation strings of ``rows`` (a :func:`robustness_view` frame, ``none`` excluded),
    by family, then mild → harsh (:func:`severity_order`); ones without a numeric severity last, by text."""
    out: list[str] = []
    rows = rows[rows["deformation"] != CLEAN].drop_duplicates("deformation")
    for _, fam in rows.groupby("family", sort=True):
        param = fam["param"].dropna().iloc[0] if fam["param"].notna().any() else None
        order = severity_order(param, fam["severity"].dropna().tolist())
        rank = {d: (order.index(v), d) if not pd.isna(v) else (len(order), d)
                for d, v in zip(fam["deformation"], fam["severity"], strict=True)}
        out += sorted(rank, key=rank.__getitem__)
    return out


def robustness_view(results: pd.DataFrame) -> pd.DataFrame:
    """Per task, representation, training condition and test deformation (``none`` included): the
    leaderboard value with CI, plus ``family``, ``param``, ``severity``, ``clean`` (the same probe setting's
    clean score) and ``drop`` (relative drop vs clean, ``(clean − value) / |clean|``; NaN without a clean row).

    Only rows of the ``robustness`` study; the clean reference comes from that study's ``none`` rows,
    else (probes trained on clean audio only) from the run's clean leaderboard."""
    rows = results[results["study"] == "robustness"]
    board = _board(rows)
    if board.empty:
        return board.assign(family=[], param=[], severity=[], clean=[], drop=[])
    board = board.copy()
    board["family"] = board["deformation"].map(deformation_family)
    sev = board["deformation"].map(deformation_severity)
    board["param"] = [p for p, _ in sev]
    board["severity"] = [v for _, v in sev]
    keys = ["task", "representation", "train_deformation"]
    clean = board[board["deformation"] == CLEAN].set_index(keys)["value"]
    clean = clean[~clean.index.duplicated()]
    fallback = leaderboard_view(results[results["study"] != "robustness"])
    if len(fallback):  # the best clean entry per (task, representation), probes trained on clean audio
        fallback = fallback.sort_values("value", ascending=False).drop_duplicates(["task", "representation"])
        fallback = fallback.assign(train_deformation=CLEAN).set_index(keys)["value"]
        fallback = fallback[~fallback.index.isin(clean.index)]
        clean = pd.concat([clean, fallback])
    key_index = pd.MultiIndex.from_frame(board[keys])
    board["clean"] = clean.reindex(key_index).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        board["drop"] = (board["clean"] - board["value"].astype(float)) / board["clean"].abs()
    board.loc[board["clean"] == 0, "drop"] = np.nan
    return board.reset_index(drop=True)


def augmentation_view(results: pd.DataFrame) -> pd.DataFrame:
    """Per task, representation, labelled budget (``labelled_per_class``, NaN = all), augmented share and
    sample weight: the leaderboard value with CI (rows of the ``augmentation`` study, clean test audio)."""
    rows = results[(results["study"] == "augmentation") & (results["deformation"] == CLEAN)]
    return _board(rows)


def finetune_view(results: pd.DataFrame) -> pd.DataFrame:
    """Per task, representation, labelled budget (NaN = all) and ``method`` (finetune-all / finetune-lastN /
    probe / knn): the leaderboard value with CI (rows of the ``finetune`` study)."""
    rows = results[(results["study"] == "finetune") & (results["deformation"] == CLEAN)]
    return _board(rows)


#: The columns that name one learning curve (a line of the limited-data figure).
CURVE_KEYS: list[str] = ["task", "representation", "pretrain_data", "probe"]


def limited_data_view(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The learning curves of the ``limited-data`` study (clean audio): ``(curves, baselines)``.

    Each probe is ranked on its own (the paper compares linear and MLP probes, so one must not hide the
    other): per task, representation, pretraining data, probe, budget and pretraining seed, the layer
    chosen on validation; then over pretraining seeds, ``value`` is the mean, and the band
    ``[ci_low, ci_high]`` spans every seed's bootstrap 95 % CI (lowest low, highest high) — it covers both
    test-set sampling and the spread between pretraining runs, which a t-interval over 2 seeds could not
    say sensibly. ``curves`` has :data:`CURVE_KEYS` + ``budget_minutes`` (0 = the random-init twin),
    ``value``, ``ci_low``, ``ci_high``, ``seeds``, ``metric``; ``baselines`` (rows without a budget:
    handcrafted features, pretrained models) has the same columns less the budget.
    """
    cols = [*CURVE_KEYS, "budget_minutes", "value", "ci_low", "ci_high", "seeds", "metric"]
    rows = clean_rows(results[results["study"] == "limited-data"]) if len(results) else results
    if rows is None or rows.empty:
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=[c for c in cols if c != "budget_minutes"])
    boards = [_board(g) for _, g in rows.groupby("probe", sort=True)]
    board = pd.concat([b for b in boards if len(b)], ignore_index=True) if any(len(b) for b in boards) else \
        pd.DataFrame(columns=[*rows.columns, "seeds"])
    board = board.assign(pretrain_data=board["pretrain_data"].fillna("none"))
    agg = {"value": ("value", "mean"), "ci_low": ("ci_low", "min"), "ci_high": ("ci_high", "max"),
           "seeds": ("pretrain_seed", "nunique"), "metric": ("metric", "first")}
    trained = board[board["budget_minutes"].notna()]
    curves = (trained.assign(budget_minutes=trained["budget_minutes"].astype(float))
              .groupby([*CURVE_KEYS, "budget_minutes"], sort=True).agg(**agg).reset_index())
    base = board[board["budget_minutes"].isna()]
    baselines = base.groupby(CURVE_KEYS, sort=True).agg(**agg).reset_index() if len(base) else \
        pd.DataFrame(columns=[c for c in cols if c != "budget_minutes"])
    return curves[cols], baselines


def curve_ratios(curves: pd.DataFrame) -> pd.DataFrame:
    """Per learning curve: the score of the random twin (0 min), of the smallest positive budget and of
    the largest, and the ratios smallest / largest and twin / largest (finding F1 and F2 of the paper:
    how close 5 minutes, or no training, come to everything)."""
    out = []
    for key, g in curves.groupby(CURVE_KEYS, sort=True):
        g = g.sort_values("budget_minutes")
        pos = g[g["budget_minutes"] > 0]
        if pos.empty:
            continue
        top, small = pos.iloc[-1], pos.iloc[0]
        twin = g[g["budget_minutes"] == 0]
        twin_v = float(twin["value"].iloc[0]) if len(twin) else float("nan")
        top_v = float(top["value"])
        out.append({**dict(zip(CURVE_KEYS, key, strict=True)), "metric": top["metric"],
                    "twin": twin_v, "smallest_minutes": float(small["budget_minutes"]), "smallest": float(small["value"]),
                    "largest_minutes": float(top["budget_minutes"]), "largest": top_v,
                    "smallest_over_largest": float(small["value"]) / top_v if top_v else float("nan"),
                    "twin_over_largest": twin_v / top_v if top_v else float("nan")})
    return pd.DataFrame(out)

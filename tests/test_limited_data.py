"""The limited-data study: learning-curve views and report (hand-built tables), and the smoke preset end to end.

Expected curve values are computed by hand here (means, lowest CI low, highest CI high over pretraining
seeds; ratios of the hand-computed values), never with the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from musicrep.report import write_report
from musicrep.report.views import curve_ratios, limited_data_view
from musicrep.results import RESULT_COLUMNS, read_results


def _row(rep: str, budget: float, seed: float, probe: str, layer: str, value: float, valid: float, *,
         data: str = "music", ci: float = 0.05) -> dict:
    return {"study": "limited-data", "representation": rep, "rep_id": f"{rep}-x", "budget_minutes": budget,
            "pretrain_data": data, "pretrain_seed": seed, "layer": layer, "task": "pitch", "kind": "multiclass",
            "probe": probe, "deformation": "none", "train_deformation": "none", "labelled_per_class": np.nan,
            "augment_fraction": 0.0, "sample_weight": 1.0, "seed": 0, "metric": "accuracy", "value": value,
            "ci_low": value - ci, "ci_high": value + ci, "valid_value": valid, "n_train": 10, "n_test": 10,
            "n_failed": 0, "selection": "valid", "best_config": "{}", "layer_weights": "", "unit_key": "k"}


@pytest.fixture()
def table() -> pd.DataFrame:
    rows = []
    # vgg-simclr, two pretraining seeds, budgets 0 (twin), 5, 100; two layers — the layer with the better
    # VALID score must be the one read, whatever its test score
    for seed, shift in ((0, 0.0), (1, 0.1)):
        for budget, base in ((0.0, 0.40), (5.0, 0.60), (100.0, 0.80)):
            rows.append(_row("vgg-simclr", budget, seed, "linear", "4:block5", base + shift, 0.9))
            rows.append(_row("vgg-simclr", budget, seed, "linear", "3:block4", 0.99, 0.1))  # chosen never
    rows.append(_row("mfcc", np.nan, np.nan, "linear", "0:mfcc", 0.70, 0.5, data="none"))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def test_curves_average_seeds_and_span_their_cis(table: pd.DataFrame) -> None:
    curves, baselines = limited_data_view(table)
    got = curves.set_index("budget_minutes")
    assert list(got.index) == [0.0, 5.0, 100.0]
    assert got.loc[5.0, "value"] == pytest.approx((0.60 + 0.70) / 2)
    assert got.loc[5.0, "ci_low"] == pytest.approx(0.60 - 0.05)  # lowest low over seeds
    assert got.loc[5.0, "ci_high"] == pytest.approx(0.70 + 0.05)  # highest high over seeds
    assert (got["seeds"] == 2).all()
    assert list(baselines["representation"]) == ["mfcc"]
    assert baselines["value"].iloc[0] == pytest.approx(0.70)


def test_ratios_compare_smallest_budget_and_twin_with_largest(table: pd.DataFrame) -> None:
    ratios = curve_ratios(limited_data_view(table)[0])
    r = ratios.iloc[0]
    assert r["smallest_minutes"] == 5.0 and r["largest_minutes"] == 100.0
    assert r["smallest_over_largest"] == pytest.approx(0.65 / 0.85)
    assert r["twin_over_largest"] == pytest.approx(0.45 / 0.85)


def test_report_draws_the_learning_curves(tmp_path: Path, table: pd.DataFrame) -> None:
    run = tmp_path / "ld"
    run.mkdir()
    table.to_csv(run / "results.csv", index=False)
    files = write_report([run], tmp_path / "report.html")
    html = files.html.read_text(encoding="utf-8")
    assert "Limited data" in html and "vs pretraining minutes" in html
    assert "0.765" in html  # smallest / largest = 0.65 / 0.85, in the ratio table
    assert files.n_figures >= 2  # the leaderboard bars and the learning curves


def test_smoke_preset_adds_rows_for_three_budgets(tmp_path: Path) -> None:
    from musicrep.studies import STUDIES, load_study

    cfg = load_study("limited-data", preset="smoke", out=tmp_path / "ld")
    STUDIES["limited-data"].run(cfg, progress=False)
    res = read_results(tmp_path / "ld" / "results.csv")
    curve = res[res["representation"] == "vgg-simclr"]
    budgets = sorted(curve["budget_minutes"].astype(float).unique())
    assert len(budgets) >= 3 and budgets[0] == 0.0
    assert math.isclose(budgets[1], 1.0) and math.isclose(budgets[2], 2.0)
    assert (curve["pretrain_data"] == "music").all()
    assert set(res.loc[res["representation"] == "mfcc", "budget_minutes"].isna()) == {True}
    # each trained budget is its own checkpoint, so its own representation id; the twin is the untrained one
    ids = curve.groupby("budget_minutes")["rep_id"].first()
    assert ids.nunique() == len(budgets)
    # a re-run trains nothing and adds nothing
    before = len(res)
    STUDIES["limited-data"].run(cfg, progress=False)
    assert len(read_results(tmp_path / "ld" / "results.csv")) == before


@pytest.mark.parametrize("preset", ["laptop", "paper"])
def test_bigger_presets_parse_and_start_every_curve_at_the_random_twin(preset: str, tmp_path: Path) -> None:
    from musicrep.studies import load_study
    from musicrep.train.objectives import OBJECTIVES

    cfg = load_study("limited-data", preset=preset, out=tmp_path / preset)
    assert cfg.budgets[0] == 0 and cfg.budgets[-1] == "all" and len(cfg.pretrain_seeds) >= 2
    assert {c.objective for c in cfg.curves} <= set(OBJECTIVES)
    assert {"music", "nonmusic"} <= set(cfg.pools)  # in- vs out-of-domain


def test_a_curve_can_have_its_own_budgets_and_seeds(tmp_path: Path) -> None:
    """Side comparisons (the non-music pool, supervised) run fewer budgets/seeds than the main curves."""
    from musicrep.studies import STUDIES, load_study

    cfg = load_study("limited-data", preset="smoke", out=tmp_path / "ld")
    cfg = cfg.model_copy(update={"curves": [
        cfg.curves[0].model_copy(update={"budgets": [0, 1]}),
        cfg.curves[0].model_copy(update={"label": "side", "budgets": ["all"], "seeds": [1]})]})
    STUDIES["limited-data"].run(cfg, progress=False)
    res = read_results(tmp_path / "ld" / "results.csv")
    main, side = res[res["representation"] == "vgg-simclr"], res[res["representation"] == "side"]
    assert sorted(main["budget_minutes"].astype(float).unique()) == [0.0, 1.0]
    assert set(main["pretrain_seed"].astype(int)) == {0}
    assert len(side["budget_minutes"].unique()) == 1 and float(side["budget_minutes"].iloc[0]) > 1.0
    assert set(side["pretrain_seed"].astype(int)) == {1}


def test_a_render_part_that_the_renderer_does_not_write_names_the_parts(tmp_path: Path) -> None:
    from musicrep.config import ConfigError
    from musicrep.studies.base import RenderedTask

    with pytest.raises(ConfigError, match=r"wrote no task 'nope'"):
        RenderedTask(render="pitch", n=8, part="nope").materialise(tmp_path)

"""``musicrep compare`` as a user meets it: a folder of class sub-folders in, a recommendation out — and
the cross-validation and paired-bootstrap claims behind it, checked against numpy on the saved predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from musicrep.cli import app
from musicrep.probe import ProbeData, ProbeSetup, Split, cross_validate_probe
from musicrep.probe.crossval import fold_ids
from musicrep.results import TIES_FILE, predictions_path

SR = 16_000
runner = CliRunner()


def _clips(root: Path, per_class: int = 8, seconds: float = 1.0) -> Path:
    """Three classes — a low tone, a high tone and noise — with enough noise that the entries differ."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    for name, freq in (("low", 220.0), ("high", 660.0), ("hiss", 0.0)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            tone = 0.2 * np.sin(2 * np.pi * freq * (1 + 0.1 * rng.standard_normal()) * t) if freq else 0.0
            y = tone + 0.5 * rng.standard_normal(t.size)
            sf.write(root / name / f"{name}{i}.wav", np.clip(y, -1, 1).astype(np.float32), SR)
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One compare run on 24 one-second clips (2 handcrafted representations, every probe), shared by the tests."""
    tmp = tmp_path_factory.mktemp("compare")
    data = _clips(tmp / "clips")
    (data / "low" / "broken.wav").write_bytes(b"RIFF, but no audio")  # named and skipped, not fatal
    out = tmp / "out"
    res = runner.invoke(app, ["compare", str(data), "--out", str(out), "--only-rep", "mfcc", "--only-rep", "cqt",
                              "--quiet"])
    assert res.exit_code == 0, res.output
    return data, out, res.output


def test_writes_a_recommendation_naming_the_winner(run: tuple[Path, Path, str]) -> None:
    _, out, output = run
    board = _board(out)
    winner = board.sort_values("value", ascending=False).iloc[0]
    text = (out / "recommendation.md").read_text()
    headline = text.split("\n\n")[1]
    assert headline.startswith(f"**{winner['representation']} + ")
    assert f"{winner['value']:.2f} [{winner['ci_low']:.2f}, {winner['ci_high']:.2f}]" in headline
    assert "is best" in output and "on these 24 clips" in headline  # printed too; the broken file is not an item
    assert "broken.wav" in output and "broken.wav" in text  # named and skipped
    assert (out / "report.html").is_file()


def test_leaderboard_has_confidence_intervals(run: tuple[Path, Path, str]) -> None:
    board = _board(run[1])
    assert {"value", "ci_low", "ci_high"} <= set(board.columns)
    assert set(board["representation"]) == {"mfcc", "cqt"}
    assert np.isfinite(board[["ci_low", "ci_high"]].to_numpy()).all()
    assert ((board["ci_low"] <= board["value"]) & (board["value"] <= board["ci_high"])).all()
    assert (board["ci_high"] - board["ci_low"] > 0).any()


def _board(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "leaderboard.csv", dtype={"unit_key": str, "layer": str})


def _oof(out: Path, row: pd.Series, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, reference, estimate) of one leaderboard row at probe ``seed``, read with numpy from its file."""
    path = predictions_path(out, row["representation"], row["task"], row["probe"], seed, row["unit_key"])
    with np.load(path, allow_pickle=False) as f:
        entry = next(e for e in json.loads(str(f["index"]))
                     if e["layer"] == str(row["layer"]) and e["metric"] == row["metric"])
        return f[entry["ids"]], f[entry["ref"]], f[entry["est"]]


def test_small_set_is_cross_validated_every_item_once(run: tuple[Path, Path, str]) -> None:
    _, out, output = run
    assert "5-fold cross-validation" in output
    items = pd.read_csv(out / "task" / "items.csv")
    results = pd.read_csv(out / "results.csv", dtype={"unit_key": str, "layer": str})
    assert set(results["selection"]) == {"cv5"} and set(results["n_test"]) == {len(items)}
    for _, row in _board(out).iterrows():
        ids, ref, est = _oof(out, row)
        assert sorted(ids) == sorted(items["id"])  # each item predicted exactly once
        seed0 = results[(results["representation"] == row["representation"]) & (results["probe"] == row["probe"])
                        & (results["layer"] == row["layer"]) & (results["metric"] == "accuracy")
                        & (results["seed"] == 0)]
        assert np.isclose(np.mean(ref == est), seed0["value"].item())


def test_ties_match_an_independent_paired_bootstrap(run: tuple[Path, Path, str]) -> None:
    out = run[1]
    ties = pd.read_csv(out / TIES_FILE)
    board = {r["representation"]: r for _, r in _board(out).iterrows()}
    top = ties[ties["status"] == "winner"].iloc[0]
    assert len(ties) == len(board) == 2
    w_ids, w_ref, w_est = _oof(out, board[top["representation"]])  # paired at seed 0, which both have
    for _, t in ties[ties["status"] != "winner"].iterrows():
        ids, _, est = _oof(out, board[t["representation"]])
        pos = {i: k for k, i in enumerate(ids)}
        other = est[[pos[i] for i in w_ids]]
        n = len(w_ref)
        draws = np.random.default_rng(0).integers(0, n, size=(1000, n))
        diff = (w_est[draws] == w_ref[draws]).mean(1) - (other[draws] == w_ref[draws]).mean(1)
        low, high = np.percentile(diff, [2.5, 97.5])
        assert t["status"] == ("tied" if low <= 0 <= high else "worse")
        assert np.isclose(t["diff_low"], low) and np.isclose(t["diff_high"], high)
    text = (out / "recommendation.md").read_text()
    tied = ties[ties["status"] == "tied"]["representation"]
    assert all(f"{r} + " in text.split("\n\n")[1] for r in tied)


def test_rerun_reuses_the_import_and_the_results(run: tuple[Path, Path, str]) -> None:
    data, out, _ = run
    before = (out / "results.csv").read_bytes()
    res = runner.invoke(app, ["compare", str(data), "--out", str(out), "--only-rep", "mfcc", "--only-rep", "cqt",
                              "--quiet"])
    assert res.exit_code == 0, res.output
    assert "imported earlier" in res.output and "all results present" in res.output
    assert (out / "results.csv").read_bytes() == before


def test_out_of_fold_means_never_trained_on(tmp_path: Path) -> None:
    """1-NN on random labels scores 1.0 on its own training items; out of fold it must be near chance, and
    grouped folds keep an item's duplicate (same group) out of its training part too."""
    rng = np.random.default_rng(0)
    n = 60
    x = rng.standard_normal((n, 1, 8)).astype(np.float32)
    y = rng.integers(0, 3, n)
    grid = {"lr": [1e-3], "steps": [1], "weight_decay": [0.0], "dropout": [0.0], "hidden": [()], "k": [1]}
    setup = ProbeSetup(probe="knn", grid=grid, layer=0, cv_folds=5)
    rows = cross_validate_probe(ProbeData("multiclass", Split(x, y, np.arange(n).astype(str)),
                                          vocabulary=[0, 1, 2]), setup)
    (row,) = [r for r in rows if r["metric"] == "accuracy"]
    ref, est = row["predictions"]
    assert len(est) == n and np.array_equal(ref, y) and row["value"] < 0.6
    twins = np.concatenate([x, x]), np.concatenate([y, y]), np.concatenate([np.arange(n), np.arange(n)]).astype(str)
    rows = cross_validate_probe(ProbeData("multiclass", Split(*twins), vocabulary=[0, 1, 2]), setup)
    assert next(r for r in rows if r["metric"] == "accuracy")["value"] < 0.6  # no twin leaks across folds
    folds = fold_ids("multiclass", twins[1], 5, twins[2])
    assert np.array_equal(folds[:n], folds[n:]) and set(folds) == set(range(5))


def test_one_class_is_refused_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "clips"
    (data / "piano").mkdir(parents=True)
    for i in range(3):
        sf.write(data / "piano" / f"{i}.wav", np.full(SR // 4, 0.01 * (i + 1), np.float32), SR)
    res = runner.invoke(app, ["compare", str(data), "--out", str(tmp_path / "out"), "--only-rep", "mfcc"])
    assert res.exit_code == 2
    msg = res.output.strip()
    assert str(data) in msg and "one class ('piano')" in msg and "sub-folder" in msg
    assert len(msg.splitlines()) <= 3 and "Traceback" not in msg
    assert not (tmp_path / "out" / "task").exists()  # a rerun after adding a class imports afresh


@pytest.mark.parametrize("make", ["missing", "empty", "flat"])
def test_unusable_data_is_refused_naming_the_folder(tmp_path: Path, make: str) -> None:
    data = tmp_path / "clips"
    if make != "missing":
        data.mkdir()
    if make == "flat":  # audio but no class folders
        sf.write(data / "a.wav", np.zeros(SR // 4, np.float32), SR)
    res = runner.invoke(app, ["compare", str(data), "--out", str(tmp_path / "out"), "--only-rep", "mfcc"])
    assert res.exit_code == 2 and str(data) in res.output and "Traceback" not in res.output
    assert "sub-folder" in res.output

"""musicrep evaluate: config → tidy results.csv; resumable, deterministic, survives bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from typer.testing import CliRunner

from musicrep import models
from musicrep.cli import app
from musicrep.config import ConfigError, load_config
from musicrep.data.task import Task
from musicrep.evaluate import evaluate
from musicrep.results import RESULT_COLUMNS, leaderboard
from musicrep.models.base import Representation

SR = 16_000
REQUIRED = ["representation", "layer", "task", "probe", "seed", "metric", "value", "ci_low", "ci_high"]


class Bands(Representation):
    """Test representation: layer 0 = log energy in 8 frequency bands per 100 ms frame; layer 1 = noise."""

    name = "test-bands"
    sample_rate = SR
    frame_rate = 10.0
    layer_names = ["bands", "noise"]
    layer_dims = [8, 8]
    window_seconds = 1.0

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        fr = audio.unfold(-1, 1600, 1600)
        spec = torch.fft.rfft(fr * torch.hann_window(1600), dim=-1).abs().square()
        bands = torch.stack([b.sum(-1) for b in spec[..., 1:801].chunk(8, dim=-1)], -1)
        feats = torch.log(bands + 1e-6)
        g = torch.Generator().manual_seed(0)
        noise = torch.randn(feats.shape, generator=g)
        return torch.stack([feats, noise], 1)


if "test-bands" not in models.names():
    models.register("test-bands", family="test", description="band energies (tests only)")(Bands)


def make_task(root: Path, n_per_class: int = 12, corrupt: bool = False) -> Path:
    """Two classes: low tones (200–400 Hz) and high tones (2–4 kHz), with random phase/noise."""
    rng = np.random.default_rng(0)
    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows = []
    t = np.arange(int(1.5 * SR)) / SR
    for label, (lo, hi) in {"low": (200, 400), "high": (2000, 4000)}.items():
        for i in range(n_per_class):
            f = rng.uniform(lo, hi)
            y = 0.4 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) + 0.02 * rng.standard_normal(len(t))
            name = f"{label}{i:02d}.wav"
            sf.write(audio / name, y.astype(np.float32), SR)
            split = "train" if i < n_per_class // 2 else ("valid" if i < 3 * n_per_class // 4 else "test")
            rows.append({"id": f"{label}{i:02d}", "path": f"audio/{name}", "split": split, "label": label,
                         "duration": 1.5, "group": f"{label}{i:02d}"})
    if corrupt:
        (audio / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
        rows.append({"id": "broken", "path": "audio/broken.wav", "split": "train", "label": "low",
                     "duration": 1.5, "group": "broken"})
    Task.write(root, {"name": "tones", "kind": "multiclass", "vocabulary": ["low", "high"],
                      "metrics": ["accuracy"], "sample_rate": SR}, rows)
    return root


def config(tmp: Path, task: Path, out: str = "out", **kw) -> dict:
    base = {"out": str(tmp / out), "store": str(tmp / "store"), "tasks": [str(task)],
            "representations": [{"name": "test-bands"}], "probes": ["linear"], "grid": "faster",
            "layers": "all", "seeds": [0], "bootstrap": 200}
    base.update(kw)
    return base


def test_results_table_is_tidy_and_correct(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task")
    res = evaluate(load_config(config(tmp_path, task)), progress=False)
    saved = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(saved.columns) == RESULT_COLUMNS
    assert set(REQUIRED) <= set(saved.columns)
    acc = saved[saved["metric"] == "accuracy"]
    assert set(acc["layer"]) == {"0:bands", "1:noise"}  # a layer scan: one row per layer
    bands = acc[acc["layer"] == "0:bands"].iloc[0]
    assert bands["value"] >= 0.9  # band energies separate low from high tones
    assert bands["ci_low"] <= bands["value"] <= bands["ci_high"]
    assert (tmp_path / "out" / "config.resolved.yaml").exists()
    assert "torch" in (tmp_path / "out" / "versions.json").read_text()
    board = leaderboard(res)
    assert len(board) == 1 and board.iloc[0]["layer"] == "0:bands"  # chosen on validation, and right


def test_rerun_skips_finished_units(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task")
    cfg = load_config(config(tmp_path, task))
    evaluate(cfg, progress=False)
    before = (tmp_path / "out" / "results.csv").read_bytes()
    calls: list[str] = []

    def spy(data, setup):
        calls.append(setup.probe)
        raise AssertionError("finished work must not be redone")

    evaluate(cfg, progress=False, probe_runner=spy)
    assert calls == [] and (tmp_path / "out" / "results.csv").read_bytes() == before


def test_same_seed_same_results_csv(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task")
    evaluate(load_config(config(tmp_path, task, out="a", probes=["linear", "mlp"])), progress=False)
    evaluate(load_config(config(tmp_path, task, out="b", probes=["linear", "mlp"])), progress=False)
    assert (tmp_path / "a" / "results.csv").read_bytes() == (tmp_path / "b" / "results.csv").read_bytes()


def test_corrupt_file_is_reported_and_evaluation_completes(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task", corrupt=True)
    res = evaluate(load_config(config(tmp_path, task)), progress=False)
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert errors["path"].str.contains("broken.wav").any()
    assert (res["metric"] == "accuracy").any()
    assert int(res["n_train"].iloc[0]) == 12  # the broken item is dropped, the 12 good ones kept


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task", n_per_class=4)
    bad = config(tmp_path, task, probe=["linear"])  # typo: probe for probes
    with pytest.raises(ConfigError, match=r"probe: unknown key"):
        load_config(bad)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**config(tmp_path, task), "grid": "fastest"}))
    result = CliRunner().invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2 and "grid" in result.output and "fastest" in result.output


def test_changed_settings_are_recomputed_not_reused(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task")
    evaluate(load_config(config(tmp_path, task)), progress=False)
    res = evaluate(load_config(config(tmp_path, task, layers="last", bootstrap=0)), progress=False)
    last = res[res["unit_key"] != res["unit_key"].iloc[0]]
    assert set(last["layer"]) == {"1:noise"} and last["ci_low"].isna().all()


def test_duplicate_labels_and_task_names_are_refused(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task", n_per_class=4)
    two = [{"name": "test-bands"}, {"name": "test-bands"}]
    with pytest.raises(ConfigError, match="distinct `label:`"):
        load_config(config(tmp_path, task, representations=two))
    with pytest.raises(ValueError, match="share the name"):
        evaluate(load_config(config(tmp_path, task, tasks=[str(task), str(task)])), progress=False)


def test_weighted_layers_skip_untrained_probes(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task")
    res = evaluate(load_config(config(tmp_path, task, layers="weighted", probes=["linear", "knn"])), progress=False)
    assert set(res["probe"]) == {"linear"} and set(res["layer"]) == {"weighted"}
    weights = json.loads(res["layer_weights"].iloc[0])
    assert weights[0] > weights[1]  # the informative band layer outweighs the noise layer


def test_results_from_an_older_table_are_kept_and_recomputed(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task")
    res = evaluate(load_config(config(tmp_path, task)), progress=False)
    old = res.drop(columns=["unit_key", "selection"])
    old.to_csv(tmp_path / "out" / "results.csv", index=False)
    again = evaluate(load_config(config(tmp_path, task)), progress=False)
    assert len(again) == 2 * len(res)  # the old rows stay, the unit is recomputed with its key
    assert again["unit_key"].notna().sum() == len(res)


def _respell(task: Path, out: Path, spelling: dict[str, str], kind: str = "key") -> Path:
    """A copy of ``task``'s manifest (same audio) with labels renamed through ``spelling``."""
    t = Task.load(task)
    items = t.items.copy()
    items["label"] = [spelling[x] for x in items["label"]]
    items["path"] = [str((task / p).resolve()) for p in items["path"]]
    Task.write(out, {"name": "tones", "kind": kind, "vocabulary": sorted(set(spelling.values())),
                     "sample_rate": SR}, items)
    return out


def test_key_task_spelled_two_ways_gives_identical_results(tmp_path: Path) -> None:
    # low tones labelled Db major / C# major, high tones G# minor / Ab minor: the same two keys
    task = make_task(tmp_path / "task", n_per_class=8)
    flat = _respell(task, tmp_path / "flat", {"low": "Db major", "high": "G# minor"})
    sharp = _respell(task, tmp_path / "sharp", {"low": "C# major", "high": "Ab minor"})
    a = evaluate(load_config(config(tmp_path, flat, out="a", bootstrap=50)), progress=False)
    b = evaluate(load_config(config(tmp_path, sharp, out="b", bootstrap=50)), progress=False)
    assert set(a["metric"]) == {"mirex", "accuracy"}
    cols = ["layer", "metric", "value", "ci_low", "ci_high", "valid_value", "best_config"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_class_without_training_items_is_warned_by_name_and_still_scored(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task", n_per_class=8)
    t = Task.load(task)
    items = t.items.copy()
    items.loc[(items["label"] == "high") & (items["split"] == "train"), "split"] = "valid"
    items["path"] = [str((task / p).resolve()) for p in items["path"]]
    Task.write(tmp_path / "skewed", {"name": "tones", "kind": "multiclass", "vocabulary": ["low", "high"],
                                     "sample_rate": SR}, items)
    res = evaluate(load_config(config(tmp_path, tmp_path / "skewed", bootstrap=50)), progress=False)
    assert (res["metric"] == "accuracy").any()  # scoring went on
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert errors["error"].str.contains("class 'high' has test/valid items but no training items").any()


def test_unknown_representation_or_setting_is_a_config_error_naming_it(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task", n_per_class=4)
    with pytest.raises(ConfigError, match=r"representations\.0\.name: .*unknown representation 'mfccc'"):
        load_config(config(tmp_path, task, representations=[{"name": "mfccc"}]))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, task, representations=[{"name": "vgg",
                                                                            "config": {"sise": "small"}}])))
    result = CliRunner().invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2 and "representation vgg-sisesmall" in result.output and "sise" in result.output
    assert "Traceback" not in result.output


def test_predictions_are_kept_and_reproduce_the_reported_value(tmp_path: Path) -> None:
    """Every unit leaves its test predictions beside results.csv; re-scoring them gives the row's value."""
    from musicrep.metrics import get_metric
    from musicrep.results import read_predictions

    task = make_task(tmp_path / "task")
    res = evaluate(load_config(config(tmp_path, task)), progress=False)
    for _, row in res.iterrows():
        ids, ref, est = read_predictions(tmp_path / "out", row)
        assert sorted(ids) == sorted(Task.load(task).split("test")["id"])  # the test items, by id
        assert get_metric(row["metric"])(ref, est) == pytest.approx(row["value"])


def test_extra_seeds_refit_only_the_named_unit(tmp_path: Path) -> None:
    task = make_task(tmp_path / "task")
    cfg = load_config(config(tmp_path, task, probes=["linear", "mlp"]))
    evaluate(cfg, progress=False)
    res = evaluate(cfg, progress=False, extra_seeds={("test-bands", "tones", "mlp"): (0, 1, 2)})
    seeds = res.groupby("probe")["seed"].apply(lambda s: sorted(set(s)))
    assert seeds["mlp"] == [0, 1, 2] and seeds["linear"] == [0]
    board = leaderboard(res)
    mlp = board[board["probe"] == "mlp"]
    if len(mlp):  # the leaderboard row of a multi-seed entry carries the spread of its seeds
        r = mlp.iloc[0]
        vals = res[(res["probe"] == "mlp") & (res["layer"] == r["layer"]) & (res["metric"] == "accuracy")]["value"]
        assert (r["seeds"], r["value_min"], r["value_max"]) == (3, vals.min(), vals.max())

"""Studies: each smoke preset runs from the CLI, adds rows with its own columns, and resumes without redoing
work; linear CKA equals the textbook HSIC formula; sample weights change what a probe learns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from musicrep.cli import app
from musicrep.data.subset import subset
from musicrep.data.task import Task
from musicrep.probe import ProbeData, ProbeSetup, Split, fit_probe
from musicrep.studies.layerwise import linear_cka

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of rendered smoke tasks shared by the three studies (rendered on first use)."""
    return tmp_path_factory.mktemp("study-data")


def run_study(name: str, out: Path, data: Path) -> pd.DataFrame:
    # --preset smoke, with the rendered tasks shared through a config that points `data` at one folder
    from importlib import resources

    import yaml

    preset = yaml.safe_load(resources.files("musicrep.presets").joinpath("studies", f"{name}.yaml").read_text())
    cfg = {**preset["smoke"], "out": str(out), "data": str(data)}
    path = out.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["study", name, str(path), "-q"])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "results.csv")


def test_robustness_smoke_scores_every_deformation_and_resumes(tmp_path: Path, data_dir: Path) -> None:
    res = run_study("robustness", tmp_path / "rob", data_dir)
    assert set(res["study"]) == {"robustness"}
    assert set(res["deformation"]) == {"none", "noise:white@snr=10", "mp3@kbps=32"}
    assert set(res["train_deformation"]) == {"none", "noise:white@snr=20"}
    clean = res[(res["deformation"] == "none") & (res["train_deformation"] == "none")]
    noisy = res[(res["deformation"] == "noise:white@snr=10") & (res["train_deformation"] == "none")]
    assert len(clean) == len(noisy) > 0
    # one probe scored on several test sets: same selection (valid score) and training size, other audio
    assert list(clean["valid_value"]) == list(noisy["valid_value"]) and list(clean["n_train"]) == list(noisy["n_train"])
    aug = res[res["train_deformation"] != "none"]
    assert (aug["n_train"].to_numpy() == 2 * clean["n_train"].to_numpy()[0]).all()  # clean + one noisy copy each
    before = (tmp_path / "rob" / "results.csv").read_bytes()
    run_study("robustness", tmp_path / "rob", data_dir)
    assert (tmp_path / "rob" / "results.csv").read_bytes() == before  # resumed: nothing redone, nothing added


def test_augmentation_smoke_adds_the_right_number_of_copies(tmp_path: Path, data_dir: Path) -> None:
    res = run_study("augmentation", tmp_path / "aug", data_dir)
    task = Task.load(next(p for p in data_dir.iterdir() if (p / "task.yaml").exists() and p.name.startswith("pitch")))
    budget = len(subset(task, per_class=2, split="train", seed=0).split("train"))
    full = len(task.split("train"))
    got = res[res["metric"] == res["metric"].iloc[0]]
    for _, r in got.iterrows():
        n = budget if r["labelled_per_class"] == 2 else full
        assert r["n_train"] == n + math.ceil(r["augment_fraction"] * n)  # one copy per augmented item
        assert (r["train_deformation"] == "none") == (r["augment_fraction"] == 0)
    assert set(got["sample_weight"]) == {1.0, 0.5}


def test_layerwise_smoke_scans_every_layer_and_writes_cka(tmp_path: Path, data_dir: Path) -> None:
    res = run_study("layerwise", tmp_path / "lay", data_dir)
    layers = set(res["layer"])
    assert "weighted" in layers and len(layers - {"weighted"}) == 5  # the small VGG's five blocks
    cka = pd.read_csv(tmp_path / "lay" / "cka.csv")
    m = cka.pivot(index="layer_a", columns="layer_b", values="cka").to_numpy()
    assert m.shape == (5, 5) and np.allclose(np.diag(m), 1.0) and np.allclose(m, m.T)
    assert ((m >= 0) & (m <= 1 + 1e-9)).all()


def test_linear_cka_equals_the_hsic_formula() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 7))
    y = x @ rng.normal(size=(7, 5)) + 0.5 * rng.normal(size=(40, 5))
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n  # centring matrix

    def hsic(k: np.ndarray, l_: np.ndarray) -> float:
        return float(np.trace(k @ h @ l_ @ h))

    kx, ky = x @ x.T, y @ y.T
    ref = hsic(kx, ky) / np.sqrt(hsic(kx, kx) * hsic(ky, ky))  # Kornblith et al. 2019, eq. for linear kernels
    assert linear_cka(x, y) == pytest.approx(ref, rel=1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(7, 7)))
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)  # invariant to rotation and isotropic scale


def test_sample_weights_decide_what_a_probe_learns() -> None:
    # two clean clusters, plus mislabelled copies of class 0: at weight 1 they pull the boundary, at weight 0
    # the probe must behave as if they were absent
    rng = np.random.default_rng(0)
    x0, x1 = rng.normal(-1, 0.3, (30, 1, 2)), rng.normal(1, 0.3, (30, 1, 2))
    wrong = rng.normal(-1, 0.3, (60, 1, 2))
    X = np.concatenate([x0, x1, wrong]).astype(np.float32)
    y = np.array([0] * 30 + [1] * 30 + [1] * 60)
    test_x = np.concatenate([x0, x1]).astype(np.float32)
    test_y = np.array([0] * 30 + [1] * 30)
    setup = ProbeSetup(probe="linear", grid="faster", layer=0, n_folds=3)
    acc = {}
    for w in (0.0, 1.0):  # no validation split: nothing clean to early-stop on, as with a real small set
        data = ProbeData("multiclass", Split(X, y, None, np.array([1.0] * 60 + [w] * 60)))
        acc[w] = float((fit_probe(data, setup).predict(test_x) == test_y).mean())
    assert acc[0.0] >= acc[1.0] + 0.25, acc

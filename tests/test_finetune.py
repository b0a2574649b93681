"""Fine-tuning (``musicrep finetune``, the ``finetune`` objective, the ``finetune`` study).

Tiny synthetic tasks (tones written by the test) and the small VGG keep every test but the study's smoke
run to a few seconds. Expected values are independent of the code under test: budgets are counted by hand
from the labels the test wrote, frozen parameters are compared with the checkpoint's safetensors bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from musicrep import models
from musicrep.data.task import write_task
from musicrep.results import read_results
from musicrep.train.config import PretrainConfigError, load_finetune, load_pretrain
from musicrep.train.data import TrainData
from musicrep.train.finetune import finetune, load_predictor
from musicrep.train.objectives.finetune import frozen_names
from musicrep.train.trainer import HEAD_WEIGHTS, pretrain

SR = 16_000
ENCODERS = ["vgg", "musicnn", "samplecnn", "nfnet", "ast", "tmae", "conformer"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> object:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tone(i: int, seconds: float = 3.2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(i)
    return (0.3 * np.sin(2 * np.pi * (180.0 + 45.0 * i) * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def _task(root: Path, train: dict[str, int], valid: int = 1, test: int = 1) -> Path:
    """A multiclass task with ``train[c]`` training items of class ``c`` and ``valid``/``test`` items per class."""
    (root / "audio").mkdir(parents=True)
    rows, i = [], 0
    for split, counts in (("train", train), ("valid", dict.fromkeys(train, valid)), ("test", dict.fromkeys(train, test))):
        for c, n in counts.items():
            for _ in range(n):
                sf.write(root / "audio" / f"i{i}.wav", _tone(i), SR)
                rows.append({"id": f"i{i}", "path": f"audio/i{i}.wav", "split": split, "label": c, "duration": 3.2})
                i += 1
    write_task(root, {"name": root.name, "kind": "multiclass", "vocabulary": sorted(train)}, rows, check_audio=False)
    return root


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _task(tmp_path_factory.mktemp("ft") / "tones", {"a": 5, "b": 3, "c": 1})


@pytest.fixture(scope="module")
def start(task: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pretraining checkpoint to fine-tune from (3 supervised steps on the task)."""
    out = tmp_path_factory.mktemp("ck") / "pre"
    cfg = load_pretrain({"model": "vgg", "objective": "supervised", "task": str(task), "steps": 3, "batch_size": 4,
                         "checkpoint_every": 3, "val_every": 0, "augment_fraction": 0.0, "minutes": "all",
                         "out": str(out)},
                        preset="smoke")
    return pretrain(cfg)


def _finetune(task: Path, start: Path, out: Path, unfreeze: object, **kw: object) -> Path:
    cfg = load_finetune({"task": str(task), "weights": str(start), "unfreeze": unfreeze, "steps": 3,
                         "batch_size": 4, "lr": 1e-2, "checkpoint_every": 3, "out": str(out), **kw}, preset="smoke")
    return finetune(cfg)


# ------------------------------------------------------------------------------------------ blocks


@pytest.mark.parametrize("name", ENCODERS)
def test_every_parameter_is_in_exactly_one_block_one_block_per_layer(name: str) -> None:
    enc = models.get(name, size="small")
    blocks = enc.layer_blocks()
    assert len(blocks) == len(enc.layer_names)
    for pname, _ in list(enc.named_parameters()) + list(enc.named_buffers()):
        hits = [i for i, pre in enumerate(blocks) if any(pname == p or pname.startswith(p + ".") for p in pre)]
        assert len(hits) == 1, (pname, hits)
    # the last block holds the last layer's own parameters: unfreeze 1 leaves something to train
    assert any(enc.block_of(p) == len(blocks) - 1 for p, _ in enc.named_parameters())


# ------------------------------------------------------------------------------------------ budgets


def test_per_class_budget_takes_exactly_n_per_class(task: Path) -> None:
    d = TrainData(task=task, kind="logmel", labels=True, per_class=2, val_split="valid", batch_size=4,
                  augment_fraction=0.0, progress=False)
    # written: a×5, b×3, c×1 in train → 2, 2 and the only c (counted by hand)
    assert Counter(d.tracks["label"]) == {"a": 2, "b": 2, "c": 1}
    assert set(d.tracks["split"]) == {"train"}
    assert Counter(d.val_tracks["label"]) == {"a": 1, "b": 1, "c": 1} and set(d.val_tracks["split"]) == {"valid"}
    d3 = TrainData(task=task, kind="logmel", labels=True, per_class=3, val_split="valid", batch_size=4,
                   augment_fraction=0.0, progress=False)
    assert Counter(d3.tracks["label"]) == {"a": 3, "b": 3, "c": 1}
    assert set(d.tracks["id"]) <= set(d3.tracks["id"])  # nested


# ------------------------------------------------------------------------------------------ training


def test_starting_weights_are_the_checkpoints_at_step_0(task: Path, start: Path, tmp_path: Path) -> None:
    from musicrep.train.trainer import build

    cfg = load_finetune({"task": str(task), "weights": str(start), "steps": 1, "out": str(tmp_path / "o")},
                        preset="smoke")
    enc = build(cfg).objective.encoder
    saved = load_file(str(start / "weights.safetensors"))
    state = enc.state_dict()
    assert set(saved) == set(state)
    assert all(torch.equal(saved[k], state[k]) for k in saved)


def test_unfreeze_2_trains_only_the_last_two_blocks(task: Path, start: Path, tmp_path: Path) -> None:
    out = _finetune(task, start, tmp_path / "last2", 2, per_class=2)
    before, after = load_file(str(start / "weights.safetensors")), load_file(str(out / "weights.safetensors"))
    n_blocks = 5  # small VGG: block1..block5; unfreeze 2 → blocks.3 and blocks.4 train
    frozen = {k for k in before if int(k.split(".")[1]) < n_blocks - 2}
    assert frozen and frozen == frozen_names(models.get("vgg", size="small"), 2)
    for k in frozen:  # parameters and BatchNorm statistics alike: the checkpoint's, bit for bit
        assert torch.equal(before[k], after[k]), k
    trained = [k for k in before if k not in frozen and before[k].is_floating_point()]
    changed = [k for k in trained if not torch.equal(before[k], after[k])]
    weights = [k for k in trained if k.endswith("weight")]
    assert set(weights) <= set(changed)
    assert (out / HEAD_WEIGHTS).is_file()


def test_unfreeze_all_changes_every_block(task: Path, start: Path, tmp_path: Path) -> None:
    out = _finetune(task, start, tmp_path / "all", "all")
    before, after = load_file(str(start / "weights.safetensors")), load_file(str(out / "weights.safetensors"))
    for i in range(5):
        assert not torch.equal(before[f"blocks.{i}.0.weight"], after[f"blocks.{i}.0.weight"]), i


def test_finetuned_checkpoint_is_a_representation_and_a_classifier(task: Path, start: Path, tmp_path: Path) -> None:
    out = _finetune(task, start, tmp_path / "rep", 1)
    rep = models.get("vgg", weights=str(out))
    saved = load_file(str(out / "weights.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in rep.state_dict().items())
    assert rep.id != models.get("vgg", weights=str(start)).id
    emb = rep.embed(torch.from_numpy(_tone(0))[None])
    assert emb.shape[:2] == (1, 5)
    pred = load_predictor(out)
    assert pred.vocabulary == ["a", "b", "c"] and pred.kind == "multiclass"
    p = pred.scores(torch.from_numpy(_tone(1)[: 3 * SR])[None])
    assert p.shape == (1, 3) and math.isclose(float(p.sum()), 1.0, rel_tol=1e-5)


def test_bad_settings_name_the_key(task: Path, tmp_path: Path) -> None:
    with pytest.raises(PretrainConfigError, match="unfreeze"):
        load_finetune({"task": str(task), "unfreeze": "some", "out": str(tmp_path)}, preset="smoke")
    with pytest.raises(PretrainConfigError, match="per_class or minutes"):
        load_finetune({"task": str(task), "per_class": 2, "minutes": 3, "out": str(tmp_path)}, preset="smoke")
    with pytest.raises(PretrainConfigError, match="pool"):
        load_finetune({"task": str(task), "pool": str(task), "out": str(tmp_path)}, preset="smoke")
    with pytest.raises(ValueError, match="from 0 to 5"):
        frozen_names(models.get("vgg", size="small"), 9)


# ------------------------------------------------------------------------------------------ the study


def test_study_smoke_preset_adds_rows_for_each_method_and_two_budgets(tmp_path: Path) -> None:
    from musicrep.studies import STUDIES, load_study

    cfg = load_study("finetune", preset="smoke", out=tmp_path / "st")
    STUDIES["finetune"].run(cfg, progress=False)
    res = read_results(tmp_path / "st" / "results.csv")
    assert set(res["study"]) == {"finetune"}
    assert set(res["method"]) == {"finetune-all", "finetune-last2", "probe", "knn"}
    for method, g in res.groupby("method"):
        assert sorted(g["labelled_per_class"].astype(int).unique()) == [1, 2], method
    # every method of a budget trained on the same number of labelled items
    per_budget = res.groupby("labelled_per_class")["n_train"].nunique()
    assert (per_budget == 1).all()
    tuned = res[res["method"].str.startswith("finetune")]
    assert set(tuned["probe"]) == {"head"} and tuned["valid_value"].notna().all()
    from musicrep.report import write_report

    write_report([tmp_path / "st"], tmp_path / "st" / "report.html")
    md = (tmp_path / "st" / "report.md").read_text(encoding="utf-8")
    assert "## Fine-tuning" in md and "| finetune-last2 |" in md and "| knn |" in md
    before = len(res)  # a re-run trains nothing and adds nothing
    STUDIES["finetune"].run(cfg, progress=False)
    assert len(read_results(tmp_path / "st" / "results.csv")) == before

"""The shipped model ``musicrep-small``: loads offline by name, checksum-verified, is trained (not its twin),
has a card, and its recipe preset is the config that trained it."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import musicrep
from musicrep import models
from musicrep.models import WeightsError
from musicrep.models.shipped import folder, model_card


def test_load_by_name_offline_gives_the_checkpoint_encoder() -> None:
    rep = musicrep.load("musicrep-small")
    d = folder("musicrep-small")
    size = (d / "weights.safetensors").stat().st_size
    assert size <= 20 * 2**20
    # the side checksum is the file's SHA-256 (computed here with hashlib, not musicrep)
    assert (d / "weights.safetensors.sha256").read_text().split()[0] == hashlib.sha256(
        (d / "weights.safetensors").read_bytes()).hexdigest()
    assert rep.id == models.get("vgg", weights=str(d)).id
    assert "musicrep-small" in models.names()


def test_it_is_trained_not_its_random_twin() -> None:
    trained, twin = musicrep.load("musicrep-small"), models.get("vgg", size="small", seed=0)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 48000)).astype(np.float32)) * 0.1
    with torch.no_grad():
        a, b = trained.forward_layers(x)[-1], twin.forward_layers(x)[-1]
    assert a.shape == b.shape and not torch.allclose(a, b)
    assert trained.id != twin.id


def test_a_corrupted_copy_is_refused_with_the_file_named(tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(folder("musicrep-small"), copy)
    w = copy / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"weights\.safetensors: checksum mismatch"):
        models.get("vgg", weights=str(copy))


def test_card_and_reps_show() -> None:
    from typer.testing import CliRunner

    from musicrep.cli import app

    card = model_card("musicrep-small")
    assert card is not None and "## Scores" in card and "random twin" in card and "licence" in card.lower()
    assert model_card("vgg") is None
    out = CliRunner().invoke(app, ["reps", "show", "musicrep-small"])
    assert out.exit_code == 0, out.output
    assert "134,384 parameters" in out.output and "Model card" in out.output
    bad = CliRunner().invoke(app, ["reps", "show", "no-such-rep"])
    assert bad.exit_code == 2 and "unknown representation" in bad.output


def test_recipe_preset_is_the_config_that_trained_it(tmp_path: Path) -> None:
    from musicrep.train.config import load_pretrain

    trained = yaml.safe_load((folder("musicrep-small") / "training-config.yaml").read_text())
    recipe = load_pretrain(preset="musicrep-small", pool=tmp_path).model_dump(mode="json", by_alias=True)
    # the device is pinned to the CPU in the recipe (a GPU gives other numbers); paths are the user's
    differ = {k for k in trained if k != "device" and recipe.get(k) != trained[k]}
    assert not differ, {k: (trained[k], recipe.get(k)) for k in differ}
    assert recipe["device"] == "cpu"


def test_weights_may_name_the_shipped_model(tmp_path: Path) -> None:
    """`--weights musicrep-small` (finetune, embed, index) means the shipped checkpoint, not a file here."""
    from musicrep.train.config import load_finetune

    assert models.get("vgg", weights="musicrep-small").id == musicrep.load("musicrep-small").id
    cfg = load_finetune(preset="smoke", task=tmp_path, weights="musicrep-small", base=tmp_path)
    assert models.get(cfg.model, **cfg.encoder_config).id == musicrep.load("musicrep-small").id

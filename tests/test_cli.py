"""The command line as a user meets it: user errors as one message (exit 2, ``--debug`` for the traceback),
and ``musicrep embed`` giving the numbers the embedding store holds for the same file and window."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from typer.testing import CliRunner

from musicrep import models
from musicrep.cli import USER_ERRORS, app
from musicrep.embed import WindowConfig, extract

SR = 16_000
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _noise(path: Path, seconds: float, seed: int = 0) -> Path:
    y = 0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))
    sf.write(path, np.clip(y, -1, 1).astype(np.float32), SR, subtype="FLOAT")
    return path


def _bad_task(tmp: Path) -> tuple[list[str], str]:
    """A config whose task has a label (``middle``) outside its vocabulary: evaluate must name items.csv."""
    task = tmp / "task"
    (task / "audio").mkdir(parents=True)
    rows = ["id,path,split,label,duration,group"]
    for i, (split, label) in enumerate([("train", "low"), ("train", "middle"), ("valid", "high"), ("test", "low")]):
        _noise(task / "audio" / f"a{i}.wav", 1.0, seed=i)
        rows.append(f"a{i},audio/a{i}.wav,{split},{label},1.0,a{i}")
    (task / "items.csv").write_text("\n".join(rows) + "\n")
    (task / "task.yaml").write_text(yaml.safe_dump({"name": "tones", "kind": "multiclass",
                                                    "vocabulary": ["low", "high"], "metrics": ["accuracy"]}))
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"out": str(tmp / "out"), "tasks": [str(task)],
                                   "representations": [{"name": "mfcc"}], "probes": ["linear"]}))
    return ["evaluate", str(cfg)], "items.csv"


def _unreadable_audio(tmp: Path) -> tuple[list[str], str]:
    bad = tmp / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    return ["features", str(bad), "--out", str(tmp / "f.npy")], "broken.wav"


def _unknown_config_key(tmp: Path) -> tuple[list[str], str]:
    cfg = tmp / "typo.yaml"
    cfg.write_text(yaml.safe_dump({"out": str(tmp / "out"), "tasks": [], "representations": [{"name": "mfcc"}],
                                   "seedz": [0]}))
    return ["evaluate", str(cfg)], "typo.yaml"


def _missing_weights(tmp: Path) -> tuple[list[str], str]:
    wav = _noise(tmp / "song.wav", 1.0)
    return ["embed", str(wav), "--rep", "vgg", "--size", "small", "--weights", str(tmp / "gone.safetensors"),
            "--mean", str(tmp / "m.npy")], "gone.safetensors"


CASES = {"bad-task": _bad_task, "unreadable-audio": _unreadable_audio, "unknown-config-key": _unknown_config_key,
         "missing-weights": _missing_weights}


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("case", list(CASES))
def test_user_errors_are_one_message_and_exit_2(tmp_path: Path, case: str) -> None:
    args, names = CASES[case](tmp_path)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    err = _lines(res.stderr)
    assert 1 <= len(err) <= 2, res.stderr
    assert names in res.stderr and "Traceback" not in res.output
    # --debug lets the same error through, with its type, for the traceback
    res = CliRunner().invoke(app, ["--debug", *args])
    assert res.exit_code != 2 and res.exception is not None and names in str(res.exception)


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "MUSICREP_DEBUG"}
    environ.update(PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    return subprocess.run([sys.executable, "-m", "musicrep.cli", *args], capture_output=True, text=True,
                          timeout=300, env=environ)


def test_debug_shows_the_traceback_from_the_real_entry_point(tmp_path: Path) -> None:
    args, names = _bad_task(tmp_path)
    plain = _run(args)
    assert plain.returncode == 2 and len(_lines(plain.stderr)) <= 2 and names in plain.stderr
    assert "Traceback" not in plain.stderr
    for debug in (_run(["--debug", *args]), _run(args, MUSICREP_DEBUG="1")):
        assert debug.returncode == 1 and "Traceback" in debug.stderr and "TaskError" in debug.stderr


def test_user_error_registry_names_real_error_classes() -> None:
    for name in USER_ERRORS:
        module, _, cls = name.partition(":")
        assert issubclass(getattr(importlib.import_module(module), cls), Exception), name


@pytest.mark.parametrize(("rep", "opts", "window"), [
    ("mfcc", [], WindowConfig()),  # the store's default: 3 s every 2 s, tail window end-aligned
    ("vgg", ["--size", "small", "--seed", "0"], WindowConfig()),
    ("mfcc", ["--window", "1.5", "--hop", "0.5", "--no-pad"], WindowConfig(window_seconds=1.5, hop_seconds=0.5,
                                                                          pad=False)),
], ids=["mfcc", "vgg-small", "mfcc-own-window"])
def test_embed_cli_agrees_with_the_store(tmp_path: Path, rep: str, opts: list[str], window: WindowConfig) -> None:
    wav = _noise(tmp_path / "song.wav", 7.3)  # windows at 0, 2, 4 s and a tail at 4.3 s
    mean_f, frames_f = tmp_path / "mean.npy", tmp_path / "frames.npy"
    res = CliRunner().invoke(app, ["embed", str(wav), "--rep", rep, *opts, "--mean", str(mean_f),
                                   "--out", str(frames_f)])
    assert res.exit_code == 0, res.output
    r = models.get(rep, **({"size": "small", "seed": 0} if rep == "vgg" else {}))
    stored = extract(r, [wav], tmp_path / "store", window.model_copy(update={"frames": True}), progress=False)
    means, per_window = stored.store.get(stored.keys, frames=True)  # type: ignore[arg-type]
    assert per_window is not None
    got = np.load(mean_f)
    assert got.shape == means[0].shape == (r.n_layers, max(r.layer_dims))
    assert np.allclose(got, means[0], atol=1e-5)
    # the frames file holds the same windows in the same order: each window's frame mean is the store's
    frames = np.load(frames_f)
    n_win = per_window[0].shape[0]
    by_window = frames.reshape(r.n_layers, n_win, -1, frames.shape[-1]).mean(2).transpose(1, 0, 2)
    assert np.allclose(by_window, per_window[0], atol=1e-5)

"""musicrep data deform: a deformed copy of a task is a task folder that says what was done to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from musicrep.cli import app
from musicrep.data.deform import deform_task
from musicrep.data.task import Task, write_task

SR = 16_000


def make_task(root: Path) -> Path:
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, split in enumerate(["train", "train", "valid", "test", "test"]):
        t = np.arange(SR) / SR
        sf.write(root / "audio" / f"{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)
                                               + 0.01 * rng.standard_normal(SR)).astype(np.float32), SR)
        rows.append(dict(id=f"song {i}", path=f"audio/{i}.wav", split=split, label="ab"[i % 2], duration=1.0))
    write_task(root, dict(name="tones", kind="multiclass", vocabulary=["a", "b"]), rows)
    return root


def test_deformed_test_split_is_a_task_at_the_requested_snr(tmp_path: Path) -> None:
    src = make_task(tmp_path / "src")
    new = deform_task(src, "noise:white@snr=10", tmp_path / "noisy", splits=("test",))
    old = Task.load(src)
    assert new.name == "tones+noise:white@snr=10"
    assert new.spec.provenance["deformation"] == "noise:white@snr=10"
    assert list(new.items["id"]) == list(old.items["id"]) and list(new.items["label"]) == list(old.items["label"])
    for (_, a), (_, b) in zip(old.items.iterrows(), new.items.iterrows()):
        x, _ = sf.read(old.audio_path(a), dtype="float64")
        y, _ = sf.read(new.audio_path(b), dtype="float64")
        assert len(y) == len(x)
        if a["split"] == "test":  # deformed, at 10 dB SNR (16-bit FLAC rounding is far below the noise)
            assert abs(10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2)) - 10.0) < 0.1
        else:  # untouched: the same file
            assert new.audio_path(b) == old.audio_path(a)


def test_deform_is_byte_identical_for_a_seed_and_runs_from_the_cli(tmp_path: Path) -> None:
    src = make_task(tmp_path / "src")
    r1 = CliRunner().invoke(app, ["data", "deform", str(src), "--with", "mp3@kbps=64", "--out", str(tmp_path / "a")])
    assert r1.exit_code == 0, r1.output
    deform_task(src, "mp3@kbps=64", tmp_path / "b")
    for f in sorted((tmp_path / "a" / "audio").iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / "audio" / f.name).read_bytes()
    assert (tmp_path / "a" / "items.csv").read_text() == (tmp_path / "b" / "items.csv").read_text()

"""HEAR API both ways. The hear-validator 2021.0.2 rules (it imports tensorflow, so it cannot run in this
venv) are restated here: the model is a torch Module with an allowed ``sample_rate`` and int embedding
sizes; 16 × 2 s of white noise → float32 ``[16, T, size]`` with ``[16, T]`` timestamps at regular (±1 ms)
intervals; 8 × 3.74 s → float32 ``[8, size]``. Plus batch independence, timestamp values, windowing and
the round trip musicrep → HEAR → musicrep."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from musicrep import hear, models
from musicrep.models.base import Representation

CASES = [
    ("mert", {"size": "tiny", "random_init": True}),
    ("essentia-hpcp", {}),
    ("crepe", {"capacity": "tiny", "hop": 800}),
]


def _load(rep: str, cfg: dict) -> hear.HearModel:
    ok, why = models.entry(rep).available() if rep in models.names() else (False, "absent")
    if not ok or (rep == "essentia-hpcp" and importlib.util.find_spec("essentia") is None):
        pytest.skip(why)
    return hear.load_model("", rep=rep, **cfg)


@pytest.mark.parametrize(("rep", "cfg"), CASES, ids=[c[0] for c in CASES])
def test_validator_rules(rep: str, cfg: dict) -> None:
    model = _load(rep, cfg)
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate in (16_000, 22_050, 44_100, 48_000)
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
    torch.manual_seed(0)
    audio = torch.rand(16, int(2.0 * model.sample_rate)) * 2 - 1
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert emb.dtype == torch.float32 and emb.shape[0] == 16
    assert emb.shape[:2] == ts.shape and emb.shape[2] == model.timestamp_embedding_size
    diff = torch.diff(ts)
    assert torch.all(torch.abs(diff - diff.mean()) < 1e-3)  # regular intervals
    assert torch.all(ts >= 0) and torch.all(ts <= 2000.0 + 1e-3)
    assert torch.isfinite(emb).all()
    scene = hear.get_scene_embeddings(torch.rand(8, int(3.74 * model.sample_rate)) * 2 - 1, model)
    assert scene.dtype == torch.float32 and scene.shape == (8, model.scene_embedding_size)
    # batch independence: item 3 alone equals item 3 in the batch
    alone, _ = hear.get_timestamp_embeddings(audio[3:4], model)
    torch.testing.assert_close(alone[0], emb[3], atol=1e-5, rtol=1e-4)


def test_timestamps_and_scene_follow_the_representation() -> None:
    model = _load("crepe", {"capacity": "tiny", "hop": 800})
    audio = torch.randn(2, 16_000) * 0.1
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    rep = model.rep
    assert emb.shape[1] == 1 + 16_000 // 800  # centred frames: first at 0 ms, last at the clip's end
    np.testing.assert_allclose(ts[0].numpy(), np.arange(emb.shape[1]) * 50.0)
    direct = rep(audio)
    concat = torch.cat([direct[:, i, :, :d] for i, d in enumerate(rep.layer_dims)], dim=-1)
    torch.testing.assert_close(emb, concat)
    torch.testing.assert_close(hear.get_scene_embeddings(audio, model), concat.mean(1))
    last = hear.HearModel(rep, layers="last")
    assert last.timestamp_embedding_size == rep.layer_dims[-1] == 360
    named = hear.HearModel(rep, layers=["conv1", -1])
    assert named.timestamp_embedding_size == 128 + 360
    with pytest.raises(KeyError, match="conv9"):
        hear.HearModel(rep, layers=["conv9"])


class _Windowed(Representation):
    """Fixed-window toy: 1 s windows, 4 frames per window, feature = mean of each quarter of the window."""

    name = "windowed-toy"
    sample_rate = 16_000
    frame_rate = 4.0
    window_seconds = 1.0
    layer_names = ["quarters"]
    layer_dims = [1]

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        assert audio.shape[1] == 16_000, "must be cut into 1 s windows"
        return audio.reshape(audio.shape[0], 1, 4, 4000, 1).mean(3)


def test_fixed_window_representations_see_windows() -> None:
    model = hear.HearModel(_Windowed())
    audio = torch.arange(2 * 40_000, dtype=torch.float32).reshape(2, 40_000)  # 2.5 s
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    # 2 windows × 4 frames, then the tail window cut end-aligned (1.5–2.5 s): its frames past 2 s
    assert emb.shape == (2, 10, 1)
    np.testing.assert_allclose(ts[0].numpy(), (np.arange(10) + 0.5) * 250.0)
    np.testing.assert_allclose(emb[0, :, 0].numpy(), np.arange(10) * 4000 + 1999.5)


@pytest.mark.parametrize(("samples", "n_frames"), [(36_800, 9), (35_200, 8), (9_600, 2)])
def test_fixed_window_tail_frames_are_real_audio_on_the_grid(samples: int, n_frames: int) -> None:
    """The one cutter's tail window, moved back onto the 250 ms frame grid: 2.3 s → windows at 0, 1 and
    1.25 s, whose last frame (2–2.25 s) is the 9th; 2.2 s → the grid tail is the 1 s window again, so the
    2–2.2 s remainder makes no frame (a frame there would be part silence); 0.6 s → one padded window,
    the frames centred inside the clip. Every frame is the mean of its own quarter second of the ramp."""
    model = hear.HearModel(_Windowed())
    emb, ts = hear.get_timestamp_embeddings(torch.arange(samples, dtype=torch.float32)[None], model)
    assert emb.shape == (1, n_frames, 1)
    np.testing.assert_allclose(ts[0].numpy(), (np.arange(n_frames) + 0.5) * 250.0)
    np.testing.assert_allclose(emb[0, :, 0].numpy(), np.arange(n_frames) * 4000 + 1999.5)


def test_round_trip_through_hear_module() -> None:
    """musicrep rep → this HEAR module → the `hear` representation gives back the same numbers."""
    _load("crepe", {"capacity": "tiny"})
    wrapped = models.get("hear", module="musicrep.hear", probe_seconds=0.5,
                         load_kwargs={"rep": "crepe", "capacity": "tiny", "hop": 400, "layers": "last"}, scene=True)
    assert wrapped.frame_rate == pytest.approx(40.0) and wrapped.layer_names == ["timestamp", "scene"]
    x = torch.randn(2, 8000) * 0.1
    got = wrapped(x)
    direct = models.get("crepe", capacity="tiny", hop=400)(x)
    assert got.shape == (2, 2, direct.shape[2], 360)
    torch.testing.assert_close(got[:, 0], direct[:, -1, :, :360])
    torch.testing.assert_close(got[:, 1], direct[:, -1, :, :360].mean(1, keepdim=True).expand_as(got[:, 1]))
    other = models.get("hear", module="musicrep.hear", probe_seconds=0.5,
                       load_kwargs={"rep": "crepe", "capacity": "tiny", "hop": 800, "layers": "last"})
    assert wrapped.id != other.id and other.frame_rate == pytest.approx(20.0)


def test_not_a_hear_module() -> None:
    with pytest.raises(AttributeError, match="json.*load_model"):
        models.get("hear", module="json")
    with pytest.raises(ImportError, match="no_such_hear_module"):
        models.get("hear", module="no_such_hear_module")


def test_load_model_with_a_file_in_a_fresh_process(tmp_path) -> None:
    """``load_model(path, rep="torchscript")`` must pass ``path=``, even when nothing imported the model
    families beforehand (a fresh interpreter, as the HEAR harness runs it)."""
    import subprocess
    import sys

    class Frames(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], -1, 400)

    f = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(Frames()), str(f))
    code = ("from musicrep import hear; import torch; "
            f"m = hear.load_model({str(f)!r}, rep='torchscript', frame_rate=40.0); "
            "e, t = hear.get_timestamp_embeddings(torch.zeros(1, 16000), m); print(tuple(e.shape))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "(1, 40, 400)"

"""Very short clips (issue 9, inputs point 3): a 50 ms file must give features, or one clear error.

Every front-end and every registered representation is run on 50 ms of audio at its own sample rate:
either it returns a finite ``[B, L, T, H]`` with ``T ≥ 1`` frames, or it raises the one short-clip
exception, :class:`musicrep.audio.ClipTooShortError`, naming the minimum duration in seconds. Expected
values come from librosa (MFCC deltas on few frames) and from hand-computed receptive fields.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import musicrep.models as M
from musicrep.audio import ClipTooShortError
from musicrep.cli import app
from musicrep.frontends import FRONTENDS, MFCC, delta_width_for, get_frontend
from musicrep.models.base import WeightsError

SR = 16_000
BLIP = 0.05  # seconds

#: How each representation is built here: the cheapest real configuration. Models that read local
#: weights are built as their seeded random twin (same architecture, same code path); ``hear`` wraps
#: musicrep's own HEAR module (which needs nothing installed).
BUILD: dict[str, dict] = {
    "mert": dict(size="tiny", random_init=True),
    "musicfm": dict(size="tiny", random_init=True),
    "muq": dict(size="tiny", random_init=True),
    "hear": dict(module="musicrep.hear", probe_seconds=0.5),
}
#: A user's own module (a TorchScript file, a Python class) decides what it accepts; nothing to test here.
USER_CODE = {"torchscript", "torch-module"}


def blip(n: int, seed: int = 0) -> np.ndarray:
    """A tone burst with a little noise, ``n`` samples at 16 kHz (deterministic)."""
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


# ------------------------------------------------------------------------------------------ front-ends


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_every_frontend_frames_a_50ms_clip(name: str) -> None:
    y = blip(int(BLIP * SR))
    with torch.inference_mode():
        out = get_frontend(name)(torch.from_numpy(y)[None])
    # librosa's centred framing on the zero-padded signal: 1 + 800 // 160 = 6 frames
    frames = librosa.util.frame(np.pad(y, 1024), frame_length=2048, hop_length=160).shape[1]
    assert out.ndim == 3 and out.shape[0] == 1 and out.shape[2] == frames == 6
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("n_frames", "width"), [(100, 9), (9, 9), (8, 7), (6, 5), (4, 3), (3, 3), (2, 0), (1, 0)])
def test_delta_width_narrows_to_the_frames_there_are(n_frames: int, width: int) -> None:
    assert delta_width_for(n_frames, 9) == width


def test_mfcc_of_a_50ms_clip_is_librosas_with_the_narrowed_delta_width() -> None:
    y = blip(int(BLIP * SR), seed=1)
    with torch.inference_mode():
        out = MFCC()(torch.from_numpy(y)[None])[0].numpy()
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, win_length=400, hop_length=160, n_mels=96,
                                         fmin=0.0, fmax=8000.0, htk=True, pad_mode="constant")
    m = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    assert m.shape[1] == 6
    ref = np.concatenate([m, librosa.feature.delta(m, width=5, order=1), librosa.feature.delta(m, width=5, order=2)])
    assert out.shape == ref.shape == (60, 6)
    np.testing.assert_allclose(out, ref, atol=2e-3 * np.abs(ref).max())


@pytest.mark.parametrize("n", [0, 1, 100, 160])
def test_mfcc_deltas_are_zero_below_three_frames(n: int) -> None:
    y = blip(n, seed=2)
    with torch.inference_mode():
        out = MFCC()(torch.from_numpy(y)[None])[0].numpy()
    assert out.shape == (60, 1 + n // 160) and np.isfinite(out).all()
    assert not out[20:].any()  # Δ and ΔΔ: no slope can be fitted on one or two frames


# ----------------------------------------------------------------------------------- representations


def _build(name: str):
    entry = M.entry(name)
    ok, why = entry.available()
    if not ok:
        pytest.skip(f"{name} not available here: {why}")
    if name in USER_CODE:
        pytest.skip(f"{name} runs a user's module; its own code sets what it accepts")
    if name in BUILD:
        return M.get(name, **BUILD[name])
    try:
        try:
            return M.get(name, size="small", seed=0)
        except (TypeError, ValueError):
            return M.get(name)  # representations without named sizes
    except WeightsError as exc:
        pytest.skip(f"{name} needs a local weights file: {exc}")


@pytest.mark.parametrize("name", [e.name for e in M.entries() if e.family != "test"])  # not other tests' stand-ins
def test_every_representation_embeds_50ms_or_names_its_minimum(name: str) -> None:
    rep = _build(name)
    n = int(round(BLIP * rep.sample_rate))
    t = np.arange(n) / rep.sample_rate
    x = torch.from_numpy(np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in (220.0, 440.0)]).astype(np.float32))
    try:
        with torch.inference_mode():
            out = rep.embed(x)
    except ClipTooShortError as exc:
        assert exc.min_seconds > BLIP and " s of audio" in str(exc) and name in str(exc)
        return
    assert out.ndim == 4 and out.shape[:2] == (2, rep.n_layers) and out.shape[3] == max(rep.layer_dims)
    assert out.shape[2] >= 1 and out.shape[2] == rep.n_frames(n)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "min_samples"), [
    ("mert", 40),  # tiny conv stack k=(10,3,3), s=(5,2,2): receptive field (((1-1)·2+3-1)·2+3-1)·5+10 = 40
    ("musicfm", 1025),  # reflect-padded 2048-point STFT: torch needs more than 1024 samples
    ("muq", 1025),
])
def test_models_with_a_minimum_raise_the_short_clip_error_below_it(name: str, min_samples: int) -> None:
    rep = M.get(name, **BUILD[name])
    with torch.inference_mode():
        assert rep.embed(torch.zeros(1, min_samples)).shape[2] >= 1
        with pytest.raises(ClipTooShortError, match=r"needs at least [0-9.]+ s of audio") as err:
            rep.embed(torch.zeros(1, min_samples - 1))
    assert err.value.min_seconds == pytest.approx(min_samples / rep.sample_rate)
    assert err.value.seconds == pytest.approx((min_samples - 1) / rep.sample_rate)


def test_short_clip_error_rounds_the_minimum_up() -> None:
    err = ClipTooShortError("musicfm", 1025 / 24_000, 0.01)  # 0.042708… s
    assert str(err).startswith("musicfm needs at least 0.0428 s of audio, got 0.01 s")


# ------------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_cli_features_on_a_50ms_file(tmp_path: Path, name: str) -> None:
    wav = tmp_path / "blip.wav"
    sf.write(wav, blip(int(BLIP * 44_100)), 44_100)  # resampled to 16 kHz on load: 800 samples
    out = tmp_path / "f.npy"
    r = CliRunner().invoke(app, ["features", str(wav), "--frontend", name, "--out", str(out)])
    assert r.exit_code == 0, r.output
    f = np.load(out)
    assert f.shape[1] == 6 and np.isfinite(f).all()


def test_cli_features_prints_one_line_naming_the_file_for_a_too_short_clip(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A front-end that refuses a clip: the CLI says which file and the minimum, with no traceback."""
    import musicrep.frontends as F

    class Picky(torch.nn.Module):
        frame_rate = 100.0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ClipTooShortError("picky", 0.5, x.shape[-1] / SR)

    monkeypatch.setattr(F, "get_frontend", lambda name, **kw: Picky())
    wav = tmp_path / "blip.wav"
    sf.write(wav, blip(int(BLIP * SR)), SR)
    r = CliRunner().invoke(app, ["features", str(wav), "--frontend", "mfcc", "--out", str(tmp_path / "f.npy")])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "blip.wav" in lines[0] and "0.5 s" in lines[0] and "Traceback" not in r.output

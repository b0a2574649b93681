"""Front-ends agree with librosa given identical parameters, batch cleanly and keep librosa's framing."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from musicrep.cli import app
from musicrep.frontends import CQT, MFCC, Chroma, LogMel, STFTPower, deltas, get_frontend

SR = 16_000
TO_DB = 10.0 / np.log(10.0)  # natural log → dB


def music_like(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Harmonic tones with vibrato and changing notes over coloured noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for i, f0 in enumerate([196.0, 261.6, 329.6, 440.0]):
        env = np.clip(np.sin(np.pi * (t - i * 0.5) / seconds), 0, None)
        phase = 2 * np.pi * f0 * t + 0.3 * np.sin(2 * np.pi * 5 * t)
        for h in range(1, 8):
            y += env * 0.2 / h * np.sin(h * phase)
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, mode="same")
    return (0.8 * y / np.abs(y).max() + 0.05 * noise).astype(np.float32)


@pytest.fixture(scope="module")
def y() -> np.ndarray:
    return music_like()


def ref_mel(y: np.ndarray, **kw: object) -> np.ndarray:
    params = dict(sr=SR, n_fft=2048, win_length=400, hop_length=160, n_mels=96, fmin=0.0, fmax=8000.0, htk=True,
                  power=2.0, center=True, pad_mode="constant")
    params.update(kw)
    return librosa.feature.melspectrogram(y=y, **params)


def test_logmel_matches_librosa_within_001_db(y: np.ndarray) -> None:
    ours = LogMel()(torch.from_numpy(y))[0].numpy()
    ref = np.log(ref_mel(y) + 1e-6)
    assert ours.shape == ref.shape == (96, 1 + len(y) // 160)
    assert np.max(np.abs(ours - ref)) * TO_DB <= 0.01


@pytest.mark.parametrize("signal", ["sine", "chirp", "tone_over_faint_noise", "silence_then_tone"])
def test_logmel_exact_on_high_dynamic_range_signals(signal: str) -> None:
    """Clean tones leave most mel bands 100+ dB below the peak. The default LogMel reaches its filter
    outputs through an 800-point FFT (see ``_FilteredSpectrum``); any leak of a loud bin into quiet bands
    (as a float32 version of that route showed: up to 5 dB) would break the 0.01 dB agreement here."""
    t = np.arange(3 * SR) / SR
    y = {
        "sine": 0.9 * np.sin(2 * np.pi * 440 * t),
        "chirp": 0.9 * np.sin(2 * np.pi * (50 * t + 600 * t**2)),
        "tone_over_faint_noise": 0.9 * np.sin(2 * np.pi * 100 * t) + 1e-4 * np.random.default_rng(0).standard_normal(len(t)),
        "silence_then_tone": np.where(t < 1.5, 0.0, 0.5 * np.sin(2 * np.pi * 1000 * t)),
    }[signal].astype(np.float32)
    mel = LogMel()
    assert mel.n_short == 800  # the short route is the one under test
    ours = mel(torch.from_numpy(y))[0].numpy()
    ref = np.log(ref_mel(y) + 1e-6)
    assert np.max(np.abs(ours - ref)) * TO_DB <= 0.01
    assert (mel.mel_power(torch.from_numpy(y)) >= 0).all()


@pytest.mark.parametrize("n", [SR, SR + 1, SR + 159, 3 * SR - 7, 399, 50])
def test_logmel_frame_count_is_librosas(n: int) -> None:
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    ours = LogMel()(torch.from_numpy(x))[0].numpy()
    ref = np.log(ref_mel(x) + 1e-6)
    assert ours.shape[1] == 1 + n // 160 == ref.shape[1]
    assert np.max(np.abs(ours - ref)) * TO_DB <= 0.01


def test_logmel_every_parameter_configurable(y: np.ndarray) -> None:
    m = LogMel(sample_rate=SR, n_mels=40, fmin=50.0, fmax=6000.0, window_seconds=0.032, hop_seconds=0.016,
               n_fft=1024, htk=False, norm=None, power=1.0, eps=1e-3)
    ours = m(torch.from_numpy(y))[0].numpy()
    ref = np.log(ref_mel(y, n_mels=40, fmin=50.0, fmax=6000.0, win_length=512, hop_length=256, n_fft=1024,
                         htk=False, norm=None, power=1.0) + 1e-3)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) * TO_DB <= 0.01
    assert m.frame_rate == pytest.approx(62.5)


def test_logmel_batch_equals_items_and_silence_is_finite(y: np.ndarray) -> None:
    z = np.zeros_like(y)
    batch = LogMel()(torch.from_numpy(np.stack([y, z, y[::-1].copy()])))
    single = LogMel()(torch.from_numpy(y[::-1].copy()))
    torch.testing.assert_close(batch[2], single[0])
    assert torch.isfinite(batch).all()
    assert torch.allclose(batch[1], torch.full_like(batch[1], np.log(1e-6)))


def test_logmel_block_size_does_not_change_result(y: np.ndarray) -> None:
    a = LogMel()
    b = LogMel()
    b.stft.block_frames = 7
    torch.testing.assert_close(a(torch.from_numpy(y)), b(torch.from_numpy(y)))


def test_stft_power_matches_librosa_stft(y: np.ndarray) -> None:
    ours = STFTPower(n_fft=1024, win_length=600, hop_length=200)(torch.from_numpy(y))[0].numpy()
    ref = np.abs(librosa.stft(y, n_fft=1024, win_length=600, hop_length=200, pad_mode="constant")) ** 2
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-3 * ref.max())


def test_chroma_matches_librosa(y: np.ndarray) -> None:
    # chroma is max-normalised to [0, 1]; float32 FFTs agree to ~1e-6, so 1e-4 leaves a wide margin
    ours = Chroma()(torch.from_numpy(y))[0].numpy()
    ref = librosa.feature.chroma_stft(y=y, sr=SR, n_fft=2048, hop_length=160, tuning=0.0, pad_mode="constant")
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-4


def test_mfcc_with_deltas_matches_librosa(y: np.ndarray) -> None:
    # MFCCs are O(100) dB-scale numbers; 1e-3 absolute is float32 rounding of the DCT of ~96 dB values
    ours = MFCC(n_mfcc=20, n_deltas=2)(torch.from_numpy(y))[0].numpy()
    m = librosa.feature.mfcc(S=librosa.power_to_db(ref_mel(y)), n_mfcc=20)
    ref = np.concatenate([m, librosa.feature.delta(m, order=1), librosa.feature.delta(m, order=2)])
    assert ours.shape == ref.shape == (60, 1 + len(y) // 160)
    assert np.max(np.abs(ours - ref)) < 1e-3 * max(1.0, np.abs(ref).max() / 100)


@pytest.mark.parametrize(("width", "order"), [(9, 1), (9, 2), (5, 1), (3, 1)])
def test_deltas_match_librosa(width: int, order: int) -> None:
    x = np.random.default_rng(0).standard_normal((3, 40)).astype(np.float32)
    ours = deltas(torch.from_numpy(x), width=width, order=order).numpy()
    np.testing.assert_allclose(ours, librosa.feature.delta(x, width=width, order=order), atol=1e-5)


def test_cqt_agrees_with_librosa(y: np.ndarray) -> None:
    # librosa.cqt down-samples octave by octave (with anti-aliasing filters); we correlate at full rate.
    # Same filters, so per-bin magnitudes agree closely except right at strong partials where
    # librosa's resampling filters leak; hence a median rather than a max bound.
    ours = CQT()(torch.from_numpy(y))[0].numpy()
    ref = np.abs(librosa.cqt(y, sr=SR, hop_length=160, fmin=librosa.note_to_hz("C1"), n_bins=84))
    assert ours.shape == ref.shape
    mid = slice(60, -60)  # away from the edges, where padding differs
    rel = np.abs(ours[:, mid] - ref[:, mid]) / (ref[:, mid] + 1e-3 * ref.max())
    assert np.median(rel) < 0.02
    assert np.corrcoef(np.log(ours[:, mid] + 1e-4).ravel(), np.log(ref[:, mid] + 1e-4).ravel())[0, 1] > 0.98


def test_cqt_peak_at_tone_frequency() -> None:
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    c = CQT()(torch.from_numpy(tone))[0].numpy()
    assert librosa.cqt_frequencies(84, fmin=librosa.note_to_hz("C1"))[c[:, 50].argmax()] == pytest.approx(440, rel=0.01)


def test_cqt_rejects_bins_above_nyquist() -> None:
    with pytest.raises(ValueError, match="Nyquist"):
        CQT(sample_rate=8_000, n_bins=84)


def test_registry_and_unknown_name() -> None:
    assert isinstance(get_frontend("logmel"), LogMel)
    with pytest.raises(KeyError, match="unknown front-end"):
        get_frontend("spectrogram9000")


@pytest.mark.parametrize(("name", "bins"), [("logmel", 96), ("cqt", 84), ("chroma", 12), ("mfcc", 60)])
def test_cli_features_writes_npy(tmp_path: Path, y: np.ndarray, name: str, bins: int) -> None:
    wav = tmp_path / "clip.wav"
    sf.write(wav, y, 44_100)  # resampled on load
    out = tmp_path / f"{name}.npy"
    result = CliRunner().invoke(app, ["features", str(wav), "--frontend", name, "--out", str(out)])
    assert result.exit_code == 0, result.output
    f = np.load(out)
    expected_frames = 1 + round(len(y) / 44_100 * SR) // 160
    assert f.shape == (bins, expected_frames) and f.dtype == np.float32 and np.isfinite(f).all()


def test_cli_features_bad_file_and_bad_frontend(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    r = CliRunner().invoke(app, ["features", str(bad), "--out", str(tmp_path / "x.npy")])
    assert r.exit_code == 2 and "bad.wav" in r.output and "not a readable audio file" in r.output  # user error
    r = CliRunner().invoke(app, ["features", str(bad), "--frontend", "nope", "--out", str(tmp_path / "x.npy")])
    assert r.exit_code == 2 and "unknown --frontend" in r.output

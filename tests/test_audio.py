"""musicrep.audio: every file gives correct audio or an AudioError naming it; batches finish."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from musicrep.audio import AudioError, find_audio, frame_signal, info, load, n_windows, stream
from musicrep.cli import app

SR = 16_000


def tone(seconds: float, sr: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def make_bad_corpus(root: Path) -> dict[str, Path]:
    """Bad (and borderline) files, built at run time."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["zero_bytes"] = root / "zero.wav"
    files["zero_bytes"].write_bytes(b"")
    files["one_byte"] = root / "one.wav"
    files["one_byte"].write_bytes(b"R")
    files["random_bytes"] = root / "random.wav"
    files["random_bytes"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    good = root / "_good.wav"
    sf.write(good, tone(1.0, SR), SR, subtype="PCM_16")
    raw = good.read_bytes()
    files["truncated_header"] = root / "trunc_header.wav"
    files["truncated_header"].write_bytes(raw[:30])
    files["truncated_data"] = root / "trunc_data.wav"
    files["truncated_data"].write_bytes(raw[: 44 + 2 * 8000])  # header claims 1 s, data holds 0.5 s
    good.unlink()
    files["nan"] = root / "nan.wav"
    y = tone(0.5, SR)
    y[100] = np.nan
    sf.write(files["nan"], y, SR, subtype="FLOAT")
    files["inf"] = root / "inf.flac.wav"
    y = tone(0.5, SR)
    y[-1] = np.inf
    sf.write(files["inf"], y, SR, subtype="FLOAT")
    files["eight_channels"] = root / "eight.wav"
    sf.write(files["eight_channels"], tone(0.5, SR, channels=8), SR)
    files["rate_192k"] = root / "hires.flac"
    sf.write(files["rate_192k"], tone(0.5, 192_000), 192_000)
    files["ten_ms"] = root / "short.wav"
    sf.write(files["ten_ms"], tone(0.01, SR), SR)
    files["zero_frames"] = root / "empty_data.wav"
    with wave.open(str(files["zero_frames"]), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
    return files


@pytest.fixture()
def bad(tmp_path: Path) -> dict[str, Path]:
    return make_bad_corpus(tmp_path / "bad")


ERRORS = {
    "zero_bytes": "empty",
    "one_byte": "not a readable audio file",
    "random_bytes": "not a readable audio file",
    "truncated_header": "not a readable audio file",
    "nan": "NaN",
    "inf": "NaN or infinite",
    "zero_frames": "zero-length",
}


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_bad_file_raises_audioerror_naming_file(bad: dict[str, Path], kind: str) -> None:
    with pytest.raises(AudioError) as err:
        load(bad[kind])
    assert str(bad[kind]) in str(err.value)
    assert ERRORS[kind] in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="not found"):
        load(tmp_path / "nope.wav")


def test_nan_error_says_where(bad: dict[str, Path]) -> None:
    with pytest.raises(AudioError, match="first at sample 100"):
        load(bad["nan"])


def test_truncated_data_gives_what_is_there(bad: dict[str, Path]) -> None:
    y = load(bad["truncated_data"])
    assert 0.45 * SR <= len(y) <= 0.55 * SR  # the 0.5 s that exist, not the 1 s the header claims
    assert np.isfinite(y).all()


def test_eight_channels_downmixed(bad: dict[str, Path]) -> None:
    y = load(bad["eight_channels"])
    assert y.ndim == 1 and len(y) == SR // 2
    np.testing.assert_allclose(y, tone(0.5, SR), atol=1e-4)
    multi = load(bad["eight_channels"], mono=False)
    assert multi.shape == (8, SR // 2)


def test_192k_resampled_keeps_pitch(bad: dict[str, Path]) -> None:
    y = load(bad["rate_192k"], sr=SR)
    assert abs(len(y) - SR // 2) <= 1
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    peak_hz = np.argmax(spec) * SR / len(y)
    assert abs(peak_hz - 440) < 4


def test_ten_ms_clip(bad: dict[str, Path]) -> None:
    y = load(bad["ten_ms"])
    assert y.shape == (160,) and y.dtype == np.float32


@pytest.mark.parametrize(("fmt", "subtype", "ext"), [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"),
                                                       ("OGG", "VORBIS", "ogg"), ("OGG", "OPUS", "opus"),
                                                       ("MP3", "MPEG_LAYER_III", "mp3")])
def test_formats_decode_to_16k_mono(tmp_path: Path, fmt: str, subtype: str, ext: str) -> None:
    path = tmp_path / f"x.{ext}"
    sr_in = 48_000 if subtype == "OPUS" else 44_100
    sf.write(path, tone(1.0, sr_in, 440.0, channels=2), sr_in, format=fmt, subtype=subtype)
    y = load(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - SR) < 0.06 * SR  # lossy codecs may add priming samples
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * SR / len(y) - 440) < 5


def test_offset_duration_match_slicing(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    y = np.random.default_rng(1).uniform(-0.5, 0.5, 3 * SR).astype(np.float32)
    sf.write(path, y, SR, subtype="FLOAT")
    np.testing.assert_array_equal(load(path, offset=1.0, duration=0.5), y[SR : SR + SR // 2])


def test_stream_equals_load_without_holding_file(tmp_path: Path) -> None:
    path = tmp_path / "long.flac"
    sr_in = 44_100
    y = tone(95.0, sr_in, 330.0, channels=2)
    sf.write(path, y, sr_in)
    whole = load(path)
    blocks = list(stream(path, block_seconds=10.0))
    assert len(blocks) >= 9
    assert max(len(b) for b in blocks) <= 10.5 * SR  # bounded memory: no block near the whole file
    joined = np.concatenate(blocks)
    assert abs(len(joined) - len(whole)) <= 2
    n = min(len(joined), len(whole))
    np.testing.assert_allclose(joined[1000 : n - 1000], whole[1000 : n - 1000], atol=2e-3)


def test_info_reads_header(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, tone(2.0, 22_050, channels=2), 22_050)
    i = info(path)
    assert (i.samplerate, i.channels, i.frames) == (22_050, 2, 44_100)
    assert i.duration == pytest.approx(2.0)


def test_frame_signal_no_padding_is_view_and_exact() -> None:
    x = np.arange(10, dtype=np.float32)
    f = frame_signal(x, sr=1, window_seconds=4, hop_seconds=2)
    np.testing.assert_array_equal(f, [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]])
    assert np.shares_memory(f, x)


def test_frame_signal_padding_keeps_tail() -> None:
    x = np.arange(1, 12, dtype=np.float32)  # 11 samples
    f = frame_signal(x, sr=1, window_seconds=4, hop_seconds=3, pad=True)
    assert f.shape == (4, 4)  # starts 0, 3, 6, 9 → last window holds samples 10, 11 + zeros
    np.testing.assert_array_equal(f[-1], [10, 11, 0, 0])
    assert frame_signal(x[:2], sr=1, window_seconds=4, hop_seconds=3).shape == (0, 4)
    assert frame_signal(x[:2], sr=1, window_seconds=4, hop_seconds=3, pad=True).shape == (1, 4)


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 9, 10, 11, 100])
def test_n_windows_matches_frames(n: int) -> None:
    x = np.ones(n, dtype=np.float32)
    for pad in (False, True):
        assert frame_signal(x, 1, 4, 3, pad=pad).shape[0] == n_windows(n, 4, 3, pad)


def test_find_audio_recurses_and_filters(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for p in ["a/x.wav", "a/b/y.FLAC", "a/notes.txt", "z.mp3"]:
        (tmp_path / p).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_audio(tmp_path)]
    assert found == ["a/b/y.FLAC", "a/x.wav", "z.mp3"]


def test_cli_info_batch_reports_every_bad_file_and_finishes(bad: dict[str, Path]) -> None:
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["info", str(bad["zero_bytes"].parent)])
    assert result.exit_code == 1
    out = result.output
    for kind in ERRORS:
        if kind in ("nan", "inf"):  # headers are valid: info succeeds, load reports the samples
            continue
        assert bad[kind].name in out, kind
    for good in ("eight.wav", "hires.flac", "short.wav", "trunc_data.wav"):
        assert good in out
    assert f"{len(ERRORS) - 2} failed" in out

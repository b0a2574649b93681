"""Deformations: exact SNR, same length, finite, deterministic per (item, deformation, seed), one string each."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from musicrep import augment as A

SR = 16_000


def music(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr", [30.0, 10.0, 0.0, -5.0])
def test_noise_is_mixed_at_the_requested_snr(colour: str, snr: float) -> None:
    x = music()
    y = A.apply(f"noise:{colour}@snr={snr:g}", x, SR, item_id="a")
    assert abs(snr_db(x, y) - snr) < 0.1


def test_pink_noise_falls_3_db_per_octave() -> None:
    from musicrep.augment.noise import coloured_noise

    n = coloured_noise(2**18, np.random.default_rng(0), "pink")
    p = np.abs(np.fft.rfft(n)) ** 2
    f = np.fft.rfftfreq(len(n), 1 / SR)
    band = lambda lo: p[(f >= lo) & (f < 2 * lo)].mean()  # noqa: E731
    assert 10 * np.log10(band(500) / band(1000)) == pytest.approx(3.0, abs=0.5)


def test_background_noise_from_a_folder_at_the_requested_snr(tmp_path) -> None:
    rng = np.random.default_rng(1)
    for i in range(3):
        sf.write(tmp_path / f"bg{i}.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
    x = music(seconds=2.5)  # longer than every recording: the recording is looped, never left silent
    y = A.apply(f"background@snr=10,dir={tmp_path}", x, SR, item_id="a")
    assert abs(snr_db(x, y) - 10.0) < 0.1
    assert np.abs(y - x)[-SR // 4:].mean() > 0  # the tail is noisy too
    with pytest.raises(A.DeformationError, match="needs dir"):
        A.apply("background@snr=10", x, SR)


ALL = ["noise:white@snr=10", "noise:pink@snr=20", "mp3@kbps=64", "ogg@kbps=64", "reverb@room=0.7",
       "pitch@semitones=1", "pitch@semitones=-1", "stretch@rate=1.2", "stretch@rate=0.8", "gain@db=-12",
       "eq@low_db=6,high_db=-6", "compress@threshold_db=-30,ratio=4", "distort@drive_db=20"]


@pytest.mark.parametrize("spec", ALL)
def test_every_deformation_keeps_length_is_finite_deterministic_and_has_one_string(spec: str) -> None:
    x = music(seconds=2.0)
    d = A.parse(spec)
    assert str(d) == spec and A.parse(str(d)) == d  # canonical string round-trips
    y = d(x, SR, item_id="item-1", seed=0)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.array_equal(y, d(x, SR, item_id="item-1", seed=0))
    assert not np.array_equal(y, x)


def test_random_choices_depend_on_item_and_seed_only() -> None:
    x = music(seconds=1.0)
    a = A.apply("noise:white@snr=10", x, SR, item_id="a", seed=0)
    assert not np.array_equal(a, A.apply("noise:white@snr=10", x, SR, item_id="b", seed=0))
    assert not np.array_equal(a, A.apply("noise:white@snr=10", x, SR, item_id="a", seed=1))


def test_gain_matches_the_decibel_formula() -> None:
    x = music(seconds=1.0)
    y = A.apply("gain@db=-12", x, SR)
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2) / np.mean(x.astype(np.float64) ** 2)) == pytest.approx(
        10 ** (-12 / 20), rel=1e-3)


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
def test_codecs_are_aligned_to_the_input(fmt: str) -> None:
    # an encoder delay left in would shift every window against its label: the best lag must be 0
    x = music(seconds=2.0)
    y = A.apply(f"{fmt}@kbps=128", x, SR)
    lags = range(-40, 41)
    corr = [np.dot(x[100 + k:-100 + k], y[100:-100]) for k in lags]
    assert lags[int(np.argmax(corr))] == 0
    assert snr_db(x, y) > 10  # and it is still the same music


def test_pitch_shift_moves_a_tone_by_a_semitone() -> None:
    t = np.arange(SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    y = A.apply("pitch@semitones=1", x, SR)
    spec = np.abs(np.fft.rfft(y[SR // 4: 3 * SR // 4] * np.hanning(SR // 2)))
    peak = np.fft.rfftfreq(SR // 2, 1 / SR)[int(np.argmax(spec))]
    assert peak == pytest.approx(440.0 * 2 ** (1 / 12), abs=4.0)


def test_bad_specs_name_the_problem() -> None:
    with pytest.raises(A.DeformationError, match="unknown deformation 'mp4'"):
        A.parse("mp4@kbps=64")
    with pytest.raises(A.DeformationError, match=r"unknown parameter\(s\) \['kbs'\]"):
        A.parse("mp3@kbs=64")
    with pytest.raises(A.DeformationError, match="unknown variant 'purple'"):
        A.parse("noise:purple@snr=10")
    with pytest.raises(A.DeformationError, match="not a number"):
        A.parse("noise:pink@snr=loud")


def test_registry_marks_natural_effects_and_label_changes() -> None:
    natural = {n for n, t in A.DEFORMATIONS.items() if t.natural}
    assert {"pitch", "stretch", "reverb", "gain", "eq", "compress", "distort"} <= natural
    assert "noise" not in natural and "mp3" not in natural
    assert "key" in A.DEFORMATIONS["pitch"].changes

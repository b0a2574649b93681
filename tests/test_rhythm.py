"""The zero-shot tempo baseline: the tempogram representation and the tempo probe.

Click tracks at known tempi (hand-computed references) are read within 0.1 %; above ~170 BPM both this
and librosa's estimator prefer half tempo; the autocorrelation equals numpy's direct sum; the probe writes
tempo_acc1/acc2 rows on a regression task from BPM labels without training.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

import musicrep.models as M
from musicrep.models.rhythm import ENVELOPE_RATE, N_LAGS, lag_autocorrelation
from musicrep.probe import PROBES, ProbeData, ProbeSetup, evaluate_probe, fit_probe
from musicrep.probe.tempo import tempo_from_autocorrelation

SR = 16_000


def click_track(bpm: float, seconds: float = 10.0, accent: bool = False, noise: float = 0.0) -> np.ndarray:
    y = np.zeros(int(seconds * SR), dtype=np.float32)
    t = np.arange(int(0.03 * SR)) / SR
    click = (np.sin(2 * np.pi * 1000 * t) * np.exp(-150 * t)).astype(np.float32)
    for i, s in enumerate(np.arange(0.1, seconds - 0.05, 60.0 / bpm)):
        n = int(round(s * SR))
        y[n : n + len(click)] += (1.0 if not accent or i % 4 == 0 else 0.5) * click[: len(y) - n]
    return y + noise * np.random.default_rng(0).standard_normal(len(y)).astype(np.float32)


def histogram(y: np.ndarray, hop: float = 2.0) -> np.ndarray:
    """Timeline mean ``[N_LAGS]`` of the tempogram over its 8 s windows every ``hop`` s, the last one
    aligned to the end of the clip (as extraction cuts them)."""
    rep = M.get("tempogram")
    w, h = int(rep.window_seconds * SR), int(hop * SR)
    starts = list(range(0, max(1, len(y) - w + 1), h))
    if starts[-1] + w < len(y):
        starts.append(len(y) - w)
    wins = np.stack([np.pad(y[s : s + w], (0, max(0, w - len(y[s : s + w])))) for s in starts])
    out = rep.embed(torch.from_numpy(wins))
    assert out.shape == (len(wins), 1, 1, N_LAGS)
    return out[:, 0, 0].mean(dim=0).numpy()


def estimate_tempo(y: np.ndarray) -> float:
    return float(tempo_from_autocorrelation(histogram(y)))


@pytest.mark.parametrize(("bpm", "accent", "noise"), [(60, False, 0.0), (72, True, 0.0), (90, False, 0.01),
                                                      (120, True, 0.01), (133, False, 0.0), (150, True, 0.0),
                                                      (160, False, 0.01)])
def test_tempo_on_click_tracks(bpm: float, accent: bool, noise: float) -> None:
    est = estimate_tempo(click_track(bpm, accent=accent, noise=noise))
    assert abs(est - bpm) / bpm < 0.04
    assert abs(est - bpm) / bpm < 0.001  # the parabolic refinement reaches 0.1 %


def test_tempo_agrees_with_librosa_up_to_octave() -> None:
    # above ~170 BPM the 120-BPM prior prefers half tempo, in librosa as here
    y = click_track(180)
    ours, ref = estimate_tempo(y), float(librosa.feature.tempo(y=y, sr=SR)[0])
    assert abs(ours - ref) / ref < 0.04 and abs(ours - 90) / 90 < 0.04
    assert estimate_tempo(np.zeros(SR * 5, dtype=np.float32)) == 0.0


def test_lag_autocorrelation_is_the_unbiased_normalised_autocorrelation() -> None:
    env = np.random.default_rng(0).random((2, 300))
    got = lag_autocorrelation(torch.from_numpy(env)).numpy()
    hann = np.hanning(7)[1:-1]
    for b in range(2):
        e = np.convolve(env[b], hann / hann.sum(), mode="same")
        e = e - e.mean()
        full = np.correlate(e, e, mode="full")[len(e) - 1 :][:N_LAGS] / (len(e) - np.arange(N_LAGS))
        np.testing.assert_allclose(got[b], full / full[0], rtol=1e-6, atol=1e-9)
    assert got[:, 0] == pytest.approx(1.0)


def test_tempogram_contract_and_very_short_clips() -> None:
    rep = M.get("tempogram")
    assert rep.layer_dims == [N_LAGS] and rep.n_frames(123) == 1 and rep.weights_checksum() == "none"
    assert 60.0 * ENVELOPE_RATE / 200 == 30.0  # lag 200 is 30 BPM: the slowest tempo searched
    noise = np.random.default_rng(0).standard_normal(SR // 20).astype(np.float32)
    short = rep.embed(torch.from_numpy(noise)[None])  # 50 ms: 6 envelope frames
    assert short.shape == (1, 1, 1, N_LAGS) and torch.isfinite(short).all() and (short[0, 0, 0, 6:] == 0).all()
    assert (rep.embed(torch.zeros(1, SR)) == 0).all()  # silence: no periodicity
    with pytest.raises(ValueError, match="no weights"):
        M.get("tempogram", weights="x.safetensors")


def test_tempo_probe_writes_tempo_rows_without_training() -> None:
    bpms = np.array([63.0, 75.0, 88.0, 97.0, 110.0, 124.0, 137.0, 150.0, 85.0, 118.0])
    X = np.stack([histogram(click_track(b, seconds=9.0, accent=i % 2 == 0)) for i, b in enumerate(bpms)])[:, None]
    shuffled = np.random.default_rng(0).permutation(bpms[:4])  # training labels are ignored
    fp = fit_probe(ProbeData.of("regression", X[:4], shuffled, X[4:6], bpms[4:6]), ProbeSetup(probe="tempo"))
    np.testing.assert_allclose(fp.predict(X), bpms, rtol=0.001)
    tempo = ProbeSetup(probe="tempo", n_bootstrap=50)
    rows = evaluate_probe(ProbeData.of("regression", X[:4], bpms[:4], X[4:6], bpms[4:6], X[6:], bpms[6:],
                                       metrics=["tempo_acc1", "tempo_acc2"]), tempo)
    assert {r["metric"]: r["value"] for r in rows} == {"tempo_acc1": 1.0, "tempo_acc2": 1.0}
    half = evaluate_probe(ProbeData.of("regression", X[:4], bpms[:4], X[4:6], bpms[4:6], X[6:], 2 * bpms[6:],
                                       metrics=["tempo_acc1", "tempo_acc2"]), tempo)
    assert {r["metric"]: r["value"] for r in half} == {"tempo_acc1": 0.0, "tempo_acc2": 1.0}  # octave errors


def test_tempo_probe_needs_a_regression_task_and_the_tempogram() -> None:
    assert PROBES["tempo"].applies_to("regression") and not PROBES["tempo"].applies_to("key")
    with pytest.raises(ValueError, match="regression"):
        fit_probe(ProbeData.of("multiclass", np.ones((4, 1, N_LAGS)), np.array([0, 1, 0, 1])),
                  ProbeSetup(probe="tempo", n_folds=2))
    with pytest.raises(ValueError, match="tempogram"):
        fit_probe(ProbeData.of("regression", np.ones((4, 1, 12)), np.array([60.0, 70.0, 80.0, 90.0])),
                  ProbeSetup(probe="tempo", n_folds=2))


def test_zero_shot_rules_apply_only_to_the_representations_they_read() -> None:
    # listed globally in a config, the tempo rule must be skipped for mfcc, not stop the run
    assert PROBES["tempo"].applies_to("regression", "tempogram")
    assert not PROBES["tempo"].applies_to("regression", "mfcc")
    assert PROBES["keyprofile"].applies_to("key", "chroma-cqt") and not PROBES["keyprofile"].applies_to("key", "vgg")
    assert PROBES["linear"].applies_to("regression", "mfcc")

"""The zero-shot key baseline: the keyprofile probe on the chroma-cqt representation.

The probe equals the textbook Pearson correlation with rotated key profiles and needs no training; on
synthetic cadences in all 24 keys (in tune and a few cents off, as SoundFont renders are) it scores at
least as well as the textbook recipe computed with librosa directly — ``chroma_cqt`` averaged over time,
Krumhansl–Kessler profiles, ``np.corrcoef`` — and the key-finding rule (:func:`musicrep.theory.key_scores`)
meets MIREX floors with every profile.
"""

from __future__ import annotations

import librosa
import mir_eval
import numpy as np
import pytest
import torch

import musicrep.models as M
from musicrep.probe import PROBES, ProbeData, ProbeSetup, evaluate_probe, fit_probe
from musicrep.theory import KEY_PROFILES, KEYS, key_scores

SR = 16_000

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first, written out from the paper (the reference
# the project's own profile table is checked against)
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def textbook_key(chroma: np.ndarray) -> str:
    """Krumhansl–Schmuckler key finding as the textbooks write it: np.corrcoef with the 24 rotated profiles."""
    r = [np.corrcoef(chroma, np.roll(p, t))[0, 1] for p in (KK_MAJOR, KK_MINOR) for t in range(12)]
    names = [f"{pc} {mode}" for mode in ("major", "minor")
             for pc in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")]
    return names[int(np.argmax(r))]


def mirex(refs: list[str], ests: list[str]) -> float:
    return float(np.mean([mir_eval.key.weighted_score(r, e) for r, e in zip(refs, ests, strict=True)]))


def chroma_in_key(key: int, rng: np.random.Generator, noise: float = 0.3) -> np.ndarray:
    prof = KK_MAJOR if key < 12 else KK_MINOR
    return np.roll(prof, key % 12) * rng.uniform(0.5, 2.0) + noise * rng.random(12)


def test_keyprofile_matches_textbook_correlation_and_ignores_training() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 24, 200)
    X = np.stack([chroma_in_key(k, rng, noise=2.0) for k in y])[:, None, :]  # noisy: some errors
    shuffled = rng.permutation(y[:50])  # training labels are ignored by a zero-shot rule
    fp = fit_probe(ProbeData.of("key", X[:50], shuffled, X[50:100], y[50:100], layer_dims=[12], vocabulary=KEYS),
                   ProbeSetup(probe="keyprofile", grid="faster"))
    pred = fp.predict_labels(X[100:])
    ref = [textbook_key(x[0]) for x in X[100:]]
    assert list(pred) == ref
    assert 0.3 < np.mean([p == KEYS[t] for p, t in zip(pred, y[100:])]) < 1.0


def test_keyprofile_rows_have_mirex_with_ci() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 24, 120)
    X = np.stack([chroma_in_key(k, rng) for k in y])[:, None, :]
    data = ProbeData.of("key", X[:40], y[:40], X[40:80], y[40:80], X[80:], y[80:], layer_dims=[12], vocabulary=KEYS)
    rows = evaluate_probe(data, ProbeSetup(probe="keyprofile", n_bootstrap=200))
    mirex_row = [r for r in rows if r["metric"] == "mirex"][0]
    assert mirex_row["value"] >= 0.95 and mirex_row["ci_low"] <= mirex_row["value"] <= mirex_row["ci_high"]


def test_keyprofile_applies_to_key_tasks_only() -> None:
    assert PROBES["keyprofile"].applies_to("key") and not PROBES["keyprofile"].applies_to("multiclass")
    with pytest.raises(ValueError, match="scores keys"):
        fit_probe(ProbeData.of("multiclass", np.ones((4, 1, 12)), np.array([0, 1, 0, 1])),
                  ProbeSetup(probe="keyprofile", n_folds=2))


# ---------------------------------------------------------------- synthetic cadences in all 24 keys

def _tone(midi: float, dur: float, n_harm: int = 5) -> np.ndarray:
    t = np.arange(int(dur * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(0.6**k * np.sin(2 * np.pi * f * (k + 1) * t) for k in range(n_harm) if f * (k + 1) < SR / 2)
    return y * np.minimum(1.0, t / 0.01) * np.exp(-1.5 * t)


# (root offset in semitones from the tonic, chord intervals) of diatonic chords
_MAJOR = {"I": (0, (0, 4, 7)), "ii": (2, (0, 3, 7)), "IV": (5, (0, 4, 7)), "V": (7, (0, 4, 7)),
          "V7": (7, (0, 4, 7, 10)), "vi": (9, (0, 3, 7))}
_MINOR = {"i": (0, (0, 3, 7)), "iio": (2, (0, 3, 6)), "III": (3, (0, 4, 7)), "iv": (5, (0, 3, 7)),
          "V": (7, (0, 4, 7)), "V7": (7, (0, 4, 7, 10)), "VI": (8, (0, 4, 7))}


def cadence(tonic: int, mode: str, rng: np.random.Generator, n_chords: int = 6, dur: float = 0.5,
            detune: float = 0.0) -> np.ndarray:
    """Tonic, three random diatonic chords, a dominant and the tonic; random inversions, bass on the root.

    ``detune``: every pitch shifted by this many semitones (0.1 = 10 cents sharp), as an instrument
    tuned off A440 or a SoundFont render is.
    """
    table = _MAJOR if mode == "major" else _MINOR
    first = "I" if mode == "major" else "i"
    middle = [k for k in table if k != first]
    seq = [first, *rng.choice(middle, size=n_chords - 3), rng.choice(["V", "V7"]), first]
    parts = []
    for name in seq:
        root, ivs = table[name]
        base = 55 + (tonic + root - 55) % 12  # chord root between G3 and F#4
        inv = int(rng.integers(0, len(ivs)))
        notes = [base + iv + (12 if i < inv else 0) for i, iv in enumerate(ivs)]
        parts.append(sum(_tone(n + detune, dur) for n in notes) + 0.8 * _tone(36 + (tonic + root) % 12 + detune, dur))
    y = np.concatenate(parts)
    return (0.3 * y / np.abs(y).max() + 0.003 * rng.standard_normal(len(y))).astype(np.float32)


def chroma_mean(y: np.ndarray) -> np.ndarray:
    """Timeline mean ``[12]`` of the chroma-cqt representation: the feature the keyprofile probe reads."""
    return M.get("chroma-cqt").embed(torch.from_numpy(y)[None])[0, 0].numpy().mean(axis=0)


def cadences(detune: float, seed: int, rounds: int = 1) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(key, cadence(i % 12, "major" if i < 12 else "minor", rng, detune=detune))
            for _ in range(rounds) for i, key in enumerate(KEYS)]


@pytest.fixture(scope="module")
def key_chromas() -> list[tuple[str, np.ndarray]]:
    return [(key, chroma_mean(y)) for key, y in cadences(0.0, seed=0, rounds=2)]


# measured on these 48 cadences (seed 0): krumhansl 0.723, temperley 0.938, kostka-payne 0.906 (librosa's
# chroma_cqt: 0.742, 0.933, 0.948). Kostka–Payne's floor was 0.92 for an earlier chroma that divided out the
# CQT's bass weighting (0.958 here) but scored 0.76 instead of 0.85 on OPL-3 renders of real chorales.
KEY_FLOORS = {"krumhansl": 0.70, "temperley": 0.88, "kostka-payne": 0.90}


@pytest.mark.parametrize("profile", sorted(KEY_FLOORS))
def test_key_finding_mirex_score_on_cadences_in_all_24_keys(profile: str, key_chromas: list) -> None:
    refs = [k for k, _ in key_chromas]
    ests = [KEYS[int(np.argmax(key_scores(c, profile)))] for _, c in key_chromas]
    assert set(refs) == set(KEYS)
    assert mirex(refs, ests) >= KEY_FLOORS[profile]
    for r, e in zip(refs, ests, strict=True):  # labels are valid mir_eval keys
        mir_eval.key.validate(r, e)


def test_key_finding_end_to_end_and_degenerate_input() -> None:
    y = cadence(9, "minor", np.random.default_rng(1))  # A minor
    assert KEYS[int(np.argmax(key_scores(chroma_mean(y), "temperley")))] == "A minor"
    scores = key_scores(np.roll(KEY_PROFILES["temperley"][0], 7), "temperley")
    assert KEYS[int(np.argmax(scores))] == "G major" and scores.max() == pytest.approx(1.0)
    assert KEY_PROFILES["krumhansl"] == (tuple(KK_MAJOR), tuple(KK_MINOR))  # the paper's numbers
    assert key_scores(np.zeros(12)).max() == 0.0  # silence: no key evidence
    with pytest.raises(ValueError, match="12 bins"):
        key_scores(np.ones(11))


def test_keyprofile_is_at_least_the_textbook_librosa_recipe() -> None:
    # 96 cadences, every key twice 10 and twice 15 cents flat, as SoundFont renders can be (the OPL-3 FM
    # SoundFont's are 9 cents flat): there semitone-wide CQT filters (an earlier chroma) scored 0.53 vs 0.66
    # for the textbook (ours: 0.71). Pooled, because with Krumhansl's profile a few cadences of 24 swing either by ±0.05.
    items = [it for detune in (-0.1, -0.15) for it in cadences(detune, seed=2, rounds=2)]
    refs = [k for k, _ in items]
    X = np.stack([chroma_mean(y) for _, y in items])[:, None, :]
    ids = np.array([KEYS.index(k) for k in refs])
    fp = fit_probe(ProbeData.of("key", X, ids, X, ids, layer_dims=[12], vocabulary=KEYS), ProbeSetup(probe="keyprofile"))
    ours = list(fp.predict_labels(X))
    book_chroma = [librosa.feature.chroma_cqt(y=y, sr=SR).mean(axis=1) for _, y in items]
    book = [textbook_key(c) for c in book_chroma]
    assert mirex(refs, ours) >= mirex(refs, book) - 0.02
    # clear cases (the textbook's best key beats its runner-up by 0.1 in correlation): the same key
    margins = [np.diff(np.sort([np.corrcoef(c, np.roll(p, t))[0, 1] for p in (KK_MAJOR, KK_MINOR)
                                for t in range(12)])[-2:])[0] for c in book_chroma]
    clear = [i for i, m in enumerate(margins) if m > 0.1]
    assert len(clear) >= 30
    assert np.mean([ours[i] == book[i] for i in clear]) >= 0.95

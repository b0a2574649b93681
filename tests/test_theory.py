"""Music theory: one key list and spelling, checked against mir_eval; key finding against numpy's corrcoef."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from musicrep.theory import KEY_PROFILES, KEYS, PITCH_CLASSES, canonical_key, key_index, key_scores, key_templates


def test_the_24_keys_are_mir_eval_keys_in_class_id_order() -> None:
    assert len(KEYS) == 24 and len(set(KEYS)) == 24
    assert KEYS[0] == "C major" and KEYS[12] == "C minor" and KEYS[21] == "A minor"
    for i, k in enumerate(KEYS):
        mir_eval.key.validate_key(k)  # raises on a spelling mir_eval cannot score
        assert k.split()[0] == PITCH_CLASSES[i % 12]


@pytest.mark.parametrize("text, expected", [
    ("Db major", "C# major"), ("C# major", "C# major"), ("G# minor", "Ab minor"), ("Ab minor", "Ab minor"),
    ("Dbm", "C# minor"), ("f#m", "F# minor"), ("Bbmin", "Bb minor"), ("A# major", "Bb major"),
    ("Cb major", "B major"), ("E#m", "F minor"), ("Fbb major", "Eb major"), ("C:maj", "C major"),
    ("e minor", "E minor"), ("CM", "C major"), ("Cm", "C minor"), ("D♭ major", "C# major"),
])
def test_every_enharmonic_spelling_maps_to_the_key_mir_eval_scores_as_identical(text: str, expected: str) -> None:
    got = canonical_key(text)
    assert got == expected
    # independent check where mir_eval can read the input spelling: it scores the two as the same key
    try:
        mir_eval.key.validate_key(text)
    except ValueError:
        return
    assert mir_eval.key.weighted_score(text, got) == 1.0


@pytest.mark.parametrize("text", ["Eb", "-", "", "C minor / F# minor", "H major", "c-sharp minor"])
def test_ambiguous_or_unknown_keys_are_refused(text: str) -> None:
    assert canonical_key(text) is None
    with pytest.raises(ValueError, match="not a key"):
        key_index(text)


def test_key_scores_are_pearson_correlations_with_rotated_profiles() -> None:
    rng = np.random.default_rng(0)
    chroma = rng.random((5, 12))
    got = key_scores(chroma, "krumhansl")
    major, minor = (np.asarray(p) for p in KEY_PROFILES["krumhansl"])
    for n in range(5):
        for k in range(24):
            prof = np.roll(major if k < 12 else minor, k % 12)
            assert got[n, k] == pytest.approx(np.corrcoef(chroma[n], prof)[0, 1], abs=1e-12)
    assert np.allclose(np.linalg.norm(key_templates("temperley"), axis=1), 1.0)
    assert np.all(key_scores(np.ones(12)) == 0)  # a flat vector is evidence for no key


def test_c_major_triad_finds_c_major() -> None:
    triad = np.zeros(12)
    triad[[0, 4, 7]] = 1.0
    assert KEYS[int(np.argmax(key_scores(triad)))] == "C major"

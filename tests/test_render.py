"""The renderer: byte-identical per seed, and every label checked against the audio with a reference.

Tiny renders only (a few notes, one chorale, a few clips), so the file stays fast.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from musicrep.data.render import render_task
from musicrep.data.render.base import SR
from musicrep.data.render.chorales import TAG_CLIPS_PER_CHORALE, plan_key, plan_tagging
from musicrep.data.synth import GM_FAMILIES, Note, Synth, gm_family
from musicrep.data.task import Task
from musicrep.theory import PITCH_CLASSES


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_group_in_two_splits(task: Task) -> None:
    per_group = task.items.groupby("group")["split"].nunique()
    assert (per_group == 1).all(), per_group[per_group > 1]


# Settings of one hymn tune under different BWV numbers (the tonus peregrinus, "Allein Gott in der Höh sei
# Ehr", "Ach Gott, wie manches Herzeleid") and one chorale on a tune of its own.
SAME_TUNE = (("bwv10.7", "bwv324"), ("bwv104.6", "bwv112.5", "bwv260"), ("bwv101.7", "bwv416", "bwv90.5"))
OTHER = ("bwv11.6",)


def test_settings_of_one_tune_share_group_and_split() -> None:
    """Chorales harmonising the same tune must not straddle splits: the melody would be in train and test."""
    from musicrep.data.scores import chorale_paths, load_chorale

    paths = {p.stem: p for p in chorale_paths()}
    families = [[load_chorale(paths[n]) for n in names] for names in SAME_TUNE]
    other = [load_chorale(paths[n]) for n in OTHER]
    tunes = [{c.tune for c in fam} for fam in families]
    assert all(len(t) == 1 for t in tunes)  # one id per tune, whatever the transposition or harmonisation
    assert len(set.union(*tunes, {other[0].tune})) == len(SAME_TUNE) + 1
    chorales = [c for fam in families for c in fam] + other
    for seed in range(5):  # different shuffles; with 4 tunes and 20/20 % splits, every split is used
        jobs = plan_key(np.random.default_rng(seed), chorales, excerpt=5.0, splits=(0.2, 0.2))
        split_of_group: dict[str, set[str]] = {}
        for job in jobs:
            split_of_group.setdefault(job.row["group"], set()).add(job.row["split"])
        assert len(split_of_group) == len(SAME_TUNE) + 1
        assert all(len(v) == 1 for v in split_of_group.values()), split_of_group


def test_synth_is_deterministic_whatever_was_rendered_before() -> None:
    synth = Synth()
    ref = synth.render([Note(0.0, 1.0, 60)], {0: 0}, 1.5)
    synth.render([Note(0.0, 2.0, 40, 127)], {0: 48}, 0.5)  # long string note cut off mid-release
    again = synth.render([Note(0.0, 1.0, 60)], {0: 0}, 1.5)
    assert ref.dtype == np.float32 and ref.shape == (int(1.5 * SR),)
    np.testing.assert_array_equal(ref, again)
    assert np.abs(ref).max() > 0.01


def test_same_seed_same_bytes_any_worker_count(tmp_path: Path) -> None:
    render_task("pitch", tmp_path / "a", n=8, seed=5, workers=1, progress=False)
    render_task("pitch", tmp_path / "b", n=8, seed=5, workers=2, progress=False)
    render_task("pitch", tmp_path / "c", n=8, seed=6, workers=1, progress=False)
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert len([k for k in a if k.endswith(".flac")]) >= 6
    assert a != c


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Task:
    out = tmp_path_factory.mktemp("notes")
    render_task("pitch", out, n=40, seed=1, workers=1, progress=False)
    return Task.load(out)


def test_single_note_pitch_matches_pyin(notes: Task) -> None:
    """An independent estimator (probabilistic YIN, searching 13 semitones either side so octave errors
    would show) agrees with the MIDI label."""
    agree = 0
    for path, midi in zip(notes.paths(), notes.targets(), strict=True):
        y = sf.read(path, dtype="float32")[0][:SR]
        fmin, fmax = max(25.0, librosa.midi_to_hz(midi - 13)), min(7000.0, librosa.midi_to_hz(midi + 13))
        f0, voiced, _ = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=SR, frame_length=4096 if midi < 40 else 2048,
                                     hop_length=512)
        est = np.nanmedian(librosa.hz_to_midi(f0[voiced])) if voiced.any() else np.nan
        agree += bool(np.isfinite(est) and abs(est - midi) <= 0.5)
    assert len(notes) >= 30
    assert agree / len(notes) >= 0.95, f"{agree}/{len(notes)}"


def test_single_notes_are_audible_and_split_by_program(notes: Task) -> None:
    for path in notes.paths():
        y, sr = sf.read(path, dtype="float32")
        assert sr == SR and y.ndim == 1 and len(y) == 4 * SR
        assert 20 * np.log10(np.sqrt(np.mean(y[: 3 * SR] ** 2))) > -60
    _no_group_in_two_splits(notes)
    assert (notes.items["group"] == [f"program{int(p):03d}" for p in notes.items["program"]]).all()
    assert all(f == gm_family(int(p)) for f, p in zip(notes.items["family"], notes.items["program"], strict=True))


def test_transposed_chorale_chroma_rotates_with_key_label(tmp_path: Path) -> None:
    render_task("key", tmp_path, n=12, seed=0, workers=2, progress=False)
    task = Task.load(tmp_path)
    assert len(task) == 12 and task.items["chorale"].nunique() == 1
    chroma = [librosa.feature.chroma_cqt(y=sf.read(p, dtype="float32")[0], sr=SR).mean(axis=1) for p in task.paths()]
    labels = task.labels()
    tonic = [PITCH_CLASSES.index(k.split()[0]) for k in labels]
    assert len({k.split()[1] for k in labels}) == 1 and len(set(tonic)) == 12  # 12 keys of one mode
    for ck, tk in zip(chroma, tonic, strict=True):
        corr = [np.corrcoef(np.roll(chroma[0], r), ck)[0, 1] for r in range(12)]
        assert int(np.argmax(corr)) == (tk - tonic[0]) % 12
        assert max(corr) > 0.9


def test_tagging_labels_are_the_audible_programs(tmp_path: Path) -> None:
    """Re-synthesise every planned part alone: the label is exactly the families of the audible parts,
    and the file is exactly their mix."""
    n = 7  # two chorales, the second one cut short
    render_task("tagging", tmp_path, n=n, seed=4, workers=1, progress=False)
    task = Task.load(tmp_path)
    jobs = {j.id: j for j in plan_tagging(np.random.default_rng(4), math.ceil(n / TAG_CLIPS_PER_CHORALE))[:n]}
    synth = Synth()
    assert len(task) == n
    for row, labels, path in zip(task.items.to_dict("records"), task.labels(), task.paths(), strict=True):
        job = jobs[row["id"]]
        stems = [(prog, synth.render(part, {0: prog}, job.duration)) for prog, part in job.stems]
        audible = [(prog, y) for prog, y in stems
                   if y.size and 20 * np.log10(max(np.abs(y).max(), 1e-10)) > -45]
        assert sorted(labels) == sorted({gm_family(p) for p, _ in audible})
        assert [int(p) for p in str(row["programs"]).split(";")] == [p for p, _ in audible]
        assert set(labels) <= set(GM_FAMILIES)
        mix = np.sum([y for _, y in audible], axis=0)
        got = sf.read(path, dtype="float32")[0]
        assert np.corrcoef(mix, got)[0, 1] > 0.999
    _no_group_in_two_splits(task)
    assert task.targets().sum(axis=1).min() >= 1


def test_unknown_task_and_both_sizes_are_clear_errors(tmp_path: Path) -> None:
    from musicrep.data.render import RenderError

    with pytest.raises(RenderError, match="unknown task 'keys'; choose one of: .*key"):
        render_task("keys", tmp_path)
    with pytest.raises(RenderError, match="n or minutes"):
        render_task("key", tmp_path, n=3, minutes=1.0)
    with pytest.raises(RenderError, match="no such file"):
        render_task("key", tmp_path, soundfont="/nope.sf2")


def test_tempo_label_matches_onsets_in_the_audio(tmp_path: Path) -> None:
    """Detected onsets (librosa) fall on the score's onsets timed at the labelled BPM, not at a BPM 8 % off."""
    from musicrep.data.scores import chorale_paths, load_chorale

    render_task("tempo", tmp_path, n=3, seed=2, workers=1, progress=False)
    task = Task.load(tmp_path)
    assert task.kind == "regression" and len(task) == 3
    paths = {p.stem.replace(".", "_"): p for p in chorale_paths()}
    for row, bpm, path in zip(task.items.to_dict("records"), task.targets(), task.paths(), strict=True):
        assert 60 <= bpm <= 200
        chorale = load_chorale(paths[row["chorale"]])
        beats = np.unique([o for part in chorale.parts for o, _, _ in part])
        y = sf.read(path, dtype="float32")[0]
        detected = librosa.onset.onset_detect(y=y, sr=SR, units="time", hop_length=160)
        assert len(detected) >= 8

        def hit_rate(tempo: float) -> float:
            scored = beats * 60.0 / tempo - float(row["start"])
            scored = scored[(scored >= -0.01) & (scored < row["duration"] - 0.5)]
            return float(np.mean([np.abs(scored - t).min() < 0.06 for t in detected]))

        assert hit_rate(bpm) >= 0.8, (row["id"], hit_rate(bpm))
        assert hit_rate(bpm * 1.08) < hit_rate(bpm) - 0.2


def test_metre_labels_agree_with_music21_time_signature(tmp_path: Path) -> None:
    """The label comes from a text scan of the ABC header; music21's own parse must agree."""
    from music21 import converter

    render_task("metre", tmp_path, n=8, seed=0, workers=1, progress=False)
    task = Task.load(tmp_path)
    assert set(task.labels()) == {"2/4", "3/4", "4/4", "6/8"}
    corpus = Path(librosa.__file__).parents[1] / "music21" / "corpus"
    for row in task.items.to_dict("records"):
        folder, stem, number = row["id"].rsplit("-", 2)
        score = converter.parse(str(corpus / folder / f"{stem}.abc"), number=int(number[1:]))
        sigs = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
        assert sigs == {row["label"]}, row["id"]
    _no_group_in_two_splits(task)


def test_pitches_per_split_subsets_each_programs_pitches() -> None:
    """The demo's note plan: three octaves, each program playing a seeded subset of them per split."""
    from collections import Counter

    from musicrep.data.render.notes import plan_notes

    jobs = plan_notes(np.random.default_rng(0), ("piano", "guitar"), programs_per_family=5, split_counts=(2, 1, 2),
                      pitches=range(48, 84), velocities=(100,), pitches_per_split={"train": 18, "valid": 8, "test": 14})
    per_program = Counter((j.row["program"], j.row["split"]) for j in jobs)
    want = {"train": 18, "valid": 8, "test": 14}
    assert all(n == want[split] for (_, split), n in per_program.items())
    assert Counter(s for _, s in per_program) == {"train": 4, "valid": 2, "test": 4}
    assert {j.row["pitch"] for j in jobs} <= set(range(48, 84))
    again = plan_notes(np.random.default_rng(0), ("piano", "guitar"), programs_per_family=5, split_counts=(2, 1, 2),
                       pitches=range(48, 84), velocities=(100,), pitches_per_split=want)
    assert [j.id for j in again] == [j.id for j in jobs]  # seeded: the same plan twice

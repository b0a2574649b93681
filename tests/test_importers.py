"""Importers: tiny fake copies of each public dataset, in its real on-disk layout, become valid tasks.

Each test builds the dataset's folder tree with generated audio (a few hundred samples per file), runs
the importer and checks the written task: item count, labels, splits, and that ``Task.load`` accepts it.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrep.data import importers as I
from musicrep.data.task import Task

SR = 8000


def _wav(path: Path, seconds: float = 0.05, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3", ".au": "AU"}[path.suffix]
    phase = zlib.crc32(str(path).encode()) / 2**32 * 2 * np.pi  # distinct files: identical ones are dropped
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t + phase), SR, format=fmt)
    return path


def _load(folder: Path) -> Task:
    return Task.load(folder)


def test_canonical_key_spelling() -> None:
    from musicrep.theory import KEYS as KEY_VOCABULARY, canonical_key

    assert canonical_key("A# major") == "Bb major"  # the task format's one spelling per pitch class
    assert canonical_key("e minor") == "E minor"
    assert canonical_key("C#min") == "C# minor"
    assert canonical_key("Cb major") == "B major"
    assert canonical_key("G# minor") == "Ab minor"
    assert canonical_key("C minor / F# minor") is None
    assert canonical_key("-") is None
    spelled = {canonical_key(k) for k in KEY_VOCABULARY}
    assert spelled == set(KEY_VOCABULARY)  # every vocabulary key maps to itself


def _counts(task: Task) -> dict[str, int]:
    return {s: int((task.items["split"] == s).sum()) for s in ("train", "valid", "test")}


def _labels(task: Task) -> dict[str, str]:
    return dict(zip(task.items["id"], task.items["label"]))


# ------------------------------------------------------------------------------------------ MTAT


def test_mtat_won_split_files(tmp_path: Path) -> None:
    root = tmp_path / "mtat"
    files = ["0/artist_a-album-01-song-0-29.mp3", "0/artist_a-album-01-song-30-59.mp3",
             "c/artist_b-album-02-tune-0-29.mp3", "f/artist_c-album-03-air-0-29.mp3"]
    for i, rel in enumerate(files):
        _wav(root / "mp3" / rel.replace(".mp3", ".mp3"), freq=200 + 50 * i)
    split = root / "split" / "mtat"
    split.mkdir(parents=True)
    tags = np.array(["guitar", "classical", "slow", "techno"])
    binary = np.zeros((10, 4), dtype=np.int64)
    binary[3] = [1, 1, 0, 0]
    binary[4] = [1, 0, 1, 0]
    binary[7] = [0, 0, 0, 1]
    binary[9] = [0, 1, 1, 0]
    np.save(split / "tags.npy", tags)
    np.save(split / "binary.npy", binary)
    np.save(split / "train.npy", np.array([f"3\t{files[0]}", f"4\t{files[1]}"]))
    np.save(split / "valid.npy", np.array([f"7\t{files[2]}"]))
    np.save(split / "test.npy", np.array([f"9\t{files[3]}"]))

    report = I.import_dataset("mtat", root, tmp_path / "task", progress=False)
    task = _load(tmp_path / "task")
    assert task.kind == "multilabel" and task.vocabulary == ["classical", "guitar", "slow", "techno"]
    assert _counts(task) == {"train": 2, "valid": 1, "test": 1}
    lab = _labels(task)
    assert lab["0/artist_a-album-01-song-0-29"] == "classical;guitar"
    assert lab["0/artist_a-album-01-song-30-59"] == "guitar;slow"
    assert lab["c/artist_b-album-02-tune-0-29"] == "techno"
    # Both clips of one song share a group (and the split keeps them together).
    groups = dict(zip(task.items["id"], task.items["group"]))
    assert groups["0/artist_a-album-01-song-0-29"] == groups["0/artist_a-album-01-song-30-59"]
    assert report.counts["mtat"] == {"train": 2, "valid": 1, "test": 1}
    assert all(Path(p).is_absolute() for p in task.items["path"])  # audio referred to in place


def test_mtat_directory_split_from_annotations(tmp_path: Path) -> None:
    root = tmp_path / "mtat"
    rels = {"0/a-x-01-s-0-29.mp3": "1\t0\t1", "b/b-x-02-s-0-29.mp3": "0\t1\t1",
            "c/c-x-03-s-0-29.mp3": "1\t1\t0", "e/d-x-04-s-0-29.mp3": "0\t0\t1"}
    lines = ["clip_id\tpiano\trock\tloud\tmp3_path"]
    for i, (rel, tags) in enumerate(rels.items()):
        _wav(root / "mp3" / rel)
        lines.append(f"{i}\t{tags}\t{rel}")
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    I.import_dataset("mtat", root, tmp_path / "task", progress=False)
    task = _load(tmp_path / "task")
    assert _counts(task) == {"train": 2, "valid": 1, "test": 1}
    assert _labels(task)["e/d-x-04-s-0-29"] == "loud"
    assert set(task.vocabulary) == {"piano", "rock", "loud"}


# ------------------------------------------------------------------------------------------ GTZAN


def test_gtzan_filtered_split_matches_au_files_and_reports_missing(tmp_path: Path) -> None:
    root = tmp_path / "gtzan"
    for g in ("blues", "jazz", "metal"):
        for n in range(3):
            _wav(root / "genres" / g / f"{g}.{n:05d}.au")
    (root / "genres" / "jazz" / "jazz.00002.au").write_bytes(b"")  # a broken (empty) clip
    (root / "train_filtered.txt").write_text("blues/blues.00000.wav\njazz/jazz.00000.wav\nmetal/metal.00000.wav\n"
                                              "metal/metal.00001.wav\n")
    (root / "valid_filtered.txt").write_text("blues/blues.00001.wav\njazz/jazz.00002.wav\n")
    (root / "test_filtered.txt").write_text("blues/blues.00002.wav\njazz/jazz.00001.wav\nmetal/metal.00009.wav\n")
    report = I.import_dataset("gtzan", root, tmp_path / "task", progress=False)
    task = _load(tmp_path / "task")
    assert _counts(task) == {"train": 4, "valid": 1, "test": 2}
    assert _labels(task)["metal.00001"] == "metal" and task.vocabulary == ["blues", "jazz", "metal"]
    assert sorted(Path(f).name for f, _ in report.skipped) == ["jazz.00002.au", "metal.00009.wav"]
    assert "filtered" in task.spec.provenance["split"]


def test_gtzan_without_split_files_is_stratified(tmp_path: Path) -> None:
    root = tmp_path / "Data" / "genres_original"
    for g in ("pop", "rock"):
        for n in range(10):
            _wav(root / g / f"{g}.{n:05d}.wav")
    I.import_dataset("gtzan", tmp_path / "Data", tmp_path / "task", progress=False)
    task = _load(tmp_path / "task")
    for g in ("pop", "rock"):
        per = Counter(task.items[task.items["label"] == g]["split"])
        assert per == {"train": 8, "valid": 1, "test": 1}
    assert "NOT fault-filtered" in task.spec.provenance["split"]


# ------------------------------------------------------------------------------------------ NSynth


def test_nsynth_pitch_and_instrument_tasks(tmp_path: Path) -> None:
    root = tmp_path / "nsynth"
    notes = {
        "train": [("guitar_acoustic_001-060-100", 60, "guitar"), ("bass_synthetic_002-040-075", 40, "bass")],
        "valid": [("keyboard_electronic_003-072-127", 72, "keyboard")],
        "test": [("keyboard_electronic_003-061-050", 61, "keyboard"), ("brass_acoustic_004-060-100", 60, "brass")],
    }
    for split, entries in notes.items():
        folder = root / f"nsynth-{split}"
        meta = {}
        for note, pitch, fam in entries:
            _wav(folder / "audio" / f"{note}.wav", freq=440 * 2 ** ((pitch - 69) / 12))
            meta[note] = {"note_str": note, "pitch": pitch, "velocity": 100, "instrument_str": note.rsplit("-", 2)[0],
                          "instrument_family_str": fam, "instrument_source_str": "acoustic", "qualities": [0] * 10}
        (folder / "examples.json").write_text(json.dumps(meta))
    report = I.import_dataset("nsynth", root, tmp_path / "out", progress=False)
    pitch, inst = _load(tmp_path / "out" / "pitch"), _load(tmp_path / "out" / "instrument")
    assert pitch.kind == "pitch" and pitch.vocabulary == ["40", "60", "61", "72"]
    assert _labels(pitch)["keyboard_electronic_003-072-127"] == "72"
    assert sorted(pitch.targets("test")) == [60, 61]
    assert inst.vocabulary == ["bass", "brass", "guitar", "keyboard"]
    assert _counts(inst) == {"train": 2, "valid": 1, "test": 2}
    # keyboard_electronic_003 sits in valid and test (as in NSynth): groups are dropped, not leaked.
    assert "dropped" in inst.spec.provenance.get("groups", "")
    assert set(report.tasks) == {"nsynth_pitch", "nsynth_instrument"}
    only = I.import_dataset("nsynth", root, tmp_path / "only", task="pitch", progress=False)
    assert list(only.tasks.values()) == [tmp_path / "only"]


# ------------------------------------------------------------------------------------------ GiantSteps


def test_giantsteps_mtg_train_and_key_test(tmp_path: Path) -> None:
    mtg = tmp_path / "gs" / "giantsteps-mtg-key-dataset"
    gs = tmp_path / "gs" / "giantsteps-key-dataset"
    rows = ["ID\tMANUAL KEY\tC"]
    mtg_keys = {"101": ("A minor", 2), "102": ("Eb major", 2), "103": ("C minor / F# minor", 2),
                "104": ("-", 0), "105": ("D major", 1), "106": ("F# minor", 2), "107": ("A minor", 2),
                "108": ("A minor", 2), "109": ("Eb major", 2), "110": ("Eb major", 2)}
    for tid, (k, c) in mtg_keys.items():
        _wav(mtg / "audio" / f"{tid}.LOFI.mp3")
        rows.append(f"{tid}\t{k}\t{c}")
    (mtg / "annotations").mkdir(parents=True)
    (mtg / "annotations" / "annotations.txt").write_text("\n".join(rows) + "\n")
    (gs / "annotations" / "key").mkdir(parents=True)
    for tid, text in {"201": "Bb major", "202": "#@format: key\tt\tk\nkey\t0\te minor\t2\tcomment\n",
                      "203": "G# minor"}.items():
        _wav(gs / "audio" / f"{tid}.LOFI.mp3")
        (gs / "annotations" / "key" / f"{tid}.LOFI.key").write_text(text)
    report = I.import_dataset("giantsteps", tmp_path / "gs", tmp_path / "task", progress=False)
    task = _load(tmp_path / "task")
    assert task.kind == "key" and len(task.vocabulary) == 24
    lab = _labels(task)
    assert lab["201"] == "Bb major" and lab["202"] == "E minor" and lab["203"] == "Ab minor"
    assert lab["102"] == "Eb major" and lab["106"] == "F# minor"
    assert set(task.split("test")["id"]) == {"201", "202", "203"}
    assert set(task.split("train")["id"]) | set(task.split("valid")["id"]) == {"101", "102", "106", "107", "108",
                                                                               "109", "110"}
    assert len(task.split("valid")) >= 1
    assert {t for t, _ in report.left_out} == {"103", "104", "105"}  # ambiguous, no key, low confidence
    assert report.skipped == []


# ------------------------------------------------------------------------------------------ Jamendo


def _jamendo_tsv(path: Path, rows: list[tuple[str, str, str, list[str]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"]
    for track, artist, rel, tags in rows:
        lines.append("\t".join([track, artist, "album_1", rel, "200.0", *tags]))
    path.write_text("\n".join(lines) + "\n")


def test_jamendo_top50_and_moodtheme(tmp_path: Path) -> None:
    root = tmp_path / "mtg-jamendo-dataset"
    split = root / "data" / "splits" / "split-0"
    tracks = {"track_0000214": "14/214.mp3", "track_0000315": "15/315.mp3", "track_0000416": "16/416.mp3"}
    for i, rel in enumerate(tracks.values()):
        target = root / "audio" / rel
        _wav(target.with_name(target.name.replace(".mp3", ".low.mp3")) if i == 2 else target)  # one .low copy
    _jamendo_tsv(split / "autotagging_top50tags-train.tsv",
                 [("track_0000214", "artist_1", "14/214.mp3", ["genre---rock", "instrument---guitar"])])
    _jamendo_tsv(split / "autotagging_top50tags-validation.tsv",
                 [("track_0000315", "artist_2", "15/315.mp3", ["genre---pop"])])
    _jamendo_tsv(split / "autotagging_top50tags-test.tsv",
                 [("track_0000416", "artist_3", "16/416.mp3", ["mood/theme---happy", "genre---pop"])])
    _jamendo_tsv(split / "autotagging_moodtheme-train.tsv",
                 [("track_0000214", "artist_1", "14/214.mp3", ["mood/theme---dark"])])
    _jamendo_tsv(split / "autotagging_moodtheme-validation.tsv", [])
    _jamendo_tsv(split / "autotagging_moodtheme-test.tsv",
                 [("track_0000416", "artist_3", "16/416.mp3", ["mood/theme---happy"])])
    I.import_dataset("jamendo", root, tmp_path / "out", progress=False)
    top = _load(tmp_path / "out" / "top50")
    mood = _load(tmp_path / "out" / "moodtheme")
    assert top.vocabulary == ["genre---pop", "genre---rock", "instrument---guitar", "mood/theme---happy"]
    assert _labels(top)["track_0000416"] == "genre---pop;mood/theme---happy"
    assert top.items.set_index("id").loc["track_0000416", "path"].endswith("416.low.mp3")
    assert _counts(top) == {"train": 1, "valid": 1, "test": 1}
    assert _counts(mood) == {"train": 1, "valid": 0, "test": 1} and mood.vocabulary == ["mood/theme---dark",
                                                                                         "mood/theme---happy"]
    assert dict(zip(top.items["id"], top.items["group"]))["track_0000214"] == "artist_1"


# ------------------------------------------------------------------------------------------ EmoMusic


def test_emomusic_arousal_and_valence(tmp_path: Path) -> None:
    root = tmp_path / "emomusic"
    ann = root / "annotations"
    ann.mkdir(parents=True)
    static = ["song_id, mean_arousal, std_arousal, mean_valence, std_valence"]
    info = ["song_id,file_name,Artist,Song title,start of the segment (min.sec),end of the segment (min.sec),"
            "Genre,Mediaeval 2013 set"]
    for i in range(2, 26):
        _wav(root / "clips_45seconds" / f"{i}.mp3")
        static.append(f"{i}, {1 + (i % 9) * 0.9:.1f}, 0.5, {9 - (i % 7):.1f}, 0.4")
        info.append(f"{i},{i}.mp3,Artist {i // 2},Song {i},0.0,45.0,Rock,{'evaluation' if i >= 20 else 'development'}")
    (ann / "static_annotations.csv").write_text("\n".join(static) + "\n")
    (ann / "songs_info.csv").write_text("\n".join(info) + "\n")
    I.import_dataset("emomusic", root, tmp_path / "out", progress=False)
    arousal, valence = _load(tmp_path / "out" / "arousal"), _load(tmp_path / "out" / "valence")
    assert arousal.kind == valence.kind == "regression"
    assert float(_labels(arousal)["5"]) == pytest.approx(1 + 5 * 0.9)
    assert float(_labels(valence)["5"]) == pytest.approx(4.0)
    assert set(arousal.split("test")["id"]) == {str(i) for i in range(20, 26)}
    dev = _counts(arousal)
    assert dev["train"] + dev["valid"] == 18 and dev["valid"] >= 2
    # Artist groups never straddle train and valid, and both tasks share one split.
    assert arousal.items.groupby("group")["split"].nunique().max() == 1
    assert dict(zip(arousal.items["id"], arousal.items["group"]))["5"] == "artist 2"
    assert list(arousal.items["split"]) == list(valence.items["split"])


# ------------------------------------------------------------------------------------------ TinySOL


def test_tinysol_folds_instrument_and_pitch(tmp_path: Path) -> None:
    root = tmp_path / "tinysol"
    header = ("Path,Fold,Family,Instrument (abbr.),Instrument (in full),Technique (abbr.),Technique (in full),"
              "Pitch,Pitch ID,Dynamics,Dynamics ID,Instance ID,String ID (if applicable),Needed digital retuning")
    rows = [header]
    specs = [("Strings/Violin/ordinario/Vn-ord-A4-ff-4c-N.wav", 0, "Violin", "Vn", "A4", 69),
             ("Strings/Violin/ordinario/Vn-ord-C4-pp-3c-N.wav", 2, "Violin", "Vn", "C4", 60),
             ("Brass/Horn/ordinario/Hn-ord-F3-mf-N-N.wav", 1, "Horn", "Hn", "F3", 53),
             ("Brass/Horn/ordinario/Hn-ord-G3-mf-N-N.wav", 3, "Horn", "Hn", "G3", 55),
             ("Winds/Flute/ordinario/Fl-ord-D5-pp-N-N.wav", 4, "Flute", "Fl", "D5", 74)]
    for rel, fold, name, abbr, pitch, pid in specs:
        _wav(root / "TinySOL" / rel, freq=440 * 2 ** ((pid - 69) / 12))
        rows.append(f"{rel},{fold},{rel.split('/')[0]},{abbr},{name},ord,ordinario,{pitch},{pid},ff,4,0,,FALSE")
    (root / "TinySOL_metadata.csv").write_text("\n".join(rows) + "\n")
    I.import_dataset("tinysol", root, tmp_path / "out", progress=False)
    inst, pitch = _load(tmp_path / "out" / "instrument"), _load(tmp_path / "out" / "pitch")
    assert inst.vocabulary == ["Flute", "Horn", "Violin"]
    assert _counts(inst) == {"train": 3, "valid": 1, "test": 1}
    assert set(inst.split("test")["id"]) == {"Strings/Violin/ordinario/Vn-ord-A4-ff-4c-N"}
    assert _labels(pitch)["Brass/Horn/ordinario/Hn-ord-F3-mf-N-N"] == "53"


# ------------------------------------------------------------------------------------------ generic


def test_folder_importer_class_per_subfolder_grouped(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    for cls in ("calm", "energetic"):
        for artist in range(5):
            for song in range(2):
                _wav(root / cls / f"artist{artist}" / f"s{song}.flac")
    (root / "README.txt").write_text("ignored")
    I.import_dataset("folder", root, tmp_path / "task", progress=False)
    task = _load(tmp_path / "task")
    assert len(task) == 20 and task.vocabulary == ["calm", "energetic"]
    assert task.items.groupby("group")["split"].nunique().max() == 1
    for cls in ("calm", "energetic"):
        assert set(task.items[task.items["label"] == cls]["split"]) == {"train", "valid", "test"}
    again = tmp_path / "again"
    I.import_dataset("folder", root, again, progress=False)
    assert (again / "items.csv").read_bytes() == (tmp_path / "task" / "items.csv").read_bytes()  # deterministic


def test_csv_importer_splits_kinds_and_errors(tmp_path: Path) -> None:
    audio = tmp_path / "a"
    for i in range(4):
        _wav(audio / f"{i}.wav")
    (tmp_path / "list.csv").write_text(
        "path,label,split\na/0.wav,drums;bass,train\na/1.wav,bass,validation\na/2.wav,drums,test\n"
        f"{audio / '3.wav'},bass;voice,train\n")
    I.import_dataset("csv", tmp_path / "list.csv", tmp_path / "ml", progress=False)
    ml = _load(tmp_path / "ml")
    assert ml.kind == "multilabel" and ml.vocabulary == ["bass", "drums", "voice"]
    assert _counts(ml) == {"train": 2, "valid": 1, "test": 1}

    (tmp_path / "reg.csv").write_text("path,label\n" + "".join(f"a/{i}.wav,{i * 0.5}\n" for i in range(4)))
    I.import_dataset("csv", tmp_path / "reg.csv", tmp_path / "reg", options=I.ImportOptions(kind="regression"),
                     progress=False)
    reg = _load(tmp_path / "reg")
    assert reg.kind == "regression" and sorted(reg.targets()) == [0.0, 0.5, 1.0, 1.5]

    (tmp_path / "bad.csv").write_text("path,label,split\na/0.wav,x,holdout\n")
    with pytest.raises(I.DatasetError, match="holdout"):
        I.import_dataset("csv", tmp_path / "bad.csv", tmp_path / "bad", progress=False)
    with pytest.raises(I.DatasetError, match="unknown dataset"):
        I.import_dataset("nope", tmp_path, tmp_path / "x")
    with pytest.raises(I.DatasetError, match="examples.json"):
        I.import_dataset("nsynth", tmp_path, tmp_path / "x")


def test_cli_import_and_list(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from musicrep.cli import app

    root = tmp_path / "mine"
    for cls in ("a", "b"):
        for i in range(3):
            _wav(root / cls / f"{i}.wav")
    runner = CliRunner()
    res = runner.invoke(app, ["data", "import", "folder", "--root", str(root), "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert "train" in res.output and len(_load(tmp_path / "t")) == 6
    listing = runner.invoke(app, ["data", "import", "--list"])
    assert listing.exit_code == 0 and "annotations_final.csv" in listing.output

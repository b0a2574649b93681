"""The task format: a valid folder loads with correct targets; each kind of damage is named precisely."""

from __future__ import annotations

from pathlib import Path

import mir_eval
import numpy as np
import pytest
import soundfile as sf

from musicrep.data.task import Task, TaskError, write_task
from musicrep.theory import KEYS as KEY_VOCABULARY


def _audio(root: Path, n: int) -> None:
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        # a different constant per file: byte-identical files would be dropped as duplicates on load
        sf.write(root / "audio" / f"{i}.wav", np.full(1600, (i + 1) / 1000, np.float32), 16000)


def _rows(labels, splits, groups=None):
    groups = groups or [str(i) for i in range(len(labels))]
    return [dict(id=f"item{i}", path=f"audio/{i}.wav", split=s, label=lab, duration=0.1, group=g)
            for i, (lab, s, g) in enumerate(zip(labels, splits, groups, strict=True))]


SPLITS4 = ["train", "train", "valid", "test"]


def test_write_then_load_roundtrip_and_targets(tmp_path: Path) -> None:
    _audio(tmp_path, 4)
    spec = dict(name="t", kind="multiclass", vocabulary=["a", "b", "c"], metrics=["accuracy"])
    task = write_task(tmp_path, spec, _rows(["c", "a", "b", "c"], SPLITS4))
    again = Task.load(tmp_path)
    assert list(again.items["id"]) == ["item0", "item1", "item2", "item3"]
    np.testing.assert_array_equal(again.targets("train"), [2, 0])
    np.testing.assert_array_equal(again.targets(), [2, 0, 1, 2])
    assert again.paths("test") == [(tmp_path / "audio/3.wav").resolve()]
    assert again.audio_path("item1") == (tmp_path / "audio/1.wav").resolve()
    assert len(again.split("valid")) == 1
    assert again.label_counts() == {"a": 1, "b": 1, "c": 2}
    assert task.summary()["train"]["items"] == 2
    # byte-stable writer: writing the loaded task again gives the same files
    before = [(tmp_path / f).read_bytes() for f in ("task.yaml", "items.csv")]
    write_task(tmp_path, again.spec, again.items)
    assert [(tmp_path / f).read_bytes() for f in ("task.yaml", "items.csv")] == before


def test_targets_per_kind(tmp_path: Path) -> None:
    _audio(tmp_path, 4)
    ml = write_task(tmp_path / "ml", dict(name="m", kind="multilabel", vocabulary=["x", "y", "z"]),
                    _rows([["x", "z"], "y", "x;y", ""], SPLITS4), check_audio=False)
    np.testing.assert_array_equal(ml.targets(), [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert ml.labels("train") == [["x", "z"], ["y"]]
    reg = write_task(tmp_path / "r", dict(name="r", kind="regression"), _rows(["0.5", "-1", "2e-1", "3"], SPLITS4),
                     check_audio=False)
    np.testing.assert_allclose(reg.targets(), [0.5, -1.0, 0.2, 3.0])
    key = write_task(tmp_path / "k", dict(name="k", kind="key", vocabulary=list(KEY_VOCABULARY)),
                     _rows(["C major", "F# minor", "Bb major", "A minor"], SPLITS4), check_audio=False)
    np.testing.assert_array_equal(key.targets(), [0, 18, 10, 21])
    # a key task listing only some keys, in another order: class ids still index KEY_VOCABULARY
    part = write_task(tmp_path / "k2", dict(name="k2", kind="key", vocabulary=["A minor", "Bb major", "F# minor",
                                                                                "C major"]),
                      _rows(["C major", "F# minor", "Bb major", "A minor"], SPLITS4), check_audio=False)
    np.testing.assert_array_equal(part.class_index(), [0, 18, 10, 21])
    np.testing.assert_array_equal(part.class_index("train"), part.targets("train"))
    pitch = write_task(tmp_path / "p", dict(name="p", kind="pitch", vocabulary=[str(m) for m in range(21, 109)]),
                       _rows(["60", "21", "108", "69"], SPLITS4), check_audio=False)
    np.testing.assert_array_equal(pitch.targets(), [60, 21, 108, 69])
    np.testing.assert_array_equal(pitch.class_index(), [39, 0, 87, 48])


def test_key_vocabulary_is_mir_eval_spelling() -> None:
    assert len(set(KEY_VOCABULARY)) == 24
    for k in KEY_VOCABULARY:
        mir_eval.key.validate_key(k)  # raises on a spelling mir_eval does not know
    # the same key scores 1.0 against itself and a relative minor scores 0.3 (MIREX weights)
    assert mir_eval.key.weighted_score("C major", "A minor") == pytest.approx(0.3)


def _valid(tmp_path: Path) -> tuple[dict, list[dict]]:
    _audio(tmp_path, 4)
    return dict(name="t", kind="multiclass", vocabulary=["a", "b"]), _rows(["a", "b", "a", "b"], SPLITS4)


def test_missing_audio_names_file_and_line(tmp_path: Path) -> None:
    spec, rows = _valid(tmp_path)
    write_task(tmp_path, spec, rows)
    (tmp_path / "audio" / "2.wav").unlink()
    with pytest.raises(TaskError, match=r"items\.csv: line 4 \(id 'item2'\): audio file .*2\.wav does not exist"):
        Task.load(tmp_path)
    assert len(Task.load(tmp_path, check_audio=False)) == 4


def test_label_outside_vocabulary(tmp_path: Path) -> None:
    spec, rows = _valid(tmp_path)
    rows[1]["label"] = "zebra"
    with pytest.raises(TaskError, match=r"line 3 \(id 'item1'\): label 'zebra' is not in the vocabulary"):
        write_task(tmp_path, spec, rows)


def test_multilabel_part_outside_vocabulary(tmp_path: Path) -> None:
    _audio(tmp_path, 4)
    with pytest.raises(TaskError, match=r"line 5 .*label 'q' is not in the vocabulary"):
        write_task(tmp_path, dict(name="m", kind="multilabel", vocabulary=["x", "y"]),
                   _rows(["x", "y", "x;y", "y;q"], SPLITS4))


def test_duplicate_ids(tmp_path: Path) -> None:
    spec, rows = _valid(tmp_path)
    rows[3]["id"] = "item0"
    with pytest.raises(TaskError, match=r"duplicate id 'item0' on lines 2 and 5"):
        write_task(tmp_path, spec, rows)


def test_group_in_two_splits(tmp_path: Path) -> None:
    spec, rows = _valid(tmp_path)
    for r, g in zip(rows, ["w1", "w1", "w1", "w2"], strict=True):
        r["group"] = g
    with pytest.raises(TaskError, match=r"group 'w1' appears in more than one split .*line 2 \(train\).*\(valid\)"):
        write_task(tmp_path, spec, rows)


def test_bad_split_and_bad_duration(tmp_path: Path) -> None:
    spec, rows = _valid(tmp_path)
    rows[0]["split"] = "training"
    with pytest.raises(TaskError, match=r"line 2 .*split 'training' is not one of train, valid, test"):
        write_task(tmp_path, spec, rows)
    rows[0]["split"] = "train"
    write_task(tmp_path, spec, rows)
    text = (tmp_path / "items.csv").read_text().replace("0.1000", "long", 1)
    (tmp_path / "items.csv").write_text(text)
    with pytest.raises(TaskError, match=r"line 2: duration 'long' is not a number"):
        Task.load(tmp_path)


def test_unknown_yaml_key_and_missing_files(tmp_path: Path) -> None:
    spec, rows = _valid(tmp_path)
    write_task(tmp_path, spec, rows)
    yaml_path = tmp_path / "task.yaml"
    yaml_path.write_text(yaml_path.read_text() + "vocabluary: [a]\n")
    with pytest.raises(TaskError, match=r"task\.yaml: key 'vocabluary'"):
        Task.load(tmp_path)
    yaml_path.unlink()
    with pytest.raises(TaskError, match=r"task\.yaml: missing"):
        Task.load(tmp_path)
    with pytest.raises(TaskError, match="does not exist"):
        Task.load(tmp_path / "nowhere")


def test_key_task_rejects_unknown_spelling(tmp_path: Path) -> None:
    _audio(tmp_path, 4)
    with pytest.raises(TaskError, match=r"task\.yaml: vocabulary entry 'c-sharp minor' is not a key"):
        write_task(tmp_path, dict(name="k", kind="key", vocabulary=["C major", "c-sharp minor"]),
                   _rows(["C major"] * 4, SPLITS4))


def test_key_task_in_any_enharmonic_spelling_loads_as_the_same_task(tmp_path: Path) -> None:
    # Db = C#, G# = Ab, Dbm = C# minor, Cb = B: mir_eval scores all of these, so the task format reads them
    flat, sharp = tmp_path / "flat", tmp_path / "sharp"
    labels_flat = ["Db major", "G# minor", "Dbm", "Cb major", "Db major", "G# minor"]
    labels_sharp = ["C# major", "Ab minor", "C# minor", "B major", "C# major", "Ab minor"]
    splits = ["train", "train", "train", "train", "valid", "test"]
    for root, vocab, labels in ((flat, ["Db major", "Cb major", "C# minor", "G# minor"], labels_flat),
                                (sharp, ["C# major", "B major", "C# minor", "Ab minor"], labels_sharp)):
        _audio(root, 6)
        write_task(root, dict(name="k", kind="key", vocabulary=vocab), _rows(labels, splits))
    a, b = Task.load(flat), Task.load(sharp)
    assert a.vocabulary == b.vocabulary == ["C# major", "B major", "C# minor", "Ab minor"]
    assert a.labels() == b.labels() == labels_sharp
    for split in (None, "train", "valid", "test"):
        np.testing.assert_array_equal(a.targets(split), b.targets(split))
    # the canonical ids are the ones mir_eval agrees with: Db major and C# major are the same key
    ids = a.targets()
    assert [KEY_VOCABULARY[i] for i in ids[:2]] == ["C# major", "Ab minor"]
    assert mir_eval.key.weighted_score("Db major", KEY_VOCABULARY[ids[0]]) == 1.0


def test_classes_without_training_items_are_named(tmp_path: Path) -> None:
    _audio(tmp_path, 6)
    task = write_task(tmp_path, dict(name="c", kind="multiclass", vocabulary=["a", "b", "c", "d"]),
                      _rows(["a", "a", "b", "c", "b", "a"], ["train", "train", "train", "valid", "test", "test"]))
    assert task.classes_without_training_items() == ["c"]  # 'd' has no items at all: nothing to warn about

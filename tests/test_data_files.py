"""Audio files as items name them: names in another Unicode form resolve; byte-identical audio is kept once.

Linux stores file names as the bytes given, so both Unicode forms of a name can be made here, as macOS
(NFD) and most CSV writers (NFC) would produce them.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from musicrep.data import files as F
from musicrep.data import importers as I
from musicrep.data.files import DuplicateAudioWarning, find_duplicates, resolve_path
from musicrep.data.task import Task, TaskError, write_task

NAME = "Café Olé.wav"
NFC, NFD = unicodedata.normalize("NFC", NAME), unicodedata.normalize("NFD", NAME)
SR = 8000


def _wav(path: Path, value: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(800, value, np.float32), SR)
    return path


def _task(root: Path, rows: list[tuple[str, str, str]], label: str = "a") -> None:
    """A multiclass task folder written by hand: (id, path, split) per row."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "task.yaml").write_text(yaml.safe_dump(dict(name="t", kind="multiclass", vocabulary=["a"])),
                                    encoding="utf-8")
    lines = ["id,path,split,label,duration,group"] + [f"{i},{p},{s},{label},0.1," for i, p, s in rows]
    (root / "items.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------ Unicode forms


def test_the_two_forms_are_different_names_on_this_file_system(tmp_path: Path) -> None:
    assert NFC != NFD
    _wav(tmp_path / NFD, 0.1)
    assert not (tmp_path / NFC).exists()  # the bug: a CSV row in NFC does not open the NFD file


FORMS = pytest.mark.parametrize(("on_disk", "in_csv"), [(NFD, NFC), (NFC, NFD)],
                                ids=["disk NFD, csv NFC", "disk NFC, csv NFD"])


@FORMS
def test_task_load_resolves_names_across_unicode_forms(tmp_path: Path, on_disk: str, in_csv: str) -> None:
    real = _wav(tmp_path / "audio" / on_disk, 0.1)
    _wav(tmp_path / "audio" / "other.wav", 0.2)
    _task(tmp_path, [("x", f"audio/{in_csv}", "train"), ("y", "audio/other.wav", "test")])
    task = Task.load(tmp_path)  # no "does not exist"
    assert task.paths("train") == [real.resolve()]
    assert task.audio_path("x") == real.resolve()
    assert task.audio_path(task.items.iloc[0]) == real.resolve()
    assert Task.load(tmp_path, check_audio=False).paths()[0] == real.resolve()


def test_forms_may_differ_per_component(tmp_path: Path) -> None:
    folder = unicodedata.normalize("NFD", "Für Elise")
    real = _wav(tmp_path / folder / NFC, 0.1)
    assert resolve_path(tmp_path / unicodedata.normalize("NFC", "Für Elise") / NFD) == real
    missing = tmp_path / "Für Elise" / "nothing.wav"
    assert resolve_path(missing) == missing  # not found: the path as given, for the caller to report
    _task(tmp_path / "t", [("x", str(missing), "train")])
    with pytest.raises(TaskError, match="does not exist"):
        Task.load(tmp_path / "t")


@FORMS
def test_csv_importer_resolves_names_across_unicode_forms(tmp_path: Path, on_disk: str, in_csv: str) -> None:
    data = tmp_path / "data"
    real = _wav(data / "audio" / on_disk, 0.1)
    _wav(data / "audio" / "b.wav", 0.2)
    (data / "list.csv").write_text(f"path,label,split\naudio/{in_csv},x,train\naudio/b.wav,y,test\n",
                                   encoding="utf-8")
    report = I.import_dataset("csv", data / "list.csv", tmp_path / "task", progress=False)
    assert report.skipped == []
    task = Task.load(tmp_path / "task")
    assert task.paths("train") == [real.resolve()]


# ------------------------------------------------------------------------------------------ identical audio


def test_same_audio_in_train_and_test_is_kept_in_train(tmp_path: Path) -> None:
    _wav(tmp_path / "audio" / "song.wav", 0.1)
    (tmp_path / "audio" / "copy.wav").write_bytes((tmp_path / "audio" / "song.wav").read_bytes())
    _wav(tmp_path / "audio" / "other.wav", 0.2)
    # the test copy is listed first: the earliest *split* wins, not the earliest row
    _task(tmp_path, [("jam-test-7", "audio/copy.wav", "test"), ("jam-train-3", "audio/song.wav", "train"),
                     ("z", "audio/other.wav", "valid")])
    with pytest.warns(DuplicateAudioWarning, match="jam-test-7") as record:
        task = Task.load(tmp_path)
    assert "jam-train-3" in str(record[0].message)
    assert list(task.items["id"]) == ["jam-train-3", "z"]
    assert task.spec.provenance["duplicates_dropped"] == [
        {"kept": "jam-train-3", "kept_split": "train", "dropped": "jam-test-7", "split": "test"}]
    assert "jam-test-7" in (tmp_path / "items.csv").read_text()  # the folder is not rewritten
    assert len(Task.load(tmp_path, check_audio=False)) == 3  # labels-only loads keep every row


def test_valid_beats_test_and_one_file_listed_twice_is_a_duplicate(tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav", 0.1)
    dups = find_duplicates(["t", "v", "t2"], [tmp_path / "a.wav"] * 3, ["test", "valid", "test"])
    assert [(d.kept, d.dropped, d.split) for d in dups] == [("v", "t", "test"), ("v", "t2", "test")]


def test_same_size_files_that_differ_are_not_duplicates_and_unique_sizes_are_not_hashed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    real_hash = F.sha256_file
    monkeypatch.setattr(F, "sha256_file", lambda p: hashed.append(str(p)) or real_hash(p))
    body = bytearray(np.random.default_rng(0).bytes(50_000))
    (tmp_path / "a.bin").write_bytes(bytes(body))
    body[25_000] ^= 1  # same size, same first and last 4 KiB, one bit apart in the middle
    (tmp_path / "b.bin").write_bytes(bytes(body))
    (tmp_path / "c.bin").write_bytes(bytes(body[:-1]))  # a size of its own
    paths = [tmp_path / n for n in ("a.bin", "b.bin", "c.bin")]
    assert find_duplicates(["a", "b", "c"], paths, ["train", "test", "test"]) == []
    assert sorted(Path(h).name for h in hashed) == ["a.bin", "b.bin"]  # c was never read in full


def test_importer_drops_the_later_split_copy_and_records_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _wav(data / "a.wav", 0.1)
    (data / "a_again.wav").write_bytes((data / "a.wav").read_bytes())
    _wav(data / "b.wav", 0.2)
    _wav(data / "c.wav", 0.3)
    (data / "list.csv").write_text("path,label,split\na_again.wav,x,test\na.wav,x,train\nb.wav,y,valid\n"
                                   "c.wav,y,test\n", encoding="utf-8")
    with pytest.warns(DuplicateAudioWarning, match="a_again") as record:
        report = I.import_dataset("csv", data / "list.csv", tmp_path / "task", progress=False)
    assert "'a'" in str(record[0].message)
    task = Task.load(tmp_path / "task")  # nothing left to drop: no second warning needed
    assert sorted(task.items["id"]) == ["a", "b", "c"]
    spec = yaml.safe_load((tmp_path / "task" / "task.yaml").read_text())
    assert spec["provenance"]["duplicates_dropped"] == [
        {"kept": "a", "kept_split": "train", "dropped": "a_again", "split": "test"}]
    assert [(t, d.dropped) for t, d in report.duplicates] == [(task.name, "a_again")]
    assert report.counts[task.name] == {"train": 1, "valid": 1, "test": 1}


def test_folder_importer_keeps_one_of_identical_files(tmp_path: Path) -> None:
    root = tmp_path / "genres"
    for cls, values in {"rock": (0.1, 0.2, 0.3, 0.4), "jazz": (0.5, 0.6, 0.7)}.items():
        for v in values:
            _wav(root / cls / f"{cls}{v}.wav", v)
    (root / "jazz" / "same_as_rock.wav").write_bytes((root / "rock" / "rock0.1.wav").read_bytes())
    with pytest.warns(DuplicateAudioWarning):
        I.import_dataset("folder", root, tmp_path / "task", progress=False)
    task = Task.load(tmp_path / "task")
    assert len(task) == 7
    (entry,) = task.spec.provenance["duplicates_dropped"]
    assert {entry["kept"], entry["dropped"]} == {"rock/rock0.1", "jazz/same_as_rock"}


def test_write_task_result_has_no_duplicates(tmp_path: Path) -> None:
    _wav(tmp_path / "audio" / "0.wav", 0.1)
    _wav(tmp_path / "audio" / "1.wav", 0.1)  # same samples, same bytes
    rows = [dict(id=f"i{i}", path=f"audio/{i}.wav", split=s, label="a", duration=0.1)
            for i, s in enumerate(["valid", "test"])]
    with pytest.warns(DuplicateAudioWarning, match="'i1'"):
        task = write_task(tmp_path, dict(name="t", kind="multiclass", vocabulary=["a"]), rows)
    assert list(task.items["id"]) == ["i0"]

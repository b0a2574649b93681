"""train/data.py: the cached, budgeted, seeded crop pipeline that feeds pretraining.

Pools and tasks are tiny synthetic ones written here through the project's own writers (build_pool,
write_task); expected crops are recomputed independently from the decoded audio (soundfile + LogMel on
the same region), never read back from the code under test.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from musicrep.data.pool import PoolSource, build_pool, load_pool
from musicrep.data.task import write_task
from musicrep.frontends import LogMel
from musicrep.models.encoder import standardise
from musicrep.theory import KEYS
from musicrep.train.data import (
    TrainData,
    TrainDataError,
    TrainDataWarning,
    build_cache,
    loader,
    val_batches,
)

SR = 16_000
CROP = 3 * SR
#: seconds per track of the small pool; t5 (2 s) is shorter than a crop
DURATIONS = [4.0, 6.0, 9.0, 12.0, 20.0, 2.0, 8.0]
CHEAP = ["eq", "gain", "reverb"]  # fast deformations, for tests that only need *some* augmentation


def _signal(i: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A distinct sound per track: a chirp-ish pair of tones (frequencies depend on i) plus a little noise."""
    rng = np.random.default_rng([seed, i])
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150.0 + 37.0 * i
    x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.01 * t)) + 0.2 * np.sin(2 * np.pi * 3.1 * f0 * t)
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * (0.3 + 0.1 * i) * t)  # a slow envelope: crops at different places differ
    return (x + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def _make_pool(root: Path, durations: list[float], name: str = "syn", seed: int = 0) -> Path:
    src = root / f"{name}-src"
    src.mkdir(parents=True)
    for i, d in enumerate(durations):
        sf.write(src / f"t{i}.wav", _signal(i, d, seed), SR)
    out = root / f"{name}-pool"
    build_pool([PoolSource(name, src)], out, progress=False)
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> object:
    """LogMel on 2 shared cores runs several times faster on one torch thread (no oversubscription)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_pool(tmp_path_factory.mktemp("pool"), DURATIONS)


@pytest.fixture(scope="module")
def data(pool: Path) -> TrainData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainDataWarning)
        return TrainData(pool=pool, kind="logmel", batch_size=16, pairs=True, augment_fraction=0.0, progress=False)


def _expected_logmel(path: str, centre: float) -> torch.Tensor:
    """Independent crop: decode the file, take the 3 s region at ``centre`` with 2 hops of context each side
    (zeros outside the track, as centred framing pads), LogMel it and keep the 301 frames of the region."""
    audio, sr = sf.read(path, dtype="float32")
    assert sr == SR
    s = round(centre * SR - CROP / 2)
    padded = np.concatenate([np.zeros(320, np.float32), audio, np.zeros(320, np.float32)])
    region = padded[s : s + CROP + 640]
    lm = LogMel()(torch.from_numpy(region)[None])[:, :, 2 : 2 + 301]
    return standardise(lm)[0]


# ---------------------------------------------------------------------------------------- the cache


def test_cache_crop_equals_standardised_logmel_of_the_same_audio(data: TrainData) -> None:
    b = data.batch(0)
    assert b.x.shape == (16, 1, 96, 301) and b.x.dtype == torch.float32
    for j in range(len(b)):
        row = data.tracks.iloc[int(b.track[j])]
        expected = _expected_logmel(row["path"], float(b.centre[j]))
        # float16 storage of log-mel values of magnitude ≤ ~16 → ≤ 0.008 absolute, /std after standardising
        assert torch.allclose(b.x[j], expected, atol=0.02), (row["id"], float((b.x[j] - expected).abs().max()))


def test_cache_is_built_in_chunks_equal_to_the_whole_track(pool: Path, tmp_path: Path) -> None:
    df = load_pool(pool).iloc[[0, 4, 6]]  # 4, 20 and 8 s: several chunks each
    cache = build_cache(df, "logmel", cache_dir=tmp_path, progress=False, block_seconds=0.77)
    lm = LogMel()
    for _, r in cache.index.iterrows():
        audio, _ = sf.read(df.set_index("id").loc[r["id"], "path"], dtype="float32")
        assert r["rows"] == 1 + len(audio) // 160 and r["samples"] == len(audio)
        whole = lm(torch.from_numpy(audio)[None])[0].T.numpy()
        got = np.asarray(cache.features[r["offset"] : r["offset"] + r["rows"]], dtype=np.float32)
        np.testing.assert_allclose(got, whole, rtol=2e-3, atol=2e-3)
    assert cache.features.dtype == np.float16 and isinstance(cache.features, np.memmap)


def test_cache_is_reused_and_rebuilt_when_the_manifest_changes(pool: Path, tmp_path: Path) -> None:
    copy = tmp_path / "pool"
    shutil.copytree(pool, copy, ignore=shutil.ignore_patterns(".musicrep-cache"))
    first = build_cache(load_pool(copy), "waveform", cache_dir=tmp_path / "c", progress=False)
    assert first.built
    stamp = os.stat(first.root / "features.f16").st_mtime_ns
    again = build_cache(load_pool(copy), "waveform", cache_dir=tmp_path / "c", progress=False)
    assert not again.built and again.root == first.root
    assert os.stat(first.root / "features.f16").st_mtime_ns == stamp
    # another feature kind is another cache
    assert build_cache(load_pool(copy), "logmel", cache_dir=tmp_path / "c", progress=False).root != first.root
    manifest = pd.read_csv(copy / "manifest.csv", dtype=str, keep_default_na=False)
    manifest.iloc[:-1].to_csv(copy / "manifest.csv", index=False)
    changed = build_cache(load_pool(copy), "waveform", cache_dir=tmp_path / "c", progress=False)
    assert changed.built and changed.root != first.root and len(changed.index) == len(first.index) - 1


def test_a_corrupt_file_is_named_and_skipped(pool: Path, tmp_path: Path) -> None:
    copy = tmp_path / "pool"
    shutil.copytree(pool, copy, ignore=shutil.ignore_patterns(".musicrep-cache"))
    bad = copy / "audio" / "syn" / "t3.flac"
    bad.write_bytes(b"this is not audio " * 200)
    with pytest.warns(TrainDataWarning, match=r"t3\.flac"):
        d = TrainData(pool=copy, kind="waveform", batch_size=4, augment_fraction=0.0, progress=False)
    assert "syn/t3" not in set(d.tracks["id"]) | set(d.val_tracks["id"])
    assert len(d.tracks) + len(d.val_tracks) == len(DURATIONS) - 2  # minus the corrupt and the short one
    d.batch(0)


# ---------------------------------------------------------------------------------------- crops


def test_pairs_come_from_one_track_with_centres_under_5_s_apart(data: TrainData) -> None:
    gaps = []
    for step in range(200):
        p = data.plan(step)
        gaps.append(np.abs(p.start2 - p.start) / SR)
    gaps = np.concatenate(gaps)
    assert gaps.max() < 5.0
    assert gaps.max() > 4.5  # the sampler uses the whole allowed range on long tracks
    b = data.batch(7)
    assert torch.all((b.centre2 - b.centre).abs() < 5.0)
    for j in range(6):  # view 2 really is that track's audio at centre2
        row = data.tracks.iloc[int(b.track[j])]
        assert torch.allclose(b.x2[j], _expected_logmel(row["path"], float(b.centre2[j])), atol=0.02)


def test_crops_stay_inside_budget_tracks_without_padding(pool: Path) -> None:
    with pytest.warns(TrainDataWarning, match="syn/t5"):
        d = TrainData(pool=pool, kind="logmel", minutes=0.5, batch_size=32, pairs=True, augment_fraction=0.0,
                      progress=False)
    lengths = {r["id"]: sf.info(r["path"]).frames for _, r in load_pool(pool).iterrows()}
    budget = list(d.tracks["id"])
    seen = set()
    for step in range(100):
        p = d.plan(step)
        for t, s, s2 in zip(p.track, p.start, p.start2):
            tid = budget[t]
            seen.add(tid)
            for start in (s, s2):
                assert 0 <= start and start + CROP <= lengths[tid], (tid, start)
    assert seen == set(budget)  # uniform with replacement: every budget track gets drawn
    assert "syn/t5" not in seen and not seen & set(d.val_tracks["id"])


def test_budgets_are_nested_and_validation_is_outside_every_budget(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    wpool = _make_pool(tmp_path, [float(x) for x in rng.uniform(15, 35, size=32)], name="big", seed=1)
    sets, vals = {}, []
    for minutes, seed in [(5, 0), (10, 0), (None, 0), (5, 1)]:
        d = TrainData(pool=wpool, kind="waveform", minutes=minutes, budget_seed=seed, batch_size=4,
                      augment_fraction=0.0, progress=False)
        sets[(minutes, seed)] = set(d.tracks["id"])
        vals.append(set(d.val_tracks["id"]))
        if minutes is not None:
            assert d.minutes >= minutes
    assert sets[(5, 0)] < sets[(10, 0)] < sets[(None, 0)]
    assert sets[(5, 1)] != sets[(5, 0)]
    assert all(v == vals[0] for v in vals) and len(vals[0]) >= 1
    assert not vals[0] & set().union(*sets.values())
    assert sets[(None, 0)] | vals[0] == set(load_pool(wpool)["id"])


# ---------------------------------------------------------------------------------------- determinism


def test_a_batch_is_a_pure_function_of_seed_and_step(pool: Path) -> None:
    kw = {"pool": pool, "kind": "logmel", "batch_size": 8, "pairs": True, "augment_fraction": 0.5,
          "augmentations": CHEAP, "progress": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainDataWarning)
        a, b, other = TrainData(**kw), TrainData(**kw), TrainData(**kw, seed=1)
    x, y = a.batch(3), b.batch(3)
    assert torch.equal(x.x, y.x) and torch.equal(x.x2, y.x2) and torch.equal(x.centre, y.centre)
    assert torch.equal(a.batch(3).x, x.x)  # no hidden state: asking again gives the same
    assert not torch.equal(a.batch(4).x, x.x)
    assert not torch.equal(other.batch(3).x, x.x)


def test_rank_shards_partition_the_global_batch(data: TrainData) -> None:
    whole = data.batch(5)
    parts = [data.batch(5, rank=r, world_size=4) for r in range(4)]
    for name in ("x", "x2", "track", "centre", "centre2"):
        assert torch.equal(torch.cat([getattr(p, name) for p in parts]), getattr(whole, name)), name
    with pytest.raises(TrainDataError, match="divisible"):
        data.batch(0, rank=0, world_size=3)


def test_loader_gives_the_steps_batches_in_order_with_or_without_workers(data: TrainData) -> None:
    expected = [data.batch(s) for s in range(2, 5)]
    for workers in (0, 2):
        got = list(loader(data, 2, 5, workers=workers))
        assert len(got) == 3
        for e, g in zip(expected, got):
            assert torch.equal(e.x, g.x) and torch.equal(e.x2, g.x2) and torch.equal(e.track, g.track)


# ---------------------------------------------------------------------------------------- augmentation


def test_augmentation_touches_the_fraction_of_training_crops_never_validation(pool: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainDataWarning)
        d = TrainData(pool=pool, kind="logmel", batch_size=32, pairs=True, augment_fraction=0.25, progress=False)
    flags = [a is not None for s in range(100) for p in [d.plan(s)] for a in p.augment + p.augment2]
    assert abs(np.mean(flags) - 0.25) < 0.03  # 6400 draws: sd 0.0054
    names = {a.name for s in range(100) for p in [d.plan(s)] for a in p.augment if a is not None}
    assert {"pitch", "stretch", "reverb"} <= names  # the natural deformations by default
    for i in range(50):
        p = d.val_plan(i)
        assert all(a is None for a in p.augment + p.augment2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainDataWarning)
        every = TrainData(pool=pool, kind="logmel", batch_size=4, augment_fraction=1.0,
                          augmentations=["eq@low_db=12,high_db=-12"], progress=False)
    b = every.batch(0)
    for j in range(len(b)):  # every training crop differs from the clean audio at its place
        row = every.tracks.iloc[int(b.track[j])]
        assert (b.x[j] - _expected_logmel(row["path"], float(b.centre[j]))).abs().max() > 0.5
    for v in val_batches(every, 3):  # validation crops are the clean audio
        for j in range(len(v)):
            row = every.val_tracks.iloc[int(v.track[j])]
            assert torch.allclose(v.x[j], _expected_logmel(row["path"], float(v.centre[j])), atol=0.02)
    assert all(torch.equal(a.x, b.x) for a, b in zip(val_batches(every, 2), val_batches(every, 2)))


# ---------------------------------------------------------------------------------------- labels


def _write_task(root: Path, kind: str, vocabulary: list[str], labels: list[str]) -> Path:
    (root / "audio").mkdir(parents=True)
    rows = []
    for i, lab in enumerate(labels):
        sf.write(root / "audio" / f"i{i}.wav", _signal(i, 4.0 + i % 3), SR)
        rows.append({"id": f"i{i}", "path": f"audio/i{i}.wav", "split": "train", "label": lab, "duration": 4.0 + i % 3})
    sf.write(root / "audio" / "test0.wav", _signal(99, 4.0), SR)
    rows.append({"id": "test0", "path": "audio/test0.wav", "split": "test", "label": labels[0], "duration": 4.0})
    write_task(root, {"name": "t", "kind": kind, "vocabulary": vocabulary}, rows, check_audio=False)
    return root


def test_supervised_targets_from_a_multilabel_task(tmp_path: Path) -> None:
    labels = ["a", "a;c", "b", "c", "a;b;c", "b", "c;a", "b", "a"]
    task = _write_task(tmp_path / "tags", "multilabel", ["a", "b", "c"], labels)
    d = TrainData(task=task, kind="logmel", labels=True, batch_size=8, augment_fraction=0.0, progress=False)
    assert d.n_classes == 3 and d.kind == "multilabel"
    hot = {f"i{i}": [float(c in lab.split(";")) for c in "abc"] for i, lab in enumerate(labels)}
    b = d.batch(0)
    assert b.y.shape == (8, 3)
    for j in range(len(b)):
        assert b.y[j].tolist() == hot[d.tracks.iloc[int(b.track[j])]["id"]]
    assert "test0" not in set(d.tracks["id"]) | set(d.val_tracks["id"])  # only the train split


def test_supervised_key_task_is_one_hot_and_never_pitch_shifted(tmp_path: Path) -> None:
    labels = ["C major", "A minor", "Db major", "F# minor", "G major", "E minor", "C major", "Bb major"]
    task = _write_task(tmp_path / "keys", "key", sorted(set(labels)), labels)
    d = TrainData(task=task, kind="waveform", labels=True, batch_size=4, augment_fraction=0.5, progress=False)
    assert d.n_classes == 24 and d.kind == "key"
    canon = {"Db major": "C# major"}  # musicrep.theory.KEYS spells sharps except Eb, Ab, Bb
    b = d.batch(1)
    for j in range(len(b)):
        lab = labels[int(d.tracks.iloc[int(b.track[j])]["id"][1:])]
        assert b.y[j].tolist() == [float(k == canon.get(lab, lab)) for k in KEYS]
    names = {a.name for s in range(50) for a in d.plan(s).augment if a is not None}
    assert names and "pitch" not in names


def test_setup_errors_name_the_setting(pool: Path) -> None:
    with pytest.raises(TrainDataError, match="labels need a task"):
        TrainData(pool=pool, labels=True, progress=False)
    with pytest.raises(TrainDataError, match="exactly one"):
        TrainData(progress=False)
    with pytest.raises(TrainDataError, match="augmentations"):
        TrainData(pool=pool, augmentations=["pich"], progress=False)

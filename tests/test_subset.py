"""Budgets: whole tracks, nested across sizes, reproducible per seed, per-class counts exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from musicrep.data.subset import subset
from musicrep.data.task import Task, write_task


@pytest.fixture()
def pool() -> pd.DataFrame:
    """60 tracks of 30–300 s, each cut into 1–4 excerpts sharing the track as group."""
    rng = np.random.default_rng(1)
    rows = []
    for t in range(60):
        n = int(rng.integers(1, 5))
        for e in range(n):
            rows.append(dict(id=f"t{t}-e{e}", path=f"a/t{t}-{e}.flac", split="train", label=f"c{t % 5}",
                             duration=float(rng.uniform(30, 300)) / n, group=f"t{t}"))
    return pd.DataFrame(rows)


def test_minutes_are_nested_whole_tracks_and_minimal(pool: pd.DataFrame) -> None:
    sets = {}
    for m in (5, 10, 20, 40):
        s = subset(pool, minutes=m, seed=3)
        sets[m] = set(s["id"])
        # whole tracks: every excerpt of a chosen track is in
        chosen = set(s["group"])
        assert set(pool[pool["group"].isin(chosen)]["id"]) == sets[m]
        total = s["duration"].sum() / 60
        assert total >= m
        # minimal: the budget is met only with the last track added
        per_track = s.groupby("group")["duration"].sum() / 60
        assert total - per_track.min() < m or len(per_track) == 1
    assert sets[5] <= sets[10] <= sets[20] <= sets[40]
    assert len(sets[5]) < len(sets[40])


def test_reproducible_and_seed_dependent(pool: pd.DataFrame) -> None:
    a = subset(pool, minutes=15, seed=7)
    b = subset(pool, minutes=15, seed=7)
    c = subset(pool, minutes=15, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["id"]) != set(c["id"])
    assert list(a.index) == sorted(a.index)  # original order kept


def test_choice_of_a_track_does_not_depend_on_other_tracks(pool: pd.DataFrame) -> None:
    """Ranks are per track, so dropping unchosen tracks does not change which tracks are chosen."""
    a = subset(pool, minutes=20, seed=0)
    unchosen = sorted(set(pool["group"]) - set(a["group"]))
    smaller = pool[~pool["group"].isin(unchosen[: len(unchosen) // 2])]
    assert set(subset(smaller, minutes=20, seed=0)["id"]) == set(a["id"])


def test_budget_larger_than_data_returns_everything(pool: pd.DataFrame) -> None:
    assert len(subset(pool, minutes=10_000)) == len(pool)


def test_per_class_exact_and_nested(pool: pd.DataFrame) -> None:
    prev: set[str] = set()
    for n in (1, 3, 6):
        s = subset(pool, per_class=n, seed=2)
        available = pool["label"].value_counts()
        counts = s["label"].value_counts()
        for label, have in available.items():
            assert counts.get(label, 0) == min(n, have)
        assert prev <= set(s["id"])
        prev = set(s["id"])


def test_task_in_task_out_with_split(tmp_path: Path, pool: pd.DataFrame) -> None:
    rows = pool.copy()
    groups = sorted(rows["group"].unique())
    rows["split"] = rows["group"].map({g: ("test" if i % 4 == 0 else "train") for i, g in enumerate(groups)})
    task = write_task(tmp_path, dict(name="t", kind="multiclass", vocabulary=[f"c{i}" for i in range(5)]), rows,
                      check_audio=False)
    small = subset(task, per_class=2, split="train", seed=0)
    assert isinstance(small, Task) and small.spec == task.spec
    assert small.label_counts("train") == {f"c{i}": 2 for i in range(5)}
    # the other splits are kept whole and unchanged (budget the training set, evaluate on full test)
    pd.testing.assert_frame_equal(small.items[small.items["split"] != "train"].reset_index(drop=True),
                                  task.items[task.items["split"] != "train"].reset_index(drop=True))
    assert (task.items["split"] == "test").any()
    by_minutes = subset(task, minutes=1, split="train", seed=0)
    assert set(by_minutes.items.loc[by_minutes.items["split"] == "test", "id"]) == \
        set(task.items.loc[task.items["split"] == "test", "id"])
    with pytest.raises(ValueError, match="exactly one"):
        subset(task, minutes=5, per_class=2)

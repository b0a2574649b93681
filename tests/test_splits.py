"""The one grouped split: groups whole, stratified, proportions as documented, reproducible per seed."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from musicrep.data.splits import SPLIT_SALT, grouped_split, rank


def test_grouped_split_is_grouped_stratified_and_order_free() -> None:
    keys = [f"k{i}" for i in range(200)]
    labels = ["a" if i % 4 else "b" for i in range(200)]
    groups = [f"g{i // 5}" for i in range(200)]  # 40 groups of 5
    s1 = grouped_split(keys, labels, groups, seed=3)
    s2 = dict(grouped_split(keys[::-1], labels[::-1], groups[::-1], seed=3))
    assert s1 == s2  # independent of listing order
    by_group: dict[str, set[str]] = {}
    for k, g in zip(keys, groups):
        by_group.setdefault(g, set()).add(s1[k])
    assert all(len(v) == 1 for v in by_group.values())  # no group straddles splits
    counts = Counter(s1.values())
    assert counts["train"] > counts["valid"] > 0 and counts["test"] > 0
    assert grouped_split(keys, labels, groups, seed=4) != s1  # the seed matters
    # Every label with >= 3 groups reaches valid and test.
    few = grouped_split(["x1", "x2", "x3", "y1", "y2", "y3"], ["x"] * 3 + ["y"] * 3)
    assert sorted(few[k] for k in ("x1", "x2", "x3")) == ["test", "train", "valid"]


def test_proportions_count_groups_per_stratum() -> None:
    # 40 groups of 3 items, one stratum: 80/10/10 of 40 groups = 32/4/4 groups = 96/12/12 items.
    keys = [f"k{i}" for i in range(120)]
    split = grouped_split(keys, groups=[f"g{i // 3}" for i in range(120)], seed=1)
    assert Counter(split.values()) == {"train": 96, "valid": 12, "test": 12}
    # Weights need not sum to 1: (5, 1, 0) of 12 groups = 10 train, 2 valid, no test.
    split = grouped_split([f"k{i}" for i in range(12)], fractions=(5, 1, 0), seed=0)
    assert Counter(split.values()) == {"train": 10, "valid": 2}
    # Two strata of 20 groups each: each stratum is cut on its own (16/2/2 per label).
    labels = ["a"] * 20 + ["b"] * 20
    split = grouped_split([f"k{i}" for i in range(40)], labels, seed=5)
    for lab in "ab":
        got = Counter(s for k, s in split.items() if labels[int(k[1:])] == lab)
        assert got == {"train": 16, "valid": 2, "test": 2}


def test_a_group_counts_under_its_most_common_label() -> None:
    # Group m has two "y" items and one "x": it is a y group, so x keeps exactly 3 groups (1/1/1 split) and
    # y has 1 group (too few to cut: train).
    keys = ["x1", "x2", "x3", "m1", "m2", "m3"]
    split = grouped_split(keys, ["x", "x", "x", "y", "y", "x"], ["x1", "x2", "x3", "m", "m", "m"])
    assert sorted(split[k] for k in ("x1", "x2", "x3")) == ["test", "train", "valid"]
    assert {split[k] for k in ("m1", "m2", "m3")} == {"train"}


def test_a_stratum_does_not_depend_on_other_strata() -> None:
    a = [f"a{i}" for i in range(30)]
    alone = grouped_split(a, ["a"] * 30, seed=2)
    with_b = grouped_split(a + [f"b{i}" for i in range(17)], ["a"] * 30 + ["b"] * 17, seed=2)
    assert {k: with_b[k] for k in a} == alone


def test_rng_mode_is_reproducible_and_advances_the_generator() -> None:
    groups = [f"tune{i % 9}" for i in range(20)]  # tunes listed once per chorale
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    s1 = grouped_split(groups, fractions=(0.8, 0.1, 0.1), rng=r1)
    s2 = grouped_split(groups, fractions=(0.8, 0.1, 0.1), rng=r2)
    assert s1 == s2 and set(s1) == {f"tune{i}" for i in range(9)}
    assert Counter(s1.values()) == {"train": 7, "valid": 1, "test": 1}  # 9 groups: max(1, round(0.9)) each
    x1, x2, fresh = r1.random(), r2.random(), np.random.default_rng(7).random()
    assert x1 == x2 != fresh  # both generators advanced by the same shuffles


def test_rank_is_the_documented_hash_and_salts_are_independent() -> None:
    units = ["t1", "t2", "track 3"]
    expected = [int.from_bytes(hashlib.sha256(f"4:{u}".encode()).digest()[:8], "big") for u in units]
    assert rank(units, 4).tolist() == expected  # the budgets' ranks (unchanged since subset.rank)
    salted = [int.from_bytes(hashlib.sha256(f"{SPLIT_SALT}4:{u}".encode()).digest()[:8], "big") for u in units]
    assert rank(units, 4, salt=SPLIT_SALT).tolist() == salted
    assert rank(units, 4).dtype == np.uint64


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="same length"):
        grouped_split(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="fractions"):
        grouped_split(["a"], fractions=(0, 0, 0))

"""The one grouped split: whole groups to train/valid/test, stratified by label, reproducible per seed.

Takes one key per item (an id, a tune, a file) with an optional group (artist, track, instrument,
hymn tune) and an optional stratum (a label, a mode, a tertile of a regression target), and gives
``key → split``. Every importer that has to make up splits, the renderer and the budgets
(:mod:`musicrep.data.subset`, through :func:`rank`) use it; nothing else assigns items to splits.

Guarantees of :func:`grouped_split`:

- **Groups never straddle splits**: every item of a group gets the group's split (no leakage of a track,
  an artist or a melody from train into test).
- **Stratified by label when possible**: each group counts under its most common stratum, and each
  stratum is cut on its own, so every split sees every label; a stratum with at least three groups puts
  at least one group in valid and one in test (for a split whose fraction is above 0).
- **Proportions**: within a stratum of ``n`` groups, ``round(n · f_test / Σf)`` groups go to test,
  ``round(n · f_valid / Σf)`` to valid, the rest to train. Fractions count *groups*, not items or
  minutes.
- **Deterministic for a seed**: groups are ordered by :func:`rank` — a hash of (seed, group) — so a
  group's split does not depend on the order the items were listed in, on the machine, nor (beyond the
  cut of its own stratum) on which other groups exist. With ``rng=`` (the renderer, whose whole plan is
  drawn from one generator) groups are shuffled by that generator instead, in first-listed order, so a
  render stays byte-identical for its seed.

Why a hash rather than a shuffled list: the same dataset gives the same split on any machine, and
budgets (:func:`musicrep.data.subset.subset`) get nested sets (5 min ⊂ 10 min) from the same ranks.
Splits and budgets rank with different salts: with one shared rank, a small class's training groups
would be the ones just above its test/valid cut, i.e. late in every budget.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["SPLIT_SALT", "grouped_split", "rank"]

#: Salt of the ranks that order groups for splits (budgets rank with no salt); see the module docstring.
SPLIT_SALT = "split"


def rank(units: Iterable[object], seed: int = 0, *, salt: str = "") -> np.ndarray:
    """A seeded rank key per unit: the first 8 bytes of ``sha256(f"{salt}{seed}:{unit}")`` as uint64.

    Args:
        units: group or item names (anything with a stable ``str``).
        seed: the seed; another seed gives an unrelated order.
        salt: keeps rankings made for different purposes independent (splits use :data:`SPLIT_SALT`,
            budgets the empty salt).

    Returns:
        ``uint64 [N]``, one key per unit; sorting by it gives the seeded order.
    """
    return np.array(
        [int.from_bytes(hashlib.sha256(f"{salt}{seed}:{u}".encode()).digest()[:8], "big") for u in units],
        dtype=np.uint64,
    )


def grouped_split(
    keys: Sequence[str],
    strata: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    *,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> dict[str, str]:
    """Assign each key to ``train`` / ``valid`` / ``test`` by whole groups, stratified (see module docstring).

    Args:
        keys: one per item (ids; repeated keys must belong to one group, e.g. a tune listed per chorale).
        strata: one per item (a label); None puts everything in one stratum. A group's stratum is its most
            common value, ties broken by the greatest value (so listing order never matters).
        groups: one per item; None makes every key its own group.
        fractions: (train, valid, test) weights; they need not sum to 1 (``(5, 1, 0)`` = 1/6 valid, no test).
        seed: seed of the hash order (:func:`rank` with :data:`SPLIT_SALT`).
        rng: shuffle each stratum's groups (in first-listed order) with this generator instead of hash
            ordering — the renderer's reproducible-per-seed plans; it advances the generator.

    Returns:
        ``{key: split}`` for every distinct key.

    Raises:
        ValueError: ``keys``, ``strata`` and ``groups`` differ in length, or the fractions are negative or
            all 0.
    """
    if (strata is not None and len(strata) != len(keys)) or (groups is not None and len(groups) != len(keys)):
        raise ValueError("grouped_split: keys, strata and groups must have the same length")
    f_train, f_valid, f_test = fractions
    total = f_train + f_valid + f_test
    if min(fractions) < 0 or total <= 0:
        raise ValueError(f"grouped_split: fractions {fractions} must be ≥ 0 and not all 0")
    grp = list(groups) if groups is not None else list(keys)
    strat = list(strata) if strata is not None else [""] * len(grp)
    counts: dict[str, Counter[str]] = defaultdict(Counter)  # insertion order = first-listed order
    for g, s in zip(grp, strat):
        counts[g][s] += 1
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for g, c in counts.items():
        by_stratum[max(c.items(), key=lambda kv: (kv[1], kv[0]))[0]].append(g)
    assignment: dict[str, str] = {}
    for stratum in sorted(by_stratum):
        gs = by_stratum[stratum]
        if rng is not None:
            rng.shuffle(gs)
        else:
            gs = [g for _, g in sorted(zip(rank(gs, seed, salt=SPLIT_SALT).tolist(), gs))]
        n = len(gs)
        n_test = round(n * f_test / total)
        n_valid = round(n * f_valid / total)
        if n >= 3:  # a small stratum still reaches every split that is asked for
            n_test = max(1, n_test) if f_test > 0 else 0
            n_valid = max(1, n_valid) if f_valid > 0 else 0
        for i, g in enumerate(gs):
            assignment[g] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return {k: assignment[g] for k, g in zip(keys, grp)}

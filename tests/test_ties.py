"""Which leaderboard entries a paired bootstrap cannot tell apart from a task's winner, and the sentence
that says so — on a constructed run folder whose per-item predictions are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from musicrep.results import (
    RESULT_COLUMNS,
    append_rows,
    read_results,
    tie_sentence,
    tied_with_winner,
    write_predictions,
)


def _unit(out: Path, table: pd.DataFrame, rep: str, est: np.ndarray, y: np.ndarray, ids: list[str],
          seed: int = 0, valid: float = 0.9) -> pd.DataFrame:
    """One representation's rows (accuracy on task `t`) with its predictions file, as evaluate leaves them."""
    row = {c: None for c in RESULT_COLUMNS}
    row.update(representation=rep, task="t", kind="multiclass", probe="linear", layer="0:x", seed=seed,
               metric="accuracy", value=float(np.mean(est == y)), ci_low=0.0, ci_high=1.0, valid_value=valid,
               unit_key="k", predictions={"ref": y, "est": est, "ids": ids})
    write_predictions(out, [row])
    row.pop("predictions")
    return append_rows(table, [row], out / "results.csv")


def test_tied_and_worse_by_paired_bootstrap_and_the_sentence(tmp_path: Path) -> None:
    n = 300
    y = np.zeros(n, int)
    ids = [f"item{i}" for i in range(n)]
    best = y.copy()
    best[:30] = 1  # wrong on 30 items: 0.900
    close = best.copy()
    close[30:33] = 1  # 3 more mistakes: 0.890, inside the paired noise
    far = best.copy()
    far[30:90] = 1  # 60 more mistakes: 0.700
    out = tmp_path / "run"
    table = read_results(out / "results.csv")
    for seed in (0, 1, 2):  # the winner has three probe seeds (the same predictions here)
        table = _unit(out, table, "best", best, y, ids, seed=seed)
    table = _unit(out, table, "close", close, y, ids)
    table = _unit(out, table, "far", far, y, ids)
    # an entry whose items come in another order is paired by item id, not by position
    perm = np.random.default_rng(0).permutation(n)
    table = _unit(out, table, "shuffled", far[perm], y[perm], [ids[i] for i in perm])
    row = {c: None for c in RESULT_COLUMNS}
    row.update(representation="old", task="t", kind="multiclass", probe="linear", layer="0:x", seed=0,
               metric="accuracy", value=0.5, valid_value=0.5, unit_key="k")
    table = append_rows(table, [row], out / "results.csv")  # a row without a predictions file

    ties = tied_with_winner(table, out, n=1000)
    status = dict(zip(ties["representation"], ties["status"], strict=True))
    assert status == {"best": "winner", "close": "tied", "far": "worse", "shuffled": "worse", "old": "no predictions"}
    far_row = ties[ties["representation"] == "shuffled"].iloc[0]
    assert abs(far_row["difference"] - 0.2) < 1e-12  # 0.900 − 0.700, once the items are matched by id
    assert far_row["diff_low"] > 0 and far_row["n_items"] == n

    sentence = tie_sentence(ties)
    assert sentence == ("t: best (linear) wins with accuracy 0.900, 95 % CI [0.000, 1.000], 3 probe seeds "
                        "0.900–0.900; close (0.890) is statistically indistinguishable from it (a paired "
                        "bootstrap over the same 300 test items: the 95 % CI of the difference contains 0), and "
                        "the other 2 are worse; not compared (no per-item predictions kept): old.")


def test_sentence_when_nothing_is_tied(tmp_path: Path) -> None:
    y = np.zeros(200, int)
    ids = [str(i) for i in range(200)]
    a, b = y.copy(), y.copy()
    b[:100] = 1
    out = tmp_path / "run"
    table = _unit(out, read_results(out / "results.csv"), "a", a, y, ids)
    table = _unit(out, table, "b", b, y, ids)
    s = tie_sentence(tied_with_winner(table, out))
    assert "tells it apart from the only other representation, which is worse" in s and s.startswith("t: a (linear)")


def test_report_shows_the_sentence_from_ties_csv(tmp_path: Path) -> None:
    from musicrep.report import write_report
    from musicrep.results import write_csv_atomic

    y = np.zeros(100, int)
    ids = [str(i) for i in range(100)]
    b = y.copy()
    b[:60] = 1
    out = tmp_path / "run"
    table = _unit(out, read_results(out / "results.csv"), "a", y.copy(), y, ids)
    table = _unit(out, table, "b", b, y, ids, valid=0.5)
    ties = tied_with_winner(table, out)
    write_csv_atomic(ties, out / "ties.csv")
    page = write_report([out], tmp_path / "report.html")
    sentence = tie_sentence(ties)
    assert sentence in page.markdown.read_text() and sentence.split(";")[0] in page.html.read_text()

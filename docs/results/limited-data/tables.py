"""The tables of docs/results/limited-data/README.md and docs/results/FINDINGS.md, from a run's results.csv:

    python docs/results/limited-data/tables.py runs/limited-data-laptop/results.csv

Per task and probe: every curve point (mean over pretraining seeds; the band spans every seed's 95 % CI),
the handcrafted baselines, the 5-minute / all-minutes and twin / all-minutes ratios (F1, F2), MLP − linear
per point, and the layer chosen on validation per budget (does the best layer move with training?).
"""

from __future__ import annotations

import sys

import pandas as pd

from musicrep.report.views import clean_rows, curve_ratios, limited_data_view
from musicrep.results import read_results


def main(path: str) -> None:
    res = read_results(path)
    curves, base = limited_data_view(res)
    pd.set_option("display.width", 200, "display.max_rows", 500)
    fmt = lambda r: f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"  # noqa: E731
    print("## Curve points (value [band], seeds)\n")
    c = curves.assign(score=[fmt(r) for r in curves.itertuples()])
    print(c[["task", "probe", "representation", "pretrain_data", "budget_minutes", "score", "seeds"]]
          .to_string(index=False))
    print("\n## Baselines\n")
    b = base.assign(score=[fmt(r) for r in base.itertuples()])
    print(b[["task", "probe", "representation", "score"]].to_string(index=False))
    print("\n## Ratios\n")
    print(curve_ratios(curves).round(3).to_string(index=False))
    print("\n## MLP − linear per point\n")
    w = curves.pivot_table(index=["task", "representation", "pretrain_data", "budget_minutes"], columns="probe",
                           values="value")
    if {"linear", "mlp"} <= set(w.columns):
        print((w["mlp"] - w["linear"]).round(3).rename("mlp_minus_linear").reset_index().to_string(index=False))
    print("\n## Layer chosen on validation (linear probe, pretraining seed 0)\n")
    rows = clean_rows(res[(res["study"] == "limited-data") & res["budget_minutes"].notna()])
    rows = rows[(rows["probe"] == "linear") & (rows["pretrain_seed"] == 0)]
    primary = rows.groupby("task")["metric"].first()
    rows = rows[rows["metric"] == rows["task"].map(primary)]
    best = rows.loc[rows.groupby(["task", "representation", "pretrain_data", "budget_minutes"])["valid_value"].idxmax()]
    print(best[["task", "representation", "pretrain_data", "budget_minutes", "layer", "valid_value", "value"]]
          .round(3).to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1])

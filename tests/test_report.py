"""The report: synthetic run folders of every study → one self-contained HTML page + markdown summary.

The fake results tables look like what ``evaluate`` and the studies write (every column of
``RESULT_COLUMNS``, several layers, probes, seeds, deformations, budgets, NaN CIs); expected leaderboard
numbers are computed here with plain pandas, not with ``musicrep.results.leaderboard``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from musicrep.metrics import primary_metric
from musicrep.report import ReportError, write_report
from musicrep.results import RESULT_COLUMNS

TASKS = {"key": "key", "instrument": "multiclass", "tagging": "multilabel"}
SECOND_METRIC = {"key": "accuracy", "multiclass": "macro_f1", "multilabel": "roc_auc"}
REPS = {"mfcc-stats": ["0:mfcc"], "vgg-random": [f"{i}:conv{i + 1}" for i in range(4)],
        "mert": [f"{i}:layer{i}" for i in range(7)]}
DEFORMATIONS = ["noise:pink@snr=30", "noise:pink@snr=20", "noise:pink@snr=10", "noise:pink@snr=0",
                "mp3@kbps=128", "mp3@kbps=64", "mp3@kbps=32", "pitch@semitones=-1", "pitch@semitones=1", "gain@db=-12"]


def _rows(rng: np.random.Generator, *, study: str, reps: dict[str, list[str]], layers_extra: tuple[str, ...] = (),
          nan_ci: tuple[str, ...] = (), seeds: tuple[int, ...] = (0, 1), **cond) -> list[dict]:
    """Rows for every task × representation × layer × probe × seed under one condition, two metrics each."""
    out = []
    for task, kind in TASKS.items():
        primary = primary_metric(kind).name
        for rep, layers in reps.items():
            base = rng.uniform(0.3, 0.8)
            for layer in [*layers, *layers_extra]:
                for probe in ("linear", "mlp"):
                    for seed in seeds:
                        for metric in (primary, SECOND_METRIC[kind]):
                            value = float(np.clip(base + rng.normal(0, 0.08), 0, 1))
                            ci = (np.nan, np.nan) if rep in nan_ci else (value - rng.uniform(0.01, 0.06),
                                                                          value + rng.uniform(0.01, 0.06))
                            out.append({
                                "study": study, "representation": rep, "rep_id": f"{rep}-abc-def",
                                "budget_minutes": np.nan, "layer": layer, "task": task, "kind": kind, "probe": probe,
                                "deformation": "none", "train_deformation": "none", "labelled_per_class": np.nan,
                                "augment_fraction": 0.0, "sample_weight": 1.0, "seed": seed, "metric": metric,
                                "value": value, "ci_low": ci[0], "ci_high": ci[1],
                                "valid_value": float(np.clip(value + rng.normal(0, 0.05), 0, 1)),
                                "n_train": 120, "n_test": 40, "n_failed": 0, "selection": "valid",
                                "best_config": "{}", "layer_weights": "", "unit_key": "k" + str(rng.integers(1e9)),
                                **cond})
    return out


def _write_run(folder: Path, rows: list[dict], *, side_files: bool = True) -> Path:
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=RESULT_COLUMNS).to_csv(folder / "results.csv", index=False)
    if side_files:
        (folder / "config.resolved.yaml").write_text(f"out: {folder}\nseeds: [0, 1]\nbootstrap: 200\n")
        (folder / "versions.json").write_text(json.dumps({"python": "3.11.2", "musicrep": "0.1.0", "torch": "2.13.0"}))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(7)
    out = {}
    out["evaluate"] = _write_run(root / "evaluate", _rows(rng, study="evaluate", reps=REPS, layers_extra=("all",)))
    layer_rows = _rows(rng, study="layerwise", reps={k: v for k, v in REPS.items() if len(v) > 1},
                       layers_extra=("weighted",))
    out["layerwise"] = _write_run(root / "layerwise", layer_rows)
    cka = []
    for rep in ("vgg-random", "mert"):
        for a in REPS[rep]:
            for b in REPS[rep]:
                ia, ib = int(a.split(":")[0]), int(b.split(":")[0])
                cka.append({"representation": rep, "task": "instrument", "layer_a": a, "layer_b": b,
                            "cka": 1.0 if a == b else float(np.exp(-abs(ia - ib) / 3))})
    pd.DataFrame(cka).to_csv(out["layerwise"] / "cka.csv", index=False)
    robust = []
    reps_r = {"mfcc-stats": REPS["mfcc-stats"], "vgg-random": REPS["vgg-random"][-2:]}
    for train in ("none", "noise:pink@snr=10+mp3@kbps=64"):
        for d in ["none", *DEFORMATIONS]:
            robust += _rows(rng, study="robustness", reps=reps_r, nan_ci=("mfcc-stats",), deformation=d,
                            train_deformation=train)
    out["robustness"] = _write_run(root / "robustness", robust)
    aug = []
    for budget in (5, 10, 20, 50, np.nan):
        for frac, weight in ((0.0, 1.0), (0.25, 1.0), (0.25, 0.5), (0.5, 1.0)):
            aug += _rows(rng, study="augmentation", reps={"mfcc-stats": REPS["mfcc-stats"]}, seeds=(0,),
                         labelled_per_class=budget, augment_fraction=frac, sample_weight=weight)
    out["augmentation"] = _write_run(root / "augmentation", aug)
    # a bare run: one representation, no CIs (bootstrap 0), no side files
    out["bare"] = _write_run(root / "bare", _rows(rng, study="evaluate", reps={"chroma": ["0:chroma"]},
                                                  nan_ci=("chroma",), seeds=(0,)), side_files=False)
    return out


class _Tables(HTMLParser):
    """Every ``<table>`` with the ``h2``/``h3`` headings above it, every ``img src`` and ``details`` summary."""

    def __init__(self) -> None:
        super().__init__()
        self.h2 = self.h3 = ""
        self.tables: list[tuple[str, str, list[list[str]]]] = []
        self.images: list[str] = []
        self.h2s: list[str] = []
        self.summaries: list[str] = []
        self._in: str | None = None
        self._text = ""
        self._row: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("h2", "h3", "td", "th", "summary"):
            self._in, self._text = tag, ""
        elif tag == "table":
            self._depth += 1
            if self._depth == 1:
                self.tables.append((self.h2, self.h3, []))
        elif tag == "tr" and self._depth == 1:
            self._row = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._depth -= 1
        elif tag == self._in:
            if tag == "h2":
                self.h2, self.h3 = self._text, ""
                self.h2s.append(self._text)
            elif tag == "h3":
                self.h3 = self._text
            elif tag == "summary":
                self.summaries.append(self._text)
            elif self._row is not None and self._depth == 1:
                self._row.append(self._text)
            self._in = None
        elif tag == "tr" and self._row is not None and self._depth == 1:
            self.tables[-1][2].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in:
            self._text += data


def _parse(page: Path) -> _Tables:
    p = _Tables()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def _expected_leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """Plain-pandas leaderboard of clean rows: mean over seeds, (layer, probe) with the best mean valid."""
    out = []
    for (task, rep), g in results.groupby(["task", "representation"]):
        g = g[g["metric"] == primary_metric(TASKS[task]).name]
        means = g.groupby(["layer", "probe"])[["valid_value", "value", "ci_low", "ci_high"]].mean()
        best = means["valid_value"].idxmax()
        at = g.set_index(["layer", "probe"]).loc[[best], "value"]  # every seed's test value there
        out.append({"task": task, "representation": rep, "layer": best[0], "probe": best[1], **means.loc[best],
                    "value_min": at.min(), "value_max": at.max()})
    return pd.DataFrame(out)


def _fmt_ci(lo: float, hi: float) -> str:
    return "—" if np.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]"


def _assert_pngs(images: list[str]) -> None:
    assert images
    for src in images:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(raw)) as im:
            im.verify()
        with Image.open(io.BytesIO(raw)) as im:
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 100


def test_evaluate_run_leaderboard_matches_pandas(runs: dict[str, Path], tmp_path: Path) -> None:
    files = write_report([runs["evaluate"]], tmp_path / "report.html")
    assert files.markdown == tmp_path / "report.md" and files.markdown.exists()
    parsed = _parse(files.html)
    expected = _expected_leaderboard(pd.read_csv(runs["evaluate"] / "results.csv"))
    boards = {h3.split(" — ")[0]: rows for h2, h3, rows in parsed.tables if h2.startswith("Leaderboard")}
    assert sorted(boards) == sorted(TASKS)
    for task, rows in boards.items():
        header, body = rows[0], rows[1:]
        metric = primary_metric(TASKS[task]).name
        assert header[:4] == ["rank", "representation", "probe", "layer"] and header[4] == f"{metric} (test)"
        exp = expected[expected["task"] == task].sort_values("value", ascending=False)
        assert [r[1] for r in body] == exp["representation"].tolist()  # ranked by the test value
        for r, (_, e) in zip(body, exp.iterrows(), strict=True):
            assert (r[2], r[3]) == (e["probe"], e["layer"])
            assert r[4] == f"{e['value']:.3f}"
            assert r[5] == _fmt_ci(e["ci_low"], e["ci_high"])
            assert r[6] == f"{e['valid_value']:.3f}"
            assert r[7] == f"2: {e['value_min']:.3f}–{e['value_max']:.3f}"  # two seeds and their spread
    # an evaluate-only run has no study sections, but the leaderboard bars and the provenance
    assert not any(h.startswith(("Layer-wise", "Robustness", "Augmentation")) for h in parsed.h2s)
    assert len(parsed.images) == len(TASKS)
    _assert_pngs(parsed.images)
    assert "config.resolved.yaml" in parsed.summaries and "package versions (versions.json)" in parsed.summaries
    md = files.markdown.read_text()
    assert "## Leaderboard" in md
    best_key = expected[expected["task"] == "key"].sort_values("value", ascending=False).iloc[0]
    assert f"| 1 | {best_key['representation']} | {best_key['probe']} | {best_key['layer']} | {best_key['value']:.3f} |" in md


def test_every_study_section_and_self_contained(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "all" / "report.html"
    files = write_report([runs[k] for k in ("evaluate", "layerwise", "robustness", "augmentation", "bare")], out)
    page = out.read_text(encoding="utf-8")
    parsed = _parse(out)
    for title in ("Runs", "Leaderboard", "Layer-wise — run layerwise", "Robustness — run robustness",
                  "Augmentation — run augmentation", "Configs and package versions"):
        assert any(h.startswith(title) for h in parsed.h2s), (title, parsed.h2s)
    # self-contained: no reference to anything outside the file, no script
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page)
    assert "http://" not in page and "https://" not in page and "@import" not in page
    _assert_pngs(parsed.images)
    assert files.n_figures == len(parsed.images)
    # figures: leaderboard bars per task; layerwise heat-map per task + CKA + comparison per task;
    # robustness curves per task; augmentation curves per task
    alts = re.findall(r'<img src="data:[^"]+" alt="([^"]+)"', page)
    for task in TASKS:
        for what in ("leaderboard bars", "layer heat-map", "layer choice comparison", "robustness curves",
                     "augmentation curves"):
            assert f"{what} for {task}" in alts
    assert "linear CKA matrices" in alts

    # best single vs weighted vs last: recomputed with pandas from the layerwise table
    lw = pd.read_csv(runs["layerwise"] / "results.csv")
    comp = {(h3.split(" — ")[0], r[0]): r for h2, h3, rows in parsed.tables
            if h2.startswith("Layer-wise") and "weighted sum" in h3 for r in rows[1:]}
    for (task, rep), g in lw.groupby(["task", "representation"]):
        g = g[g["metric"] == primary_metric(TASKS[task]).name]
        single = g[g["layer"] != "weighted"]
        means = single.groupby(["layer", "probe"])[["valid_value", "value", "ci_low", "ci_high"]].mean()
        best = means["valid_value"].idxmax()
        last = max(single["layer"], key=lambda s: int(s.split(":")[0]))
        lm = means.loc[last]
        last_probe = lm["valid_value"].idxmax()
        wm = g[g["layer"] == "weighted"].groupby("probe")[["valid_value", "value", "ci_low", "ci_high"]].mean()
        wp = wm["valid_value"].idxmax()
        row = comp[(task, rep)]
        assert row[1] == best[0]
        assert row[2] == f"{means.loc[best, 'value']:.3f} {_fmt_ci(means.loc[best, 'ci_low'], means.loc[best, 'ci_high'])}"
        assert row[3].startswith(f"{wm.loc[wp, 'value']:.3f} ")
        assert row[4] == last and row[5].startswith(f"{lm.loc[last_probe, 'value']:.3f} ")

    # robustness: relative change vs clean, a table per training condition, a column per representation
    rb = pd.read_csv(runs["robustness"] / "results.csv", keep_default_na=False, na_values=[""])
    drops = [(h3.split(" — ")[0], rows) for h2, h3, rows in parsed.tables if h2.startswith("Robustness")]
    assert sorted({t for t, _ in drops}) == sorted(TASKS) and len(drops) == 2 * len(TASKS)
    task, rows = next((t, r) for t, r in drops if r[0][0] == "test audio (probes trained on clean audio)")
    assert any(r[0][0] == "test audio (probes trained on noise:pink@snr=10+mp3@kbps=64)" for _, r in drops)
    header = rows[0]
    assert header[1:] == ["mfcc-stats", "vgg-random"]
    # rows: the clean score, then families in name order, mild → harsh within each
    assert [r[0] for r in rows[1:]] == [f"clean {primary_metric(TASKS[task]).name}", "gain@db=-12", "mp3@kbps=128",
                                        "mp3@kbps=64", "mp3@kbps=32", "noise:pink@snr=30", "noise:pink@snr=20",
                                        "noise:pink@snr=10", "noise:pink@snr=0", "pitch@semitones=-1",
                                        "pitch@semitones=1"]
    prim = primary_metric(TASKS[task]).name
    sub = rb[(rb["task"] == task) & (rb["metric"] == prim) & (rb["representation"] == "vgg-random")
             & (rb["train_deformation"] == "none")]

    def chosen(d: str) -> float:
        m = sub[sub["deformation"] == d].groupby(["layer", "probe"])[["valid_value", "value"]].mean()
        return float(m.loc[m["valid_value"].idxmax(), "value"])

    clean = chosen("none")
    assert rows[1][2] == f"{clean:.3f}"
    for r in rows[2:]:
        assert r[2] == f"{chosen(r[0]):.3f} ({100 * (chosen(r[0]) - clean) / abs(clean):+.1f} %)"

    # augmentation: a row per (representation, share, weight), a column per labelled budget ("all" = NaN)
    aug = {h3.split(" — ")[0]: rows for h2, h3, rows in parsed.tables if h2.startswith("Augmentation")}
    assert sorted(aug) == sorted(TASKS)
    header, body = aug["instrument"][0], aug["instrument"][1:]
    assert header == ["representation", "augmented share", "sample weight", "5", "10", "20", "50", "all"]
    assert [r[1:3] for r in body] == [["0%", "1.00"], ["25%", "0.50"], ["25%", "1.00"], ["50%", "1.00"]]
    ag = pd.read_csv(runs["augmentation"] / "results.csv")
    ag = ag[(ag["task"] == "instrument") & (ag["metric"] == "accuracy") & (ag["augment_fraction"] == 0.25)
            & (ag["sample_weight"] == 0.5)]
    for col, budget in zip(header[3:], [5, 10, 20, 50, None], strict=True):
        cell = ag[ag["labelled_per_class"].isna()] if budget is None else ag[ag["labelled_per_class"] == budget]
        m = cell.groupby(["layer", "probe"])[["valid_value", "value", "ci_low", "ci_high"]].mean()
        best = m.loc[m["valid_value"].idxmax()]
        assert body[1][header.index(col)] == f"{best['value']:.3f} {_fmt_ci(best['ci_low'], best['ci_high'])}"

    # runs overview: the bare run says what is missing; provenance blocks for the others
    overview = next(rows for h2, h3, rows in parsed.tables if h2 == "Runs")
    bare = next(r for r in overview[1:] if r[0] == "bare")
    assert "config.resolved.yaml is missing" in bare[-1] and "versions.json is missing" in bare[-1]
    assert parsed.summaries.count("config.resolved.yaml") == 4
    md = files.markdown.read_text()
    for title in ("## Leaderboard", "## Layer-wise", "## Robustness", "## Augmentation", "## Configs"):
        assert title in md


def test_missing_folder_or_table_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such folder"):
        write_report([tmp_path / "nope"], tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no results.csv"):
        write_report([tmp_path / "empty"], tmp_path / "r.html")
    with pytest.raises(ReportError, match=r"\.html"):
        write_report([tmp_path / "empty"], tmp_path / "r.pdf")


def test_cli_report(runs: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from musicrep.cli import app

    out = tmp_path / "cli" / "summary.html"
    res = CliRunner().invoke(app, ["report", str(runs["robustness"]), str(runs["bare"]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and (tmp_path / "cli" / "summary.md").exists()
    assert str(out) in res.output.replace("\n", "")
    res = CliRunner().invoke(app, ["report", str(tmp_path / "missing"), "--out", str(out)])
    assert res.exit_code == 2
    assert "no such folder" in res.output


# ------------------------------------------------------------------------------------------ the browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Put at the top of a *copy* of the page (the page itself has no script): records load errors and console
#: errors from the first moment, and once the load event fired writes what it saw into an attribute that
#: ``--dump-dom`` prints.
PROBE = """<script>
window.__problems = [];
window.addEventListener('error', function (e) {
  var t = e.target; window.__problems.push(t && t.tagName ? 'failed to load ' + t.tagName : 'error ' + e.message);
}, true);
['error', 'warn'].forEach(function (level) {
  var orig = console[level];
  console[level] = function () { window.__problems.push(level + ' ' + Array.from(arguments).join(' '));
                                 orig.apply(console, arguments); };
});
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.documentElement.setAttribute('data-probe', JSON.stringify(
    {images: imgs.length, loaded: ok, problems: window.__problems}));
});
</script>"""


def browser_check(page: Path, tmp: Path, screenshot: Path) -> dict:
    """Open ``page`` in headless Chromium: ``{images, loaded, problems, console}`` (console = the lines
    Chromium logged from the page's console) and a screenshot of the page itself at ``screenshot``."""
    probed = tmp / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=10000"]
    res = subprocess.run([*args, "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', res.stdout)
    assert found, "the page never fired its load event in Chromium:\n" + res.stderr[-2000:]
    import html

    seen = json.loads(html.unescape(found.group(1)))
    seen["console"] = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    shot = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile-shot'}", f"--screenshot={screenshot}",
                           "--window-size=1280,2400", "--hide-scrollbars", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    return seen


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium; "
                                             ".ci/run installs it)")
def test_page_renders_in_chromium(runs: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    write_report([runs[k] for k in ("evaluate", "layerwise", "robustness", "augmentation", "bare")], page)
    shot = tmp_path / "report.png"
    seen = browser_check(page, tmp_path, shot)
    n_img = page.read_text(encoding="utf-8").count("<img ")
    assert seen["images"] == n_img > 10
    assert seen["loaded"] == seen["images"], seen
    assert seen["problems"] == [] and seen["console"] == [], seen
    with Image.open(shot) as im:
        assert im.size == (1280, 2400)
        # not a blank page: the screenshot has text and plot colours, not one flat colour
        assert len(np.unique(np.asarray(im.convert("RGB").resize((128, 240))).reshape(-1, 3), axis=0)) > 50


def test_browser_check_catches_a_broken_image(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    page = tmp_path / "broken.html"
    good = base64.b64encode(Image.new("RGB", (4, 4)).tobytes()).decode()  # raw pixels, not a PNG
    page.write_text(f'<!DOCTYPE html><html><head></head><body><img src="data:image/png;base64,{good}">'
                    '<p>x</p></body></html>')
    seen = browser_check(page, tmp_path, tmp_path / "broken.png")
    assert seen["images"] == 1 and seen["loaded"] == 0
    assert seen["problems"] == ["failed to load IMG"]


def test_layer_scores_pick_the_probe_within_each_layer(runs: dict[str, Path]) -> None:
    from musicrep.report.views import layer_scores
    from musicrep.results import read_results

    got = layer_scores(read_results(runs["layerwise"] / "results.csv"))
    raw = pd.read_csv(runs["layerwise"] / "results.csv")
    raw = raw[(raw["layer"] != "weighted") & (raw["metric"] == raw["kind"].map(lambda k: primary_metric(k).name))]
    n = 0
    for (task, rep, layer), g in raw.groupby(["task", "representation", "layer"]):
        m = g.groupby("probe")[["valid_value", "value"]].mean()
        row = got[(got["task"] == task) & (got["representation"] == rep) & (got["layer"] == layer)]
        assert len(row) == 1
        assert row["probe"].iloc[0] == m["valid_value"].idxmax()
        assert row["value"].iloc[0] == pytest.approx(m.loc[m["valid_value"].idxmax(), "value"])
        assert row["layer_index"].iloc[0] == int(layer.split(":")[0])
        n += 1
    assert n == len(got) == 3 * (4 + 7)


def test_deformation_strings_and_severity_order() -> None:
    from musicrep.report.views import deformation_family, deformation_severity, severity_order

    assert deformation_family("noise:pink@snr=10") == "noise:pink" and deformation_family("none") == "none"
    assert deformation_severity("noise:pink@snr=10") == ("snr", 10.0)
    assert deformation_severity("background@snr=0,dir=/data/noise") == ("snr", 0.0)
    assert deformation_severity("pitch@semitones=-1") == ("semitones", -1.0)
    assert deformation_severity("none") == (None, None)
    # mild → harsh: high SNR / bitrate first; distance from 0 semitones / dB, from rate 1
    assert severity_order("snr", [0, 30, 10, 20]) == [30, 20, 10, 0]
    assert severity_order("kbps", [32, 128, 64]) == [128, 64, 32]
    assert severity_order("semitones", [2, -1, 1, -2]) == [-1, 1, -2, 2]
    assert severity_order("rate", [1.2, 0.9, 1.05]) == [1.05, 0.9, 1.2]

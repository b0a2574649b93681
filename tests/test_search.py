"""Similarity search: the faiss index against numpy brute force, its folder round trip, growing it, its errors,
``musicrep index build/query/add`` on a tiny audio folder, and the ``knn-index`` probe against scikit-learn."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from typer.testing import CliRunner

pytest.importorskip("faiss")

from musicrep.cli import app  # noqa: E402
from musicrep.kinds import get_kind  # noqa: E402
from musicrep.probe import ProbeConfig, ProbeData, ProbeSetup, evaluate_probe  # noqa: E402
from musicrep.probe.neighbors import IndexKNN  # noqa: E402
from musicrep.search import Index, SearchError, recall_at  # noqa: E402

SR = 16_000


def _vectors(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _brute_cosine(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = qn.astype(np.float64) @ xn.T.astype(np.float64)
    ids = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, ids, 1), ids


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_search_equals_numpy_brute_force(metric: str) -> None:
    x, q = _vectors(500, 24, 0), _vectors(40, 24, 1)
    index = Index.build(x, metric=metric)
    assert index.kind == "flat"  # 500 items: exact
    scores, ids = index.search(q, 7)
    assert scores.shape == ids.shape == (40, 7)
    if metric == "cosine":
        ref_s, ref_i = _brute_cosine(x, q, 7)
    else:
        d2 = ((q[:, None, :].astype(np.float64) - x[None].astype(np.float64)) ** 2).sum(-1)
        ref_i = np.argsort(d2, axis=1, kind="stable")[:, :7]
        ref_s = np.take_along_axis(d2, ref_i, 1)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_allclose(scores, ref_s, rtol=1e-4, atol=1e-4)


def test_approximate_kinds_reach_their_calibrated_recall() -> None:
    # clustered data, queries not in the index; exact answers from numpy
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((20, 16)).astype(np.float32)
    x = centres[rng.integers(0, 20, 4000)] + 0.5 * rng.standard_normal((4000, 16)).astype(np.float32)
    q = centres[rng.integers(0, 20, 200)] + 0.5 * rng.standard_normal((200, 16)).astype(np.float32)
    _, truth = _brute_cosine(x, q, 10)
    for kind in ("ivf", "hnsw"):
        index = Index.build(x, kind=kind, target_recall=0.95)
        assert index.kind == kind and index.params["calibrated_recall"] >= 0.95
        assert recall_at(index.search(q, 10)[1], truth) >= 0.9


def test_save_load_round_trip_gives_identical_results(tmp_path: Path) -> None:
    import pandas as pd

    x, q = _vectors(3000, 16, 2), _vectors(25, 16, 3)
    items = pd.DataFrame({"path": [f"clip{i}.wav" for i in range(3000)], "label": ["a", "b", "c"] * 1000})
    for kind in ("flat", "ivf"):
        index = Index.build(x, items, kind=kind, info={"note": "test"})
        before = index.search(q, 5)
        index.save(tmp_path / kind)
        meta = json.loads((tmp_path / kind / "index.json").read_text())
        assert (meta["kind"], meta["dim"], meta["count"], meta["metric"], meta["note"]) == (kind, 16, 3000, "cosine", "test")
        again = Index.load(tmp_path / kind)
        after = again.search(q, 5)
        np.testing.assert_array_equal(before[1], after[1])
        np.testing.assert_array_equal(before[0], after[0])
        assert again.items["path"].tolist() == items["path"].tolist()
        assert again.params == index.params


def test_add_later_equals_building_at_once() -> None:
    x, q = _vectors(800, 12, 4), _vectors(30, 12, 5)
    at_once = Index.build(x)
    grown = Index.build(x[:300])
    ids = grown.add(x[300:])
    np.testing.assert_array_equal(ids, np.arange(300, 800))
    assert grown.count == 800 and len(grown.items) == 800
    for a, b in zip(at_once.search(q, 10), grown.search(q, 10)):
        np.testing.assert_array_equal(a, b)


def test_errors_name_the_problem(tmp_path: Path) -> None:
    index = Index.build(_vectors(50, 8, 0))
    with pytest.raises(SearchError, match=r"vectors have 9 dimensions but the index has 8"):
        index.search(_vectors(2, 9, 1), 3)
    with pytest.raises(SearchError, match=r"vectors have 4 dimensions but the index has 8"):
        index.add(_vectors(2, 4, 1))
    with pytest.raises(SearchError, match=r"nowhere: does not exist; build one with `musicrep index build"):
        Index.load(tmp_path / "nowhere")
    with pytest.raises(SearchError, match="unknown index kind 'annoy'"):
        Index.build(_vectors(5, 8, 0), kind="annoy")


def _tone(path: Path, hz: float, seconds: float = 1.5) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32),
             SR, subtype="FLOAT")
    return path


def test_cli_build_query_add_finds_the_query_itself(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    for i, hz in enumerate([110, 220, 330, 440, 550]):
        _tone((audio / "sub" if i % 2 else audio) / f"tone{hz}.wav", hz)
    idx = tmp_path / "idx"
    run = CliRunner()
    res = run.invoke(app, ["index", "build", "--rep", "mfcc", "--audio", str(audio), "--out", str(idx)])
    assert res.exit_code == 0, res.output
    meta = json.loads((idx / "index.json").read_text())
    assert meta["count"] == 5 and meta["representation"]["name"] == "mfcc" and meta["kind"] == "flat"
    query = audio / "tone330.wav"
    res = run.invoke(app, ["index", "query", str(idx), str(query), "-k", "3", "--json", "--out", str(tmp_path / "n.csv")])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert len(rows) == 3 and rows[0]["path"] == str(query.resolve()) and rows[0]["score"] > 0.999
    assert (tmp_path / "n.csv").read_text().count("\n") == 4  # header + 3 neighbours
    # the features are z-scored by default: other tones are not all ~1 away, as with raw MFCCs (c0 dominates)
    assert rows[2]["score"] < 0.9
    raw = tmp_path / "raw"
    assert run.invoke(app, ["index", "build", "--rep", "mfcc", "--audio", str(audio), "--out", str(raw), "--raw",
                            "--store", str(idx / "store")]).exit_code == 0
    res = run.invoke(app, ["index", "query", str(raw), str(query), "-k", "3", "--json"])
    assert min(json.loads(line)["score"] for line in res.output.splitlines() if line.startswith("{")) > 0.95
    # add a new file later: it is found as its own nearest neighbour, and already indexed files are skipped
    more = tmp_path / "more"
    more.mkdir()
    _tone(more / "tone770.wav", 770)
    shutil.copy(query, more / "again330.wav")  # same bytes as an indexed file
    res = run.invoke(app, ["index", "add", str(idx), "--audio", str(more)])
    assert res.exit_code == 0, res.output
    assert json.loads((idx / "index.json").read_text())["count"] == 6
    res = run.invoke(app, ["index", "query", str(idx), str(more / "tone770.wav"), "-k", "1", "--json"])
    assert json.loads(res.output.splitlines()[-1])["path"] == str((more / "tone770.wav").resolve())
    # a missing index is one message, exit 2
    res = run.invoke(app, ["index", "query", str(tmp_path / "none"), str(query)])
    assert res.exit_code == 2 and "musicrep index build" in res.output


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = rng.standard_normal((3, 10))
    return (centres[y] + 1.2 * rng.standard_normal((n, 10))).astype(np.float32), y


def test_knn_index_probe_matches_scikit_learn() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    xtr, ytr = _blobs(300, 0)
    xte, _ = _blobs(120, 1)
    for k in (1, 5, 10):
        probe = IndexKNN(get_kind("multiclass"), torch.from_numpy(xtr)[None], torch.from_numpy(ytr),
                         [ProbeConfig(k=k)], out_dim=3)
        scores = probe.predict(torch.from_numpy(xte)[None])[0, 0].numpy()  # [N, K]
        ref = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(xtr, ytr)
        proba = ref.predict_proba(xte)
        np.testing.assert_allclose(scores, proba, atol=1e-5)  # vote fractions (+ a 1e-6 tie-break term)
        untied = np.sort(proba, 1)[:, -1] > np.sort(proba, 1)[:, -2]
        np.testing.assert_array_equal(scores.argmax(1)[untied], ref.predict(xte)[untied])


def test_knn_index_is_a_registered_probe_equal_to_knn_when_exact() -> None:
    xtr, ytr = _blobs(200, 2)
    xva, yva = _blobs(60, 3)
    xte, yte = _blobs(80, 4)
    data = ProbeData.of("multiclass", xtr, ytr, xva, yva, xte, yte, vocabulary=["a", "b", "c"])
    rows = {p: evaluate_probe(data, ProbeSetup(probe=p, grid="fast", n_bootstrap=50)) for p in ("knn", "knn-index")}
    assert [r["value"] for r in rows["knn"]] == [r["value"] for r in rows["knn-index"]]
    assert [r["best_config"] for r in rows["knn"]] == [r["best_config"] for r in rows["knn-index"]]


def test_task_index_carries_labels_and_splits(tmp_path: Path) -> None:
    from musicrep.search import build_index

    task = tmp_path / "task"
    (task / "audio").mkdir(parents=True)
    rows = ["id,path,split,label,duration,group"]
    for i, (split, label, hz) in enumerate([("train", "low", 110), ("train", "high", 880), ("test", "low", 130)]):
        _tone(task / "audio" / f"a{i}.wav", hz)
        rows.append(f"a{i},audio/a{i}.wav,{split},{label},1.5,a{i}")
    (task / "items.csv").write_text("\n".join(rows) + "\n")
    (task / "task.yaml").write_text(yaml.safe_dump({"name": "tones", "kind": "multiclass", "vocabulary": ["low", "high"]}))
    index, errors = build_index("mfcc", task=task, splits=["train"], store=tmp_path / "store", progress=False)
    assert not errors and index.count == 2
    assert index.items[["item", "split", "label", "task"]].values.tolist() == [["a0", "train", "low", "tones"],
                                                                             ["a1", "train", "high", "tones"]]
    table = index.query_file(task / "audio" / "a2.wav", k=1)
    assert table["label"].tolist() == ["low"]  # 130 Hz is nearer 110 Hz than 880 Hz

"""A vector index over per-clip embeddings: faiss underneath, metadata rows beside it, one folder on disk.

Takes vectors ``[N, D]`` float32 and one metadata row per vector (path, label, split, content key, …);
gives the ``k`` nearest items of each query, ``(scores [Q, k], ids [Q, k])``, where ``ids`` are row
numbers into :attr:`Index.items`. Knows nothing about audio: :mod:`musicrep.search.build` fills it from
the embedding store, and the ``knn-index`` probe builds one per layer from training embeddings.

Metrics: ``cosine`` (default; vectors are L2-normalised, then inner product, so scores are cosine
similarities in [-1, 1]), ``ip`` (raw inner product) and ``l2`` (scores are *squared* distances, smaller is
closer — faiss's convention). Kinds: ``flat`` (exact), ``ivf`` and ``hnsw`` (approximate); ``auto`` is
exact below :data:`EXACT_BELOW` items and :data:`APPROXIMATE` above.

Why IVF for ``auto`` above 100k, measured by ``benchmarks/search.py`` (1M clustered 128-d vectors, 2
shared cores): IVF-Flat with ~4·√N lists reached recall@10 0.970 at 177× the exact scan's queries/s,
built in 209 s and takes 522 MB (flat: 512 MB; 8 bytes of ids per vector on top). HNSW (M=32) reached
0.987 at 80× but took 592 s to build and 784 MB (graph links). Both are kept for ``kind=`` to force.

Why the search depth is calibrated at build (``nprobe`` for IVF, ``efSearch`` for HNSW): recall depends on
the data's geometry, not only on N, so a fixed depth is either wasteful or too shallow. The build makes up
to 256 fresh queries near its own vectors (see :meth:`Index.calibrate`), finds their exact neighbours,
and takes the smallest depth reaching ``target_recall``; the measured recall is kept in :attr:`Index.params`.

A folder holds ``index.faiss`` (faiss's own format), ``items.csv`` (the metadata, read back as text) and
``index.json`` (format, metric, kind, dim, count, search params and whatever the builder put in
``info``: the representation, window and layer), each written atomically; ``index.json`` is written last,
so a folder with it is complete.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrep.util import atomic_path

__all__ = ["Index", "SearchError", "METRICS", "KINDS", "EXACT_BELOW", "APPROXIMATE", "FORMAT", "exact_search",
           "recall_at"]

METRICS = ("cosine", "ip", "l2")
KINDS = ("auto", "flat", "ivf", "hnsw")
#: ``auto`` builds an exact index below this many items (the issue's threshold; an exact scan of 100k
#: 128-d vectors still answers a query in 1–2 ms on 2 cores, measured by benchmarks/search.py).
EXACT_BELOW = 100_000
#: the approximate kind ``auto`` picks at or above :data:`EXACT_BELOW` (see the module docstring for why)
APPROXIMATE = "ivf"
FORMAT = 1
HNSW_M = 32
CALIBRATION_QUERIES = 256
INDEX_FILE, ITEMS_FILE, META_FILE = "index.faiss", "items.csv", "index.json"


class SearchError(ValueError):
    """A search index that cannot be built, read or queried as asked; the message names the file or value and the fix."""


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise SearchError("similarity search needs faiss: pip install 'musicrep[search]' (or faiss-cpu)") from None
    return faiss


def _as_vectors(x: Any, what: str, dim: int | None = None) -> np.ndarray:
    """``[N, D]`` float32, C-contiguous, finite; ``SearchError`` naming ``what`` otherwise."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1 and dim is not None and a.shape[0] == dim:
        a = a[None, :]
    if a.ndim != 2:
        raise SearchError(f"{what}: expected vectors [N, D], got an array of shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise SearchError(f"{what}: vectors have {a.shape[1]} dimensions but the index has {dim}; "
                          "embed with the index's representation and layer (see index.json)")
    if not np.isfinite(a).all():
        raise SearchError(f"{what}: vectors contain NaN or inf")
    return np.ascontiguousarray(a)


def _normalise(a: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero: it is equally far from everything)."""
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.ascontiguousarray(a / np.where(n > 0, n, 1.0), dtype=np.float32)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Brute-force reference: ``(scores [Q, k], ids [Q, k])`` with faiss's flat index (what ``kind=flat`` is)."""
    idx = Index.build(vectors, metric=metric, kind="flat")
    return idx.search(queries, k)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth [Q, k]`` (exact neighbour ids) present in the same row of ``found [Q, k]``."""
    hits = [len(set(f.tolist()) & set(t.tolist()) - {-1}) / max(1, int((t >= 0).sum())) for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else 1.0


class Index:
    """Vectors ``[N, D]`` in a faiss index, with ``items`` (a DataFrame, one row per vector, row = id).

    Build with :meth:`build`, grow with :meth:`add`, query with :meth:`search`, keep with :meth:`save` /
    :meth:`load`. ``info`` is free-form JSON the builder keeps beside the index (the representation,
    window and layer for an audio index), so a query can be embedded the same way.
    """

    def __init__(self, faiss_index: Any, metric: str, kind: str, items: pd.DataFrame,
                 info: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None):
        self.faiss_index = faiss_index
        self.metric = metric
        self.kind = kind
        self.items = items.reset_index(drop=True)
        self.info: dict[str, Any] = dict(info or {})
        self.params: dict[str, Any] = dict(params or {})

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, vectors: Any, items: pd.DataFrame | None = None, *, metric: str = "cosine", kind: str = "auto",
              info: Mapping[str, Any] | None = None, seed: int = 0, target_recall: float = 0.95,
              nlist: int | None = None) -> Index:
        """Index ``vectors [N, D]`` (float32) with one metadata row each (``items``; default: just ``row``).

        ``kind``: ``auto`` (``flat`` below :data:`EXACT_BELOW` items, else :data:`APPROXIMATE`), ``flat``,
        ``ivf`` or ``hnsw``. ``target_recall``: the recall@10 an approximate index's search depth is
        calibrated to (on a sample of its own vectors). ``nlist``: IVF lists (default ~4·√N). ``seed``
        seeds the IVF training sample and the calibration sample.

        Raises:
            SearchError: unknown metric or kind, not ``[N, D]``, NaN/inf, or ``len(items) != N``.
        """
        faiss = _faiss()
        if metric not in METRICS:
            raise SearchError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        if kind not in KINDS:
            raise SearchError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        x = _as_vectors(vectors, "vectors")
        n, d = x.shape
        if items is None:
            items = pd.DataFrame({"row": np.arange(n)})
        if len(items) != n:
            raise SearchError(f"{n} vectors but {len(items)} metadata rows; give one row per vector")
        if kind == "auto":
            kind = "flat" if n < EXACT_BELOW else APPROXIMATE
        xs = _normalise(x) if metric == "cosine" else x
        fm = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        params: dict[str, Any] = {}
        if kind == "flat":
            fi = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
        elif kind == "ivf":
            lists = int(nlist or max(1, min(n // 39, round(4 * math.sqrt(n)))))  # faiss wants ≥ 39 points per list
            quantizer = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
            fi = faiss.IndexIVFFlat(quantizer, d, lists, fm)
            rng = np.random.default_rng(seed)
            sample = xs if n <= lists * 64 else xs[np.sort(rng.choice(n, lists * 64, replace=False))]
            fi.cp.seed = seed
            fi.train(sample)
            params["nlist"] = lists
        else:
            fi = faiss.IndexHNSWFlat(d, HNSW_M, fm)
            fi.hnsw.efConstruction = 80
            params["M"] = HNSW_M
        fi.add(xs)
        out = cls(fi, metric, kind, items, info, params)
        if kind != "flat":
            out.calibrate(xs, target_recall=target_recall, seed=seed)
        return out

    def calibrate(self, sample_from: np.ndarray, target_recall: float = 0.95, k: int = 10, seed: int = 0) -> float:
        """Set the smallest search depth whose recall@``k`` on up to 256 fresh queries reaches ``target_recall``.

        ``sample_from`` are the (already normalised) indexed vectors. Each query is one of them moved by
        Gaussian noise as long as the distance to its nearest other item, so it is a new point at the
        data's local scale (an indexed vector itself is found too easily: a graph index links it
        directly). Exact answers come from a flat scan. Returns the recall reached (kept as
        ``params["calibrated_recall"]``); the deepest setting tried is kept if none reaches the target.
        """
        faiss = _faiss()
        rng = np.random.default_rng(seed + 1)
        n, d = sample_from.shape
        qi = np.sort(rng.choice(n, min(n, CALIBRATION_QUERIES), replace=False))
        flat = faiss.IndexFlatL2(d) if self.metric == "l2" else faiss.IndexFlatIP(d)
        flat.add(np.ascontiguousarray(sample_from))
        own = np.ascontiguousarray(sample_from[qi])
        near = flat.search(own, min(2, n))[1]
        other = np.where(near[:, 0] == qi, near[:, -1], near[:, 0])
        r = np.linalg.norm(own - sample_from[other], axis=1, keepdims=True)
        q = own + rng.standard_normal(own.shape).astype(np.float32) * r / math.sqrt(d)
        q = _normalise(q) if self.metric == "cosine" else np.ascontiguousarray(q, dtype=np.float32)
        kk = min(k, n)
        truth = flat.search(q, kk)[1]
        if self.kind == "ivf":
            name, depths = "nprobe", [d for d in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
                                      if d <= self.faiss_index.nlist] or [self.faiss_index.nlist]
        else:
            name, depths = "efSearch", [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
        reached, depth = 0.0, depths[0]
        for depth in depths:
            self._set_depth(name, depth)
            reached = recall_at(self.faiss_index.search(q, kk)[1], truth)
            if reached >= target_recall:
                break
        self.params.update({name: depth, "calibrated_recall": round(reached, 4), "target_recall": target_recall})
        return reached

    def _set_depth(self, name: str, depth: int) -> None:
        if name == "nprobe":
            self.faiss_index.nprobe = int(depth)
        else:
            self.faiss_index.hnsw.efSearch = int(depth)

    def add(self, vectors: Any, items: pd.DataFrame | None = None) -> np.ndarray:
        """Append ``vectors [M, D]`` and their metadata rows; returns their ids ``[M]`` (rows of :attr:`items`).

        The kind stays what it was built as (an exact index stays exact as it grows; an IVF index keeps the
        lists it was trained with, so add items from the same distribution or rebuild).

        Raises:
            SearchError: dimension differs from the index's (both named), NaN/inf, or ``len(items) != M``.
        """
        x = _as_vectors(vectors, "added vectors", self.dim)
        if items is None:
            items = pd.DataFrame({"row": np.arange(self.count, self.count + len(x))})
        if len(items) != len(x):
            raise SearchError(f"{len(x)} vectors but {len(items)} metadata rows; give one row per vector")
        first = self.count
        self.faiss_index.add(_normalise(x) if self.metric == "cosine" else x)
        self.items = pd.concat([self.items, items.reset_index(drop=True)], ignore_index=True)
        return np.arange(first, self.count)

    # ------------------------------------------------------------------ querying
    @property
    def dim(self) -> int:
        return int(self.faiss_index.d)

    @property
    def count(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def nbytes(self) -> int:
        """Size of the faiss index in bytes (its serialised form, which for flat, IVF-Flat and HNSW is its
        memory to within a few kB: vectors, ids, lists or graph links)."""
        return int(_faiss().serialize_index(self.faiss_index).nbytes)

    def search(self, queries: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items of each query: ``(scores [Q, k] float32, ids [Q, k] int64)``, best first.

        ``queries``: ``[Q, D]`` (or one ``[D]`` vector). Scores are cosine similarities (``cosine``),
        inner products (``ip``) or squared L2 distances (``l2``, ascending). Where fewer than ``k`` items
        are found (``k`` > :attr:`count`, or an approximate index probing too few lists) the id is -1.

        Raises:
            SearchError: the queries' dimension differs from the index's (both named), or ``k < 1``.
        """
        if k < 1:
            raise SearchError(f"k must be at least 1, got {k}")
        q = _as_vectors(queries, "queries", self.dim)
        if self.metric == "cosine":
            q = _normalise(q)
        scores, ids = self.faiss_index.search(q, int(k))
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def neighbours(self, queries: Any, k: int = 10) -> list[pd.DataFrame]:
        """Per query, a table of its neighbours: ``rank``, ``score``, ``id`` and every metadata column."""
        scores, ids = self.search(queries, k)
        out = []
        for s, i in zip(scores, ids):
            ok = i >= 0
            rows = self.items.iloc[i[ok]].reset_index(drop=True)
            rows.insert(0, "id", i[ok])
            rows.insert(0, "score", s[ok])
            rows.insert(0, "rank", np.arange(1, int(ok.sum()) + 1))
            out.append(rows)
        return out

    def query_file(self, path: str | os.PathLike[str], k: int = 10, **embed_options: Any) -> pd.DataFrame:
        """Embed one audio file as this index's items were embedded and return its neighbours' table.

        Only for an index built from audio (:func:`musicrep.search.build_index`); see
        :func:`musicrep.search.build.query_file` for the options.
        """
        from musicrep.search.build import query_file

        return query_file(self, path, k, **embed_options)

    # ------------------------------------------------------------------ disk
    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``index.faiss``, ``items.csv`` and, last, ``index.json`` into ``folder`` (created), each atomically."""
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        faiss = _faiss()
        with atomic_path(root / INDEX_FILE) as tmp:
            faiss.write_index(self.faiss_index, str(tmp))
        with atomic_path(root / ITEMS_FILE) as tmp:
            self.items.to_csv(tmp, index=False)
        meta = {"format": FORMAT, "metric": self.metric, "kind": self.kind, "dim": self.dim, "count": self.count,
                "params": self.params, **self.info}
        with atomic_path(root / META_FILE) as tmp:
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        return root

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Index:
        """Read a folder written by :meth:`save`.

        Raises:
            SearchError: no such folder / no ``index.json`` (names the folder and how to build one), a newer
                format, or files that disagree on the item count.
        """
        root = Path(folder)
        meta_path = root / META_FILE
        if not meta_path.is_file():
            what = "does not exist" if not root.exists() else f"holds no {META_FILE} (not an index, or unfinished)"
            raise SearchError(f"{root}: {what}; build one with `musicrep index build --rep REP --audio DIR --out {root}`")
        meta = json.loads(meta_path.read_text())
        if int(meta.get("format", 0)) > FORMAT:
            raise SearchError(f"{meta_path}: index format {meta['format']} is newer than this musicrep reads "
                              f"({FORMAT}); upgrade musicrep")
        faiss = _faiss()
        fi = faiss.read_index(str(root / INDEX_FILE))
        items = pd.read_csv(root / ITEMS_FILE, dtype=str, keep_default_na=False)
        if len(items) != fi.ntotal:
            raise SearchError(f"{root}: {ITEMS_FILE} has {len(items)} rows but {INDEX_FILE} {fi.ntotal} vectors; "
                              "rebuild the index")
        info = {k: v for k, v in meta.items() if k not in ("format", "metric", "kind", "dim", "count", "params")}
        out = cls(fi, meta["metric"], meta["kind"], items, info, meta.get("params"))
        params = out.params
        if "nprobe" in params:
            out._set_depth("nprobe", params["nprobe"])
        if "efSearch" in params:
            out._set_depth("efSearch", params["efSearch"])
        return out

    def __repr__(self) -> str:
        return f"Index({self.kind}, {self.metric}, {self.count} × {self.dim})"


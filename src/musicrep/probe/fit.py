"""Fit, select and evaluate probes on per-item embeddings.

Takes embeddings ``X [N, L, H]`` (timeline-averaged, every layer, zero-padded to ``H``; ``layer_dims``
gives each layer's true width) and targets of a task kind; gives a :class:`FittedProbe` chosen on the
validation split (or by k-fold on train when there is none) and, through :func:`evaluate_probe`, tidy
result rows for the test split with bootstrap confidence intervals.

The path: standardise with train statistics → pick the input (one layer, every layer as a scan, or a
learned softmax-weighted sum of layers) → train every grid config at once (stacked, see
:mod:`musicrep.probe.stacked`) with early stopping → select the config by the task's primary metric on
validation → keep that member. Why one code path for all probes: kNN and centroid expose the same
``predict → [layers, configs, N, K]`` interface, so selection, k-fold and evaluation never branch on
the probe.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from musicrep.kinds import Kind, get_kind
from musicrep.metrics import Metric, bootstrap_ci, get_metric, primary_metric
from musicrep.probe.grids import ProbeConfig, ProbeGrid, expand, get_grid
from musicrep.probe.keyprofile import KeyProfile
from musicrep.probe.neighbors import KNN, Centroid, IndexKNN
from musicrep.probe.stacked import train_stacked
from musicrep.probe.tempo import TempoPeak
from musicrep.probe.types import ProbeData, ProbeSetup
from musicrep.results import PREDICTIONS_KEY

__all__ = ["ProbeSpec", "PROBES", "Standardizer", "TargetScaler", "FittedProbe", "fit_probe", "evaluate_probe",
           "score_fitted", "kfold_splits"]

#: Memory budget of one stacked block, in float32 numbers (params, grads, Adam moments, best state).
_BLOCK_FLOATS = 48_000_000
F = TypeVar("F", bound=Callable[..., Any])


def _one_thread(fn: F) -> F:
    """Run ``fn`` with one torch intra-op thread, then restore the caller's count.

    Why: a probe fit is thousands of small ops on small matrices. On a busy 2-core machine, OpenMP workers
    wait for a free core at every op: linear + MLP grid fits on 200 × 5 × 128 embeddings took 23.7 s with two
    threads against 0.9 s with one, and 22.1 s against 2.7 s on 2000 × 5 × 512 (load ~9, 2 cores);
    ``benchmarks/probe.py`` measures probes at one thread too. Extraction keeps the caller's threads.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class ProbeSpec:
    """A registered probe: which grid fields it searches and how it is built.

    ``build`` is None for probes trained by gradient descent (stacked linear / MLP); otherwise a class
    constructed from training data (kNN, centroid). ``logits`` says whether its outputs still need the
    task kind's output transform (softmax / sigmoid). ``standardize=False`` hands the probe the raw
    features and regression targets in their own units (a zero-shot rule such as key-profile correlation
    reads the features as they are; the tempo rule answers in BPM, not in standardised units). ``kinds`` lists
    the task kinds the probe applies to (``None``: all); ``reads`` the representations a zero-shot rule
    can read (``None``: any); evaluate and the studies skip the others instead of failing.
    """

    name: str
    uses: tuple[str, ...]
    description: str
    build: Callable[..., Any] | None = None
    logits: bool = True
    linear: bool = False
    standardize: bool = True
    kinds: tuple[str, ...] | None = None
    #: representations whose features a zero-shot rule knows how to read (``None``: any)
    reads: tuple[str, ...] | None = None

    def applies_to(self, kind: str, representation: str | None = None) -> bool:
        """Whether the probe can run on a task kind (and, for a zero-shot rule, on that representation)."""
        ok_rep = self.reads is None or representation is None or representation in self.reads
        return (self.kinds is None or kind in self.kinds) and ok_rep

    def configs(self, grid: ProbeGrid) -> list[ProbeConfig]:
        cfgs = expand(grid, self.uses)
        return [c.model_copy(update={"hidden": ()}) for c in cfgs] if self.linear else cfgs


PROBES: dict[str, ProbeSpec] = {
    p.name: p
    for p in [
        ProbeSpec("linear", ("lr", "steps", "weight_decay"), "logistic / linear regression (Adam, L2)",
                  linear=True),
        ProbeSpec("mlp", ("lr", "steps", "weight_decay", "dropout", "hidden"),
                  "MLP with ReLU hidden layers and dropout (Adam, L2)"),
        ProbeSpec("knn", ("k",), "k nearest neighbours, cosine similarity", build=KNN, logits=False),
        ProbeSpec("knn-index", ("k",), "k nearest neighbours over a faiss index of the training items (exact "
                  "below 100k items, approximate above; needs faiss)", build=IndexKNN, logits=False),
        ProbeSpec("centroid", (), "nearest class centroid, cosine similarity", build=Centroid, logits=False,
                  kinds=("multiclass", "multilabel", "key", "pitch")),  # needs classes: no regression
        ProbeSpec("keyprofile", (), "zero-shot key-profile correlation (Krumhansl) on chroma; no training",
                  build=KeyProfile, logits=False, standardize=False, kinds=("key",),
                  reads=("chroma-cqt", "chroma", "essentia-hpcp", "madmom-chroma")),
        ProbeSpec("tempo", (), "zero-shot tempo: prior-weighted peak of the tempogram's onset autocorrelation; "
                  "no training", build=TempoPeak, logits=False, standardize=False, kinds=("regression",),
                  reads=("tempogram",)),
    ]
}


def _get_probe(name: str) -> ProbeSpec:
    try:
        return PROBES[name]
    except KeyError:
        raise KeyError(f"unknown probe {name!r}; known: {sorted(PROBES)}") from None


@dataclass
class TargetScaler:
    """Regression targets are standardised with train statistics so one lr grid fits any target scale."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScaler:
        std = y.std(0)
        return cls(y.mean(0), np.where(std > 1e-12, std, 1.0))

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (y - self.mean) / self.std

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return y * self.std + self.mean


@dataclass
class Standardizer:
    """Per-(layer, feature) z-scoring fitted on the training split only.

    Why train only: statistics from validation or test leak their distribution into the probe (and
    make a one-item prediction depend on the other items). Padded features (beyond ``layer_dims``) and
    constant features map to exactly 0.
    """

    mean: np.ndarray  # [L, H]
    scale: np.ndarray  # [L, H]
    mask: np.ndarray  # [L, H] True where the feature is real

    @classmethod
    def identity(cls, X: np.ndarray, layer_dims: Sequence[int]) -> Standardizer:
        """A pass-through (mean 0, scale 1) that still zeroes padded features."""
        L, H = X.shape[1:]
        mask = np.arange(H)[None, :] < np.asarray(layer_dims)[:, None]
        return cls(np.zeros((L, H), np.float32), np.ones((L, H), np.float32), mask)

    @classmethod
    def fit(cls, X: np.ndarray, layer_dims: Sequence[int]) -> Standardizer:
        L, H = X.shape[1:]
        mask = np.arange(H)[None, :] < np.asarray(layer_dims)[:, None]
        mean = X.mean(0, dtype=np.float64)
        std = X.std(0, dtype=np.float64)
        scale = np.where(std > 1e-8, std, 1.0)
        return cls(mean.astype(np.float32), scale.astype(np.float32), mask)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (((X - self.mean) / self.scale) * self.mask).astype(np.float32)


def _as_3d(X: Any, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 2:
        X = X[:, None, :]
    if X.ndim != 3:
        raise ValueError(f"{name}: embeddings must be [N, L, H] (or [N, H] for one layer); got {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name}: embeddings contain NaN or inf; re-extract the affected items")
    return X


def _inputs(Xs: np.ndarray, mode: str, layers: Sequence[int]) -> torch.Tensor:
    """Standardised ``[N, L, H]`` → ``[len(layers), N, H]`` (select) or ``[N, L, H]`` (weighted)."""
    if mode == "weighted":
        return torch.from_numpy(np.ascontiguousarray(Xs))
    return torch.from_numpy(np.ascontiguousarray(Xs[:, list(layers)].transpose(1, 0, 2)))


@dataclass
class _Block:
    layers: slice  # positions along the scanned-layer axis
    configs: list[int]  # indices into the config list
    group: Any
    best_steps: torch.Tensor | None


class _Search:
    """Every (layer, config) member of one fit, possibly split into memory-bounded stacked blocks."""

    def __init__(self, spec: ProbeSpec, kind: Kind, configs: list[ProbeConfig], grid: ProbeGrid, mode: str,
                 n_layers: int, out_dim: int):
        self.spec, self.kind, self.configs, self.grid = spec, kind, configs, grid
        self.mode, self.n_layers, self.out_dim = mode, n_layers, out_dim
        self.blocks: list[_Block] = []

    def _plan(self, in_dim: int) -> list[tuple[slice, list[int]]]:
        """Blocks of (layers, configs) sharing an architecture and fitting the memory budget."""
        L = 1 if self.mode == "weighted" else self.n_layers
        if self.spec.build is not None:
            return [(slice(0, L), list(range(len(self.configs))))]
        by_hidden: dict[tuple[int, ...], list[int]] = {}
        for i, c in enumerate(self.configs):
            by_hidden.setdefault(c.hidden, []).append(i)
        plan = []
        for hidden, idx in by_hidden.items():
            widths = [in_dim, *hidden, self.out_dim]
            per_member = 6 * sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
            cap = max(1, _BLOCK_FLOATS // per_member)
            if len(idx) <= cap:
                per = max(1, cap // len(idx))
                plan += [(slice(s, min(s + per, L)), idx) for s in range(0, L, per)]
            else:
                plan += [(slice(s, s + 1), idx[j:j + cap]) for s in range(L) for j in range(0, len(idx), cap)]
        return plan

    def run(self, x_tr: torch.Tensor, y_tr: torch.Tensor, x_va: torch.Tensor | None, y_va: torch.Tensor | None,
            seed: int, steps: np.ndarray | None = None, weights: torch.Tensor | None = None) -> _Search:
        self.blocks = []
        for lay, cidx in self._plan(x_tr.shape[-1]):
            cfgs = [self.configs[i] for i in cidx]
            xt = x_tr[lay] if self.mode == "select" else x_tr
            if self.spec.build is not None:
                self.blocks.append(_Block(lay, cidx, self.spec.build(self.kind, xt, y_tr, cfgs, self.out_dim), None))
                continue
            st = None if steps is None else torch.from_numpy(steps[lay][:, cidx]).float()
            xv = None if x_va is None else (x_va[lay] if self.mode == "select" else x_va)
            g = self.grid
            group, best = train_stacked(
                self.kind, xt, y_tr, cfgs, out_dim=self.out_dim, mode=self.mode, x_valid=xv, y_valid=y_va,
                steps=st, batch_size=g.batch_size, warmup=g.warmup, eval_every=g.eval_every,
                patience=g.patience, halving=g.halving, rungs=g.rungs, seed=seed, weights=weights)
            self.blocks.append(_Block(lay, cidx, group, best))
        return self

    @property
    def shape(self) -> tuple[int, int]:
        return (1 if self.mode == "weighted" else self.n_layers), len(self.configs)

    def scores(self, x: torch.Tensor) -> np.ndarray:
        """Output scores ``[L, C, N, K]`` of every member (probabilities / standardised values)."""
        L, C = self.shape
        n = x.shape[1] if self.mode == "select" else x.shape[0]
        out = np.zeros((L, C, n, self.out_dim), dtype=np.float32)
        for b in self.blocks:
            xb = x[b.layers] if self.mode == "select" else x
            s = b.group.predict(xb)
            if self.spec.logits:
                s = self.kind.output(s)
            out[b.layers, b.configs] = s.numpy()
        return out

    def best_steps(self) -> np.ndarray:
        L, C = self.shape
        out = np.array([[c.steps for c in self.configs]] * L, dtype=np.float64)
        for b in self.blocks:
            if b.best_steps is not None:
                out[b.layers, b.configs] = b.best_steps.numpy()
        return out

    def take(self, l: int, c: int) -> Any:
        for b in self.blocks:
            start = b.layers.start
            if start <= l < b.layers.stop and c in b.configs:
                return b.group.take(l - start, b.configs.index(c))
        raise IndexError((l, c))


def _metric_pair(kind: Kind, metric: Metric, y_true: np.ndarray, scores: np.ndarray,
                 vocabulary: Sequence | None, scaler: TargetScaler | None) -> tuple[np.ndarray, np.ndarray]:
    """(reference, estimate) in the form ``metric`` takes (see :mod:`musicrep.metrics`)."""
    if metric.takes == "scores":
        if kind.loss == "mse":
            raise ValueError(f"metric {metric.name!r} needs class scores; task kind {kind.name!r} has none")
        return y_true, scores
    if metric.takes == "values":
        if kind.loss != "mse":
            raise ValueError(f"metric {metric.name!r} needs real values; task kind {kind.name!r} is a classifier")
        vals = scaler.inverse(scores) if scaler is not None else scores
        return y_true, (vals[:, 0] if y_true.ndim == 1 else vals)
    if kind.loss == "ce":
        return kind.decode(y_true, vocabulary), kind.decode(scores.argmax(-1), vocabulary)
    if kind.loss == "bce":
        return y_true, (scores > 0.5).astype(np.float32)
    raise ValueError(f"metric {metric.name!r} compares labels; task kind {kind.name!r} has none")


def _safe(v: float) -> float:
    return v if np.isfinite(v) else -np.inf


@dataclass
class FittedProbe:
    """One selected probe: a (layer or layer mix, config) with its train-only standardisation.

    ``predict_scores`` gives class probabilities ``[N, K]`` (kNN: vote fractions; centroid: cosine
    similarities) or regression values; ``predict`` gives class ids, multi-hot ``[N, K]`` or values;
    ``predict_labels`` gives what the metrics compare (key strings, MIDI numbers, class ids). For a
    layer scan (``layer="all"``) this is the best layer on validation and ``scan`` holds every layer's probe.
    """

    kind: str
    probe: str
    layer: int | str
    config: ProbeConfig
    valid_score: float
    standardizer: Standardizer
    member: Any = field(repr=False)
    vocabulary: Sequence | None = None
    target_scaler: TargetScaler | None = None
    logits: bool = True
    n_outputs: int = 0
    single_output: bool = False
    search: list[dict] = field(default_factory=list, repr=False)
    scan: dict[int, FittedProbe] | None = field(default=None, repr=False)

    @property
    def best_config(self) -> dict:
        return self.config.model_dump()

    @property
    def layer_weights(self) -> np.ndarray | None:
        """Learned softmax weight of each layer (``layer="weighted"``), else None."""
        w = self.member.layer_weights()
        return None if w is None else w[0, 0]

    def _x(self, X: Any) -> torch.Tensor:
        X = _as_3d(X, "X")
        L, H = self.standardizer.mean.shape
        if X.shape[1:] != (L, H):
            raise ValueError(f"X has layers × width {X.shape[1:]}, the probe was fitted on {(L, H)}")
        Xs = self.standardizer.transform(X)
        if self.layer == "weighted":
            return _inputs(Xs, "weighted", [])
        return _inputs(Xs, "select", [int(self.layer)])

    def predict_scores(self, X: Any) -> np.ndarray:
        out = self.member.predict(self._x(X))[0, 0]
        if self.logits:
            out = get_kind(self.kind).output(out)
        out = out.numpy()
        if self.target_scaler is not None:
            out = self.target_scaler.inverse(out)
        return out[:, 0] if self.single_output else out

    def predict(self, X: Any) -> np.ndarray:
        s = self.predict_scores(X)
        loss = get_kind(self.kind).loss
        if loss == "ce":
            return s.argmax(-1)
        if loss == "bce":
            return (s > 0.5).astype(np.int64)
        return s

    def predict_labels(self, X: Any) -> np.ndarray:
        kind = get_kind(self.kind)
        p = self.predict(X)
        return kind.decode(p, self.vocabulary) if kind.loss == "ce" else p

    def score(self, X: Any, y: Any, metric: str | Metric | None = None) -> tuple[np.ndarray, np.ndarray, Metric]:
        """(reference, estimate, metric) for ``metric`` (default: the kind's primary) on ``X, y``."""
        kind = get_kind(self.kind)
        m = get_metric(metric) if metric is not None else primary_metric(self.kind)
        y = kind.check_targets(y, "y")
        if kind.loss == "ce" and len(y) and int(y.max()) >= self.n_outputs:
            raise ValueError(f"class id {int(y.max())} was never seen in training/validation and is outside "
                             f"the probe's {self.n_outputs} classes; pass the task vocabulary to fit_probe")
        s = self.member.predict(self._x(X))[0, 0]
        s = (kind.output(s) if self.logits else s).numpy()
        return (*_metric_pair(kind, m, y, s, self.vocabulary, self.target_scaler), m)


def kfold_splits(kind: Kind, y: np.ndarray, n_folds: int, seed: int,
           groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train indices, held-out indices)`` per fold: stratified for classes when every class has ``n_folds``
    items, plain shuffled folds otherwise. The one k-fold cut: probe selection without a validation split
    and :mod:`musicrep.probe.crossval` both use it.

    With ``groups`` (one id per item: the work / track an item was cut or transposed from) no group is
    split across folds. Why: excerpts or transpositions of one work are near-duplicates, so a fold that
    holds some of them in train and others in validation scores memorisation, not generalisation, and
    selects the config that memorises best. Grouped folds are stratified when every class has
    ``n_folds`` items (``StratifiedGroupKFold``), else plain ``GroupKFold``; fewer groups than
    ``n_folds`` reduce the fold count to the number of groups.
    """
    n_folds = min(n_folds, len(y))
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or len(groups) != len(y):
            raise ValueError(f"groups must hold one group id per training item ({len(y)}), got shape {groups.shape}")
        n_folds = min(n_folds, len(np.unique(groups)))
        if n_folds < 2:
            raise ValueError("k-fold needs at least 2 distinct groups in train; pass a validation split")
    if n_folds < 2:
        raise ValueError("k-fold needs at least 2 training items; pass a validation split")
    counts = np.bincount(y) if kind.loss == "ce" else np.zeros(0, dtype=int)
    stratify = bool(counts.size) and counts[counts > 0].min() >= n_folds
    if groups is not None:
        if stratify:
            folds = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed).split(y, y, groups)
        else:
            folds = GroupKFold(n_folds, shuffle=True, random_state=seed).split(y, y, groups)
        return [(tr, va) for tr, va in folds if len(tr) and len(va)]
    if stratify:
        return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(y, y))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(y))


@_one_thread
def fit_probe(data: ProbeData, setup: ProbeSetup = ProbeSetup()) -> FittedProbe:
    """Search ``setup.grid`` for ``setup.probe`` on ``data``; return the best probe on validation.

    ``data.train.x`` etc.: ``[N, L, H]`` embeddings (``[N, H]`` means one layer); targets: class ids
    ``[N]`` (multiclass, key — 24 ids in :data:`musicrep.theory.KEYS` order unless ``data.vocabulary``
    says otherwise — and pitch, whose vocabulary lists the MIDI number of each id), multi-hot ``[N, K]``
    (multilabel) or floats ``[N]`` / ``[N, k]`` (regression). ``setup.layer``: an index, ``"all"`` (scan
    every layer; returns the best, with ``.scan`` holding each) or ``"weighted"`` (learned softmax mix).
    Without a validation split, configs (and their step counts) are chosen by ``setup.n_folds``-fold
    cross-validation on train and the chosen config is refit on all of train; ``data.train.groups`` (one
    id per training item, e.g. the work an excerpt or transposition comes from) keeps each group inside
    one fold, so near-duplicates cannot inflate the k-fold scores.

    Raises ``ValueError`` for shapes that do not fit, an unusable layer choice or too few items for
    k-fold, and ``KeyError`` for an unknown kind or probe.
    """
    kind, probe, layer, seed = data.kind, setup.probe, setup.layer, int(setup.seed)
    vocabulary, n_folds, groups = data.vocabulary, setup.n_folds, data.train.groups
    X_train, y_train = data.train.x, data.train.y
    X_valid, y_valid = (data.valid.x, data.valid.y) if data.valid is not None else (None, None)
    layer_dims = data.layer_dims
    k = get_kind(kind)
    spec = _get_probe(probe)
    g = get_grid(setup.grid)
    Xtr = _as_3d(X_train, "X_train")
    ytr = k.check_targets(y_train, "y_train")
    w_all = None
    if data.train.weights is not None:
        w_all = np.asarray(data.train.weights, dtype=np.float32)
        if w_all.shape != (len(ytr),) or not np.all(np.isfinite(w_all)) or w_all.min() < 0 or w_all.sum() <= 0:
            raise ValueError(f"train weights must be {len(ytr)} finite values >= 0 with a positive sum")
    wt = (lambda idx: None) if w_all is None else (lambda idx: torch.from_numpy(w_all if idx is None else w_all[idx]))
    if len(Xtr) != len(ytr):
        raise ValueError(f"X_train has {len(Xtr)} items but y_train has {len(ytr)}")
    N, L, H = Xtr.shape
    dims = list(layer_dims) if layer_dims is not None else [H] * L
    if len(dims) != L or max(dims) > H:
        raise ValueError(f"layer_dims {dims} does not fit embeddings with {L} layers of width {H}")
    has_valid = X_valid is not None
    if has_valid != (y_valid is not None):
        raise ValueError("pass both X_valid and y_valid, or neither (then k-fold on train is used)")
    if has_valid:
        Xva = _as_3d(X_valid, "X_valid")
        yva = k.check_targets(y_valid, "y_valid")
        if Xva.shape[1:] != (L, H) or len(Xva) != len(yva):
            raise ValueError(f"X_valid {Xva.shape} / y_valid {len(yva)} do not match X_train {Xtr.shape}")
    if layer == "weighted":
        if spec.build is not None:
            raise ValueError(f"layer='weighted' needs a trained probe (linear or mlp), not {probe!r}")
        mode, layers = "weighted", list(range(L))
    elif layer == "all":
        mode, layers = "select", list(range(L))
    elif isinstance(layer, (int, np.integer)) and -L <= int(layer) < L:
        mode, layers = "select", [int(layer) % L]
    else:
        raise ValueError(f"layer must be an index in [0, {L}), 'all' or 'weighted'; got {layer!r}")

    out_dim = k.n_outputs([ytr] + ([yva] if has_valid else []), vocabulary)
    configs = spec.configs(g)
    metric = primary_metric(kind)
    n_sel = 1 if mode == "weighted" else len(layers)

    def prep(Xa: np.ndarray, ya: np.ndarray, std: Standardizer, scaler: TargetScaler | None):
        yy = scaler.transform(ya.reshape(len(ya), -1)) if scaler is not None else ya
        return _inputs(std.transform(Xa), mode, layers), k.to_torch(yy)

    def valid_metric(search: _Search, x: torch.Tensor, y: np.ndarray, scaler) -> np.ndarray:
        s = search.scores(x)
        out = np.empty(search.shape)
        for li in range(out.shape[0]):
            for ci in range(out.shape[1]):
                out[li, ci] = _safe(metric(*_metric_pair(k, metric, y, s[li, ci], vocabulary, scaler)))
        return out

    def scaler_for(y: np.ndarray) -> TargetScaler | None:
        return TargetScaler.fit(y.reshape(len(y), -1)) if k.loss == "mse" and spec.standardize else None

    std = (Standardizer.fit if spec.standardize else Standardizer.identity)(Xtr, dims)
    scaler = scaler_for(ytr)
    x_tr, y_tr = prep(Xtr, ytr, std, scaler)
    search = _Search(spec, k, configs, g, mode, len(layers), out_dim)
    if has_valid:
        x_va, y_va = prep(Xva, yva, std, scaler)
        search.run(x_tr, y_tr, x_va, y_va, seed, weights=wt(None))
        vm = valid_metric(search, x_va, yva, scaler)
    else:
        fold_scores, fold_steps = [], []
        for tr_idx, va_idx in kfold_splits(k, ytr, n_folds, seed, groups):
            f_std = (Standardizer.fit if spec.standardize else Standardizer.identity)(Xtr[tr_idx], dims)
            f_scaler = scaler_for(ytr[tr_idx])
            xa, ya = prep(Xtr[tr_idx], ytr[tr_idx], f_std, f_scaler)
            xb, yb = prep(Xtr[va_idx], ytr[va_idx], f_std, f_scaler)
            fs = _Search(spec, k, configs, g, mode, len(layers), out_dim).run(xa, ya, xb, yb, seed, weights=wt(tr_idx))
            fold_scores.append(valid_metric(fs, xb, ytr[va_idx], f_scaler))
            fold_steps.append(fs.best_steps())
        vm = np.mean(fold_scores, axis=0)
        steps = np.maximum(1, np.round(np.mean(fold_steps, axis=0)))
        search.run(x_tr, y_tr, None, None, seed, steps=steps if spec.build is None else None, weights=wt(None))

    common = dict(kind=kind, probe=probe, standardizer=std, vocabulary=vocabulary, target_scaler=scaler,
                  logits=spec.logits, n_outputs=out_dim, single_output=(k.loss == "mse" and ytr.ndim == 1))
    table = [
        {"layer": ("weighted" if mode == "weighted" else layers[li]), **configs[ci].model_dump(),
         "valid_score": float(vm[li, ci])}
        for li in range(n_sel) for ci in range(len(configs))
    ]
    fitted: dict[int, FittedProbe] = {}
    for li in range(n_sel):
        ci = int(np.argmax(vm[li]))
        name: int | str = "weighted" if mode == "weighted" else layers[li]
        fitted[li] = FittedProbe(layer=name, config=configs[ci], valid_score=float(vm[li, ci]),
                                 member=search.take(li, ci), search=table, **common)
    best = max(fitted.values(), key=lambda f: f.valid_score)
    if layer == "all":
        best.scan = {int(f.layer): f for f in fitted.values()}
    return best


@_one_thread
def evaluate_probe(data: ProbeData, setup: ProbeSetup = ProbeSetup()) -> list[dict[str, Any]]:
    """Fit with ``setup`` (one seed), score ``data.test``; one row per (layer, metric), named like ``results.csv``.

    Row keys: ``probe, layer, seed, metric, value, ci_low, ci_high, valid_value, best_config`` (JSON of
    the selected hyper-parameters), ``layer_weights`` (JSON list for ``layer="weighted"``, else ""),
    ``n_train, n_test``; with several named test sets (``data.test`` a mapping) the probe is fitted once and
    each row also gets ``deformation`` (the test set's name). With ``layer="all"`` there is a row per layer
    (each with its own selected config). CIs are percentile bootstraps over test items
    (``setup.n_bootstrap`` resamples, seeded by the seed). Metrics: ``data.metrics`` or the kind's defaults.
    Each row also carries, under :data:`musicrep.results.PREDICTIONS_KEY` (not a results column), the
    ``(reference, estimate)`` its value was computed from, one entry per test item in test order, so
    that two probes can be compared item by item (:func:`musicrep.metrics.paired_bootstrap`); the run
    folder keeps them (:func:`musicrep.results.write_predictions`).
    Raises ``ValueError`` without a test split.
    """
    if data.test is None:
        raise ValueError("evaluate_probe needs data.test (the split it scores)")
    return score_fitted(fit_probe(data, setup), data, setup)


def score_fitted(best: FittedProbe, data: ProbeData, setup: ProbeSetup, n_train: int | None = None
                 ) -> list[dict[str, Any]]:
    """Score an already fitted probe (or anything built as a :class:`FittedProbe`, e.g. a fine-tuned model's
    own head, :mod:`musicrep.probe.head`) on ``data.test``: the rows of :func:`evaluate_probe`.

    ``n_train`` fills the ``n_train`` column (default: ``len(data.train)``). Raises ``ValueError`` without a
    test split.
    """
    if data.test is None:
        raise ValueError("score_fitted needs data.test (the split it scores)")
    k = get_kind(data.kind)
    names = list(data.metrics) if data.metrics is not None else list(k.metrics)
    named = data.test if isinstance(data.test, Mapping) else None
    tests = named if named is not None else {"": data.test}
    seed = int(setup.seed)
    rows: list[dict[str, Any]] = []
    for test_name, test in tests.items():
        yte = k.check_targets(test.y, f"y_test[{test_name}]" if test_name else "y_test")
        for fp in (best.scan.values() if best.scan else [best]):
            lw = fp.layer_weights
            for name in names:
                ref, est, m = fp.score(test.x, yte, name)
                lo, hi = bootstrap_ci(m, ref, est, n=setup.n_bootstrap, alpha=setup.alpha, seed=seed)
                rows.append({
                    "probe": setup.probe, "layer": fp.layer, "seed": seed, "metric": m.name,
                    "value": m(ref, est), "ci_low": lo, "ci_high": hi, "valid_value": fp.valid_score,
                    "best_config": json.dumps(fp.best_config, sort_keys=True),
                    "layer_weights": "" if lw is None else json.dumps([round(float(w), 6) for w in lw]),
                    "n_train": len(data.train) if n_train is None else int(n_train), "n_test": len(yte),
                    **({"deformation": test_name} if named is not None else {}),
                    PREDICTIONS_KEY: (ref, est),
                })
    return rows

"""Small typed objects the probe functions take: one split's data, a task's splits, and a probe setup.

Why: a probe fit needs a dozen inputs (three splits of embeddings and targets, groups, layer widths,
vocabulary, probe, grid, layer mode, seed, folds, bootstrap settings). Passed one by one they made
13–18-parameter functions whose calls were easy to get subtly wrong. Grouped by what they describe —
the data (:class:`ProbeData`) and how to probe it (:class:`ProbeSetup`) — each call reads as what it is,
and a study can build the data once and vary only the setup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

__all__ = ["LayerChoice", "Split", "ProbeData", "ProbeSetup"]

#: A layer index, ``"all"`` (scan every layer) or ``"weighted"`` (learned softmax mix of layers).
LayerChoice = int | Literal["all", "weighted"]


@dataclass(frozen=True)
class Split:
    """One split's embeddings and targets.

    ``x``: ``[N, L, H]`` float embeddings (``[N, H]`` means one layer). ``y``: class ids ``[N]``,
    multi-hot ``[N, K]`` or values ``[N]`` / ``[N, k]`` (see :mod:`musicrep.kinds`). ``groups``: one id
    per item (the work / track it was cut or transposed from) for grouped k-fold; optional. ``weights``:
    a loss weight per training item (e.g. < 1 for augmented copies); trained probes use it, kNN, centroid
    and zero-shot probes ignore it; optional.
    """

    x: Any
    y: Any
    groups: Any | None = None
    weights: Any | None = None

    def __len__(self) -> int:
        return len(np.asarray(self.y))


@dataclass(frozen=True)
class ProbeData:
    """A task's splits as a probe sees them.

    ``kind``: a :data:`musicrep.kinds.KINDS` name. ``valid=None`` selects by k-fold on train;
    ``test`` is needed only to score: one split, or several by name (e.g. the same items' embeddings under
    each deformation of their audio, ``{"none": …, "noise:pink@snr=10": …}``) to score one fitted probe on each. ``layer_dims``: each layer's true width (layers are zero-padded to
    ``H``); default all ``H``. ``vocabulary``: what class id ``i`` means (key strings, MIDI numbers,
    class names; :meth:`musicrep.kinds.Kind.classes`). ``metrics``: names reported when scoring
    (default: the kind's).
    """

    kind: str
    train: Split
    valid: Split | None = None
    test: Split | Mapping[str, Split] | None = None
    layer_dims: Sequence[int] | None = None
    vocabulary: Sequence[Any] | None = None
    metrics: Sequence[str] | None = None

    @classmethod
    def of(cls, kind: str, X_train: Any, y_train: Any, X_valid: Any | None = None, y_valid: Any | None = None,
           X_test: Any | None = None, y_test: Any | None = None, *, groups: Any | None = None,
           **rest: Any) -> ProbeData:
        """Shorthand from arrays: ``ProbeData.of("key", Xtr, ytr, Xva, yva, Xte, yte, vocabulary=…)``.

        Raises ``ValueError`` when only one of ``X_valid``/``y_valid`` is given.
        """
        if (X_valid is None) != (y_valid is None):
            raise ValueError("pass both X_valid and y_valid, or neither (then k-fold on train is used)")
        valid = Split(X_valid, y_valid) if X_valid is not None else None
        test = Split(X_test, y_test) if X_test is not None else None
        return cls(kind, Split(X_train, y_train, groups), valid, test, **rest)


@dataclass(frozen=True)
class ProbeSetup:
    """How to probe: which probe, which grid, which layer(s), and the seed of this fit.

    ``grid``: a :data:`musicrep.probe.grids.GRIDS` name, a ``ProbeGrid`` or a mapping of its fields.
    ``n_folds``: k-fold selection when there is no validation split. ``n_bootstrap``/``alpha``: the
    percentile bootstrap CI over test items when scoring (1000 resamples, 95 % by default). ``cv_folds``:
    0 scores the test split; k ≥ 3 cross-validates over every item instead
    (:func:`musicrep.probe.crossval.cross_validate_probe`).
    """

    probe: str = "mlp"
    grid: Any = "fast"
    layer: LayerChoice = "all"
    seed: int = 0
    n_folds: int = 5
    n_bootstrap: int = 1000
    alpha: float = 0.05
    cv_folds: int = 0

    def with_seed(self, seed: int) -> ProbeSetup:
        return replace(self, seed=int(seed))

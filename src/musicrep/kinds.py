"""Task kinds: what a kind's labels look like, how they become targets, how it is scored and trained.

Takes a kind name (``multiclass | multilabel | regression | key | pitch``) and raw text labels; gives
validated labels, the task format's numeric targets, the probe's class ids, the default metrics (the
first is the primary one, used for selection), the training loss, the output transform and the decoding
from class ids to what the metrics compare.

Why one registry at the bottom floor: the task format (``data/``), the metrics, the probes and
``evaluate`` all need to know what a kind means. Before, that knowledge sat in four files that had to
change together; now adding a kind is one :class:`Kind` entry in :data:`KINDS` (plus its label rules
below). Metrics are named here by string and resolved by :mod:`musicrep.metrics` (a floor above).

=============  ===============================  ======================  ==========================
kind           ``label`` text                   :meth:`Kind.targets`    :meth:`Kind.class_ids`
=============  ===============================  ======================  ==========================
multiclass     one vocabulary entry             index into vocabulary   the same
multilabel     entries joined by ``;``          multi-hot ``[N, K]``    the same
regression     a number                         float32                 the same
key            any spelling, e.g. ``Db major``  index into theory.KEYS  the same (24 keys)
pitch          MIDI note number, e.g. ``60``    int MIDI number         index into vocabulary
=============  ===============================  ======================  ==========================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from musicrep.theory import KEYS, canonical_key

__all__ = ["Kind", "KINDS", "KIND_NAMES", "LABEL_SEP", "get_kind", "split_labels"]

#: Separator between labels of one multilabel item in ``items.csv``.
LABEL_SEP = ";"


def split_labels(label: str) -> list[str]:
    """``"piano; voice"`` → ``["piano", "voice"]`` (multilabel text as stored in ``items.csv``)."""
    return [x.strip() for x in label.split(LABEL_SEP) if x.strip()]


@dataclass(frozen=True)
class Kind:
    """Everything one task kind means, from label text to loss.

    ``metrics``: metric names reported by default; the first is the primary one (selection, leaderboard).
    ``loss``: ``ce`` (classes), ``bce`` (multi-label), ``mse`` (real values).
    ``fixed_classes``: the class list when the kind fixes it whatever the task's vocabulary (key: 24 keys).
    """

    name: str
    loss: Literal["ce", "bce", "mse"]
    metrics: tuple[str, ...]
    description: str
    fixed_classes: tuple[Any, ...] | None = None

    # ------------------------------------------------------------------ labels (the task format)
    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def canonical_vocabulary(self, vocabulary: Sequence[str]) -> list[str]:
        """The vocabulary with every entry in canonical spelling; raises ``ValueError`` naming a bad entry."""
        if self.name != "key":
            return [str(v) for v in vocabulary]
        out = []
        for v in vocabulary:
            k = canonical_key(str(v))
            if k is None:
                raise ValueError(f"vocabulary entry {v!r} is not a key; write e.g. 'F# minor' or 'Db major'")
            out.append(k)
        return out

    def canonical_label(self, label: str, vocabulary: Sequence[str]) -> str:
        """One item's label, validated and canonicalised (key spellings → :data:`musicrep.theory.KEYS`).

        ``vocabulary`` must already be canonical. Raises ``ValueError`` with what is wrong (the caller
        adds the file and line).
        """
        if self.loss == "mse":
            try:
                value = float(label)
            except ValueError:
                raise ValueError(f"label {label!r} is not a number (kind={self.name})") from None
            if not math.isfinite(value):
                raise ValueError(f"label {label!r} is not finite")
            return label
        if self.name == "key":
            k = canonical_key(label)
            if k is None:
                raise ValueError(f"label {label!r} is not a key; write e.g. 'F# minor', 'Db major' or 'Bbm'")
            if k not in vocabulary:
                raise ValueError(f"key {label!r}{'' if k == label else f' ({k})'} is not in the vocabulary")
            return k
        labels = split_labels(label) if self.loss == "bce" else [label]
        outside = [x for x in labels if x not in vocabulary]
        if outside:
            raise ValueError(f"label {outside[0]!r} is not in the vocabulary")
        return LABEL_SEP.join(labels) if self.loss == "bce" else label

    def targets(self, labels: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
        """Canonical label text → the task format's numeric targets (see the module table)."""
        if self.name == "pitch":
            return np.array([int(float(x)) for x in labels], dtype=np.int64)
        return self.class_ids(labels, vocabulary)

    def class_ids(self, labels: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
        """Canonical label text → what a probe trains on: class ids into :meth:`classes`, multi-hot
        ``[N, K]`` (multilabel) or float32 values (regression)."""
        if self.loss == "mse":
            return np.array([float(x) for x in labels], dtype=np.float32)
        classes = list(self.fixed_classes) if self.fixed_classes is not None else list(vocabulary)
        index = {str(v): i for i, v in enumerate(classes)}
        if self.loss == "bce":
            y = np.zeros((len(labels), len(index)), dtype=np.float32)
            for r, label in enumerate(labels):
                for x in split_labels(label):
                    y[r, index[x]] = 1.0
            return y
        return np.array([index[str(x)] for x in labels], dtype=np.int64)

    def classes(self, vocabulary: Sequence[str] | None) -> list[Any] | None:
        """What class id ``i`` means for the metrics: key strings, MIDI numbers, or the vocabulary."""
        if self.fixed_classes is not None:
            return list(self.fixed_classes)
        if vocabulary is None:
            return None
        if self.name == "pitch":
            return [int(float(v)) for v in vocabulary]
        return list(vocabulary)

    # ------------------------------------------------------------------ probes
    def check_targets(self, y: np.ndarray, where: str) -> np.ndarray:
        """Validate and normalise probe targets; the error names the split and the expected form."""
        y = np.asarray(y)
        if self.loss == "ce":
            if y.ndim != 1 or y.dtype.kind not in "iub":
                raise ValueError(f"{where}: {self.name} targets must be integer class ids of shape [N]; "
                                 f"got dtype {y.dtype}, shape {y.shape}")
            if len(y) and y.min() < 0:
                raise ValueError(f"{where}: class ids must be >= 0")
            return y.astype(np.int64)
        if self.loss == "bce":
            if y.ndim != 2:
                raise ValueError(f"{where}: multilabel targets must be multi-hot of shape [N, K]; got {y.shape}")
            return (y > 0.5).astype(np.float32)
        if y.ndim not in (1, 2):
            raise ValueError(f"{where}: regression targets must be [N] or [N, k]; got {y.shape}")
        return y.astype(np.float32)

    def n_outputs(self, ys: Sequence[np.ndarray], vocabulary: Sequence | None) -> int:
        """Output width of a probe: the class count (vocabulary, or the largest id seen + 1) or value width."""
        if self.loss == "ce":
            vocab = vocabulary if vocabulary is not None else self.fixed_classes
            n = 1 + max(int(y.max()) for y in ys if len(y))
            if vocab is not None:
                if n > len(vocab):
                    raise ValueError(f"{self.name}: class id {n - 1} outside the vocabulary of {len(vocab)}")
                return len(vocab)
            return n
        y = ys[0]
        return 1 if y.ndim == 1 else y.shape[1]

    def to_torch(self, y: np.ndarray) -> torch.Tensor:
        if self.loss == "ce":
            return torch.from_numpy(y.astype(np.int64))
        y = y.reshape(len(y), -1) if self.loss == "mse" else y
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Per-member mean loss, summed over members. ``out`` is ``[L, C, B, K]``.

        ``weights`` (``[B]``, optional): per-item loss weights; the mean over items becomes a weighted mean.
        """
        L, C, B, K = out.shape
        if weights is not None:
            if self.loss == "ce":
                per = F.cross_entropy(out.reshape(-1, K), y.repeat(L * C), reduction="none").reshape(L, C, B)
            elif self.loss == "bce":
                per = F.binary_cross_entropy_with_logits(out, y.expand_as(out), reduction="none").mean(-1)
            else:
                per = ((out - y) ** 2).mean(-1)
            return (per * weights).sum(-1).sum() / weights.sum()
        if self.loss == "ce":
            return F.cross_entropy(out.reshape(-1, K), y.repeat(L * C)) * (L * C)
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(out, y.expand_as(out)) * (L * C)
        return F.mse_loss(out, y.expand_as(out)) * (L * C)

    def early_stop_score(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cheap, vectorised validation score per member ``[L, C]`` (higher is better).

        Why not the task metric itself: it is evaluated for every member at every validation, so it
        must be one tensor operation. Accuracy (with a tiny loss term to break ties) for classification;
        negative loss otherwise. The real metric selects among configs afterwards.
        """
        L, C, B, K = out.shape
        if self.loss == "ce":
            acc = (out.argmax(-1) == y).float().mean(-1)
            ce = F.cross_entropy(out.reshape(-1, K), y.repeat(L * C), reduction="none").reshape(L, C, B).mean(-1)
            return acc - 1e-4 * ce
        if self.loss == "bce":
            return -F.binary_cross_entropy_with_logits(out, y.expand_as(out), reduction="none").mean((-1, -2))
        return -((out - y) ** 2).mean((-1, -2))

    def output(self, out: torch.Tensor) -> torch.Tensor:
        """Logits → scores: probabilities (softmax / sigmoid) or standardised regression values."""
        if self.loss == "ce":
            return out.softmax(-1)
        if self.loss == "bce":
            return out.sigmoid()
        return out

    def decode(self, ids: np.ndarray, vocabulary: Sequence | None) -> np.ndarray:
        """Class ids → what the metrics compare: key strings, MIDI numbers, or the ids themselves."""
        vocab = vocabulary if vocabulary is not None else self.fixed_classes
        if self.loss != "ce" or vocab is None or self.name == "multiclass":
            return np.asarray(ids)
        return np.asarray(vocab, dtype=object if self.name == "key" else None)[np.asarray(ids, dtype=np.int64)]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("multiclass", "ce", ("accuracy",), "one label per item from the vocabulary"),
        Kind("multilabel", "bce", ("map", "roc_auc"), "any number of vocabulary labels per item, ';'-joined"),
        Kind("regression", "mse", ("r2",), "a real number per item"),
        Kind("key", "ce", ("mirex", "accuracy"), "one of the 24 major/minor keys, any enharmonic spelling",
             fixed_classes=KEYS),
        # vocabulary: MIDI numbers per class id; without one, the id is the MIDI number
        Kind("pitch", "ce", ("pitch_accuracy", "chroma_accuracy"), "MIDI note number of a single note"),
    ]
}
#: Kind names in registry order (what ``task.yaml`` ``kind`` may say).
KIND_NAMES: tuple[str, ...] = tuple(KINDS)


def get_kind(name: str) -> Kind:
    """The registered :class:`Kind` called ``name``; ``KeyError`` listing the known kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown task kind {name!r}; known: {sorted(KINDS)}") from None

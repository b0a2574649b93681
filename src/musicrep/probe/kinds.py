"""Task kinds as the probes see them: loss, output size, target encoding and label decoding.

Takes a kind name (``multiclass | multilabel | regression | key | pitch``) and raw targets; gives the
torch targets a probe trains on, the output transform (softmax / sigmoid / de-standardise), and the
decoding from class ids to what the metrics compare (class ids, key strings, MIDI numbers).
A registry rather than if-chains: adding a kind is adding one entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from musicrep.metrics import KEYS, TASK_METRICS

__all__ = ["Kind", "KINDS", "get_kind", "TargetScaler"]


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


@dataclass(frozen=True)
class Kind:
    """How one task kind is trained and decoded."""

    name: str
    loss: Literal["ce", "bce", "mse"]
    default_vocabulary: tuple | None = None

    @property
    def metrics(self) -> list[str]:
        return TASK_METRICS[self.name]

    def check_targets(self, y: np.ndarray, where: str) -> np.ndarray:
        """Validate and normalise raw targets; the error names the split and the expected form."""
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
        if self.loss == "ce":
            vocab = vocabulary if vocabulary is not None else self.default_vocabulary
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

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member mean loss, summed over members. ``out`` is ``[L, C, B, K]``."""
        L, C, B, K = out.shape
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
        vocab = vocabulary if vocabulary is not None else self.default_vocabulary
        if self.loss != "ce" or vocab is None or self.name == "multiclass":
            return np.asarray(ids)
        return np.asarray(vocab, dtype=object if self.name == "key" else None)[np.asarray(ids, dtype=np.int64)]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("multiclass", "ce"),
        Kind("multilabel", "bce"),
        Kind("regression", "mse"),
        Kind("key", "ce", tuple(KEYS)),
        Kind("pitch", "ce"),  # vocabulary: MIDI numbers per class id; without one, the id is the MIDI number
    ]
}


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown task kind {name!r}; known: {sorted(KINDS)}") from None

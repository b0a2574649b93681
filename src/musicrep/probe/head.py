"""A fine-tuned model's own task head, scored like a probe (same metrics, CIs, rows and predictions files).

Takes the head (an ``nn.Module`` mapping the pooled last layer ``[N, H_last]`` to logits ``[N, K]``, as
``musicrep finetune`` trains it: :class:`musicrep.train.finetune.Predictor`) and a task's embeddings of the
fine-tuned encoder (``[N, L, H]``, the store's timeline means); gives a probe runner for
:func:`musicrep.evaluate.run_unit`: the head is wrapped as a :class:`~musicrep.probe.fit.FittedProbe`
(nothing is fitted; its ``valid_value`` is the head's score on the valid split) and scored by
:func:`~musicrep.probe.fit.score_fitted`, the code every probe is scored by — no second metric path.

Why the timeline mean of the last layer: the head was trained on a crop's time-pooled last layer; the
store's embedding of a clip is the mean of its windows' pooled frames, the clip-level version of that input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from musicrep.kinds import get_kind
from musicrep.metrics import primary_metric
from musicrep.probe.fit import FittedProbe, Standardizer, score_fitted
from musicrep.probe.grids import ProbeConfig
from musicrep.probe.types import ProbeData, ProbeSetup

__all__ = ["HEAD_PROBE", "HeadMember", "head_runner"]

#: The ``probe`` column of a fine-tuned head's rows.
HEAD_PROBE = "head"


class HeadMember:
    """The head as a probe member: ``predict(x [1, N, H]) → logits [1, 1, N, K]`` on the last layer's real width."""

    def __init__(self, head: nn.Module, width: int) -> None:
        self.head, self.width = head.eval(), int(width)

    def shape(self) -> tuple[int, int]:
        return 1, 1

    def layer_weights(self) -> None:
        return None

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x[0, :, : self.width].float()).float()[None, None]


def head_runner(head: nn.Module, settings: dict[str, Any] | None = None,
                n_train: int | None = None) -> Callable[[ProbeData, ProbeSetup], list[dict[str, Any]]]:
    """A ``probe_runner`` for :func:`musicrep.evaluate.run_unit` that scores ``head`` on the last layer.

    ``settings`` fill ``best_config`` (e.g. ``{"unfreeze": 2, "steps": 300}``); ``n_train`` the ``n_train``
    column (the items the head was fine-tuned on). Rows are those of every probe, ``probe`` = ``head``.
    Raises ``ValueError`` when the head's outputs do not match the task's classes.
    """

    def run(data: ProbeData, setup: ProbeSetup) -> list[dict[str, Any]]:
        dims = list(data.layer_dims) if data.layer_dims is not None else None
        x_any = data.valid.x if data.valid is not None else data.test.x  # type: ignore[union-attr]
        last = (len(dims) if dims else np.asarray(x_any).shape[1]) - 1
        width = dims[-1] if dims else np.asarray(x_any).shape[2]
        member = HeadMember(head, width)
        kind = get_kind(data.kind)
        vocab = data.vocabulary
        n_out = int(member.predict(torch.zeros(1, 1, np.asarray(x_any).shape[2])).shape[-1])
        if vocab is not None and kind.loss == "ce" and len(vocab) != n_out:
            raise ValueError(f"the head has {n_out} outputs, the task {len(vocab)} classes; fine-tune on this task")
        std = Standardizer.identity(np.asarray(x_any, np.float32), dims or [width] * (last + 1))
        fp = FittedProbe(kind=data.kind, probe=HEAD_PROBE, layer=last, config=ProbeConfig(), valid_score=float("nan"),
                         standardizer=std, member=member, vocabulary=vocab, logits=True, n_outputs=n_out)
        if data.valid is not None and len(data.valid):
            metric = data.metrics[0] if data.metrics else primary_metric(data.kind).name
            ref, est, m = fp.score(data.valid.x, data.valid.y, metric)
            fp.valid_score = float(m(ref, est))
        rows = score_fitted(fp, data, setup, n_train=n_train)
        for r in rows:
            r["probe"] = HEAD_PROBE
            r["best_config"] = json.dumps(settings or {}, sort_keys=True, default=str)
        return rows

    return run

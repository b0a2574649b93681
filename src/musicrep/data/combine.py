"""A task whose test split comes from another rendering of the same task: domain shift as a task folder.

Takes two tasks of one kind (e.g. the instrument task rendered with TimGM6mb and with FluidR3); gives a
task folder with the first one's train and valid items and the second one's test items (paths point at
the audio where it is). Why: a practitioner's test audio never sounds like the training audio; scoring
on a second SoundFont measures how much of a probe's accuracy is the SoundFont's.
"""

from __future__ import annotations

import os

import pandas as pd

from musicrep.data.task import Task, TaskError, write_task

__all__ = ["cross_domain_task"]


def cross_domain_task(train: Task, test: Task, out: str | os.PathLike[str], name: str | None = None) -> Task:
    """Write a task: ``train``'s train and valid items, ``test``'s test items; return it.

    Item ids of the test part get a ``test:`` prefix so ids stay unique; groups keep their own names
    (a group in both parts would leak, and is refused by :meth:`Task.load`). Raises :class:`TaskError`
    when the kinds differ.
    """
    if train.kind != test.kind:
        raise TaskError(f"{test.root}: kind {test.kind!r} differs from {train.root}'s {train.kind!r}")
    a = train.items[train.items["split"].isin(["train", "valid"])].copy()
    b = test.items[test.items["split"] == "test"].copy()
    a["path"] = [str(train.audio_path(r)) for _, r in a.iterrows()]
    b["path"] = [str(test.audio_path(r)) for _, r in b.iterrows()]
    b["id"] = "test:" + b["id"].astype(str)
    b["group"] = "test:" + b["group"].astype(str)
    vocab = list(train.vocabulary) + [v for v in test.vocabulary if v not in train.vocabulary]
    spec = train.spec.model_dump()
    spec.update(name=name or f"{train.name}+test:{test.name}", vocabulary=vocab,
                provenance={"train_from": str(train.root.resolve()), "test_from": str(test.root.resolve()),
                            "train_provenance": train.spec.provenance, "test_provenance": test.spec.provenance})
    return write_task(out, spec, pd.concat([a, b], ignore_index=True))

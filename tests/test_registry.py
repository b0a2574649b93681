"""The representation registry: names, metadata, errors, and the hear:<module> shorthand."""

from __future__ import annotations

import pytest
import torch

from musicrep import models

REQUIRED = {"vgg", "musicnn", "ast", "samplecnn", "tmae", "nfnet", "conformer", "mfcc", "chroma", "cqt"}


def test_issue_names_are_registered() -> None:
    assert REQUIRED <= set(models.names())


def test_unknown_name_lists_the_registry() -> None:
    with pytest.raises(KeyError, match="unknown representation 'nope'.*vgg"):
        models.get("nope")


def test_hear_prefix_wraps_an_installed_hear_module() -> None:
    a = models.get("hear:musicrep.hear")
    b = models.get("hear", module="musicrep.hear")
    x = torch.randn(1, 3 * 16_000) * 0.1
    assert torch.equal(a(x), b(x)) and a.id == b.id

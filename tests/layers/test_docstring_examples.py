"""The worked examples in the docstrings of the layer and metric modules (their equations' usage) run."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = [
    "chronorec.layers.temporal", "chronorec.layers.attention", "chronorec.layers.embedding",
    "chronorec.layers.mlp", "chronorec.layers.rhythm", "chronorec.layers.transformer",
    "chronorec.layers.activation_pool", "chronorec.layers.dropout", "chronorec.metrics.ranking",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    torch.manual_seed(0)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

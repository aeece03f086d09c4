"""Checkpoints: RNG states round-trip through weights_only loading; writes are atomic."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from chronorec.errors import ChronorecError
from chronorec.train.checkpoint import (
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    seed_everything,
)


def _draw() -> tuple:
    return random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(3).tolist()


def test_rng_roundtrip_through_weights_only_file(tmp_path: Path) -> None:
    seed_everything(11)
    _draw()
    np.random.randn()  # leaves a cached gaussian in numpy's state
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"rng": [capture_rng()], "model": {"w": torch.ones(2)}})
    expected = _draw()
    seed_everything(999)
    state = load_checkpoint(path)  # weights_only=True inside
    restore_rng(state["rng"][0])
    assert _draw() == expected
    assert torch.load(path, weights_only=True)["format"] == 1


def test_atomic_write_leaves_no_temp_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "last.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_missing_truncated_or_foreign_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ChronorecError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ChronorecError, match="cannot load"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(1)}, foreign)
    with pytest.raises(ChronorecError, match="not a chronorec checkpoint"):
        load_checkpoint(foreign)

"""A damaged checkpoint (empty, truncated, pickled objects) is one short error naming the file: no
empty reason, no paragraph of torch advice to load it with ``weights_only=False``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from chronorec.errors import ChronorecError
from chronorec.train.checkpoint import load_checkpoint, save_checkpoint


class Opaque:
    """Any class torch's weights-only unpickler does not allow."""


def _error(path: Path) -> str:
    with pytest.raises(ChronorecError) as info:
        load_checkpoint(path)
    assert info.value.file == str(path)
    text = str(info.value)
    assert "\n" not in text and len(text) < 300 + len(str(path)) and "weights_only" not in text
    return text


def test_empty_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(b"")
    assert _error(path).endswith("cannot load checkpoint: empty file (0 bytes)")


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.zeros(5000)}, "step": 3})
    path.write_bytes(path.read_bytes()[:4000])
    assert "truncated or corrupt file" in _error(path)


def test_pickled_object_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    torch.save({"format": 1, "model": Opaque()}, path)  # needs unpickling a class
    assert "not a chronorec checkpoint" in _error(path)

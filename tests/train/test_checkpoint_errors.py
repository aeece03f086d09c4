"""A damaged checkpoint (empty, truncated, pickled objects) is one short error naming the file: no
empty reason, no paragraph of torch advice to load it with ``weights_only=False``."""

from __future__ import annotations

from collections.abc import Callable
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


def test_weights_of_another_model_are_one_error(tmp_path: Path) -> None:
    from torch import nn

    from chronorec.train.checkpoint import load_weights

    path = tmp_path / "best.pt"
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    other = {"model": {"0.weight": torch.zeros(3, 5), "0.bias": torch.zeros(3), "gru.weight": torch.zeros(1)}}
    with pytest.raises(ChronorecError) as info:
        load_weights(model, other, path, "model 'x'")
    text = str(info.value)
    assert text.startswith(f"{path}: checkpoint does not fit model 'x': 2 weight(s) missing (1.weight, 1.bias)")
    assert "1 unexpected (gru.weight)" in text and "0.weight [3, 5] vs [3, 4]" in text and "\n" not in text
    with pytest.raises(ChronorecError, match="holds no model weights"):
        load_weights(model, {"step": 1}, path, "model 'x'")


def test_resume_after_the_config_changed_is_one_error(tiny_nextitem_dataset: Path, tmp_path: Path,
                                                      cli_error: Callable[[list[str]], str]) -> None:
    import json

    from chronorec.cli import main

    main(["train", "--data", str(tiny_nextitem_dataset), "--model", "sasrec", "--set", "model.dim=8",
          "--set", "train.threads=1", "--epochs", "1", "--quiet", "--out", str(tmp_path)])
    (run,) = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    (run / "metrics.json").unlink()  # as if killed before the end
    cfg = json.loads((run / "config.json").read_text())
    cfg["model_options"]["dim"] = 16
    (run / "config.json").write_text(json.dumps(cfg))
    log = (run / "metrics.jsonl").read_bytes()
    err = cli_error(["train", "--resume", str(run), "--quiet"])
    assert err.startswith(f"error: {run / 'checkpoints' / 'last.pt'}: checkpoint does not fit model 'sasrec'")
    assert "of another shape" in err
    assert (run / "metrics.jsonl").read_bytes() == log and (run / "checkpoints" / "last.pt").is_file()

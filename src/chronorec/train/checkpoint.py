"""Checkpoints that resume a run exactly and load with ``torch.load(path, weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (no pickled objects)::

    format            1
    model             model.state_dict()
    optimizer         optimizer.state_dict()
    epoch             epoch to continue with
    batch_in_epoch    index of the next batch of that epoch's permutation (the data position)
    global_step       optimizer steps taken so far
    best_metric       best validation value of the task's selection metric (-inf before any)
    best_epoch, best_step, best_valid   where the best came from and its full metrics dict
    patience_counter  evaluations since the last improvement
    stopped           True once training ended (epochs done or patience exhausted)
    metrics_lines     lines of metrics.jsonl written at save time (a resume truncates the rest)
    loss_sum, loss_count, samples_seen, train_seconds   running statistics
    rng               one entry per DDP rank: {"python": ..., "numpy": ..., "torch": ByteTensor}

Files are written to a temporary name in the same folder, flushed to disk and moved into place
with ``os.replace``, so a reader (or a resume after ``kill -9``) sees either the old or the new file.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from chronorec.errors import ChronorecError

FORMAT = 1


def capture_rng() -> dict[str, Any]:
    """Python, numpy (legacy global) and torch CPU RNG states as tensors and numbers."""
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    return {
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (temp file in the same folder, fsync, ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        torch.save({"format": FORMAT, **state}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint on CPU with ``weights_only=True``; a missing or foreign file is a user error."""
    if not path.is_file():
        raise ChronorecError("checkpoint not found", file=path)
    if path.stat().st_size == 0:
        raise ChronorecError("cannot load checkpoint: empty file (0 bytes)", file=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: torch raises many types
        raise ChronorecError(f"cannot load checkpoint: {_load_reason(err)}", file=path) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ChronorecError(f"not a chronorec checkpoint (format {FORMAT})", file=path)
    return state


def _load_reason(err: Exception) -> str:
    """torch's reason in a few words: its messages run to a paragraph, and the weights-only one
    advises ``weights_only=False`` (running the file's pickled code), which is not the fix here."""
    text = " ".join(str(err).split())
    if text.startswith("Weights only load failed"):
        return "not a chronorec checkpoint (the file holds pickled objects or is not a torch file)"
    first = text.split(". ")[0].rstrip(".")
    first = first if len(first) <= 160 else first[:157] + "..."
    return f"truncated or corrupt file ({first or type(err).__name__})"


def load_weights(model: nn.Module, ckpt: dict[str, Any], path: Path, what: str) -> None:
    """``model.load_state_dict(ckpt["model"])``; weights of another model or other options are one
    error naming the file and the first mismatches (torch's message runs over many lines)."""
    state = ckpt.get("model")
    if not isinstance(state, dict):
        raise ChronorecError("checkpoint holds no model weights", file=path)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise ChronorecError(f"checkpoint does not fit {what}: {_mismatch(model, state)} "
                             "(trained with another model or options?)", file=path) from None


def _mismatch(model: nn.Module, state: dict[str, Any]) -> str:
    want = model.state_dict()

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    parts = []
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    shapes = [f"{k} {list(getattr(state[k], 'shape', []))} vs {list(want[k].shape)}"
              for k in want if k in state and getattr(state[k], "shape", None) != want[k].shape]
    if missing:
        parts.append(f"{len(missing)} weight(s) missing ({some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({some(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} of another shape, checkpoint vs model ({some(shapes)})")
    return "; ".join(parts) or "the weights do not load"

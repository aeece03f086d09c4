"""Run folders: create them, log into them, and load a trained model back from them.

Layout (everything a later command needs; only rank 0 writes)::

    runs/<name>/<id>/                  name defaults to <dataset>-<model>; id = YYYYmmdd-HHMMSS-s<seed>-<hex>
      config.json                      resolved RunConfig (data path + manifest cache key, model options, train)
      env.json                         versions, seed, git sha, host cores, threads, world size, command line
      metrics.jsonl                    one line per evaluation: epoch, step, split, metrics, train_loss, elapsed
      metrics.json                     final: valid (best), test, best_epoch, best_step, train_seconds, samples/s
      checkpoints/last.pt, best.pt     see chronorec.train.checkpoint
      predictions/test.parquet         index, user, item (internal ids), label + score (CTR) or rank (next-item)

``load_run(run_dir)`` rebuilds dataset, task and model from ``config.json`` alone (plus the prepared
data it names), which is what ``evaluate``, ``predict``, ``serve`` and the analyses use.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from torch import nn

from chronorec import __version__, atomic
from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError, warn
from chronorec.train import build
from chronorec.train.checkpoint import load_checkpoint, load_weights
from chronorec.train.config import RunConfig
from chronorec.train.task import Task

CONFIG = "config.json"
ENV = "env.json"
METRICS_LOG = "metrics.jsonl"
METRICS = "metrics.json"
CKPT_DIR = "checkpoints"


def make_run_id(seed: int) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-s{seed}-{secrets.token_hex(2)}"


def new_run_dir(out: Path, name: str, seed: int) -> Path:
    """A fresh ``out/name/<id>`` folder (the random suffix keeps same-second starts apart)."""
    while True:
        d = Path(out) / name / make_run_id(seed)
        try:
            d.mkdir(parents=True)
            return d
        except FileExistsError:  # pragma: no cover - same second and same 16 random bits
            continue


def checkpoint_path(run_dir: Path, which: Literal["best", "last"]) -> Path:
    return Path(run_dir) / CKPT_DIR / f"{which}.pt"


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + ``os.replace``)."""
    atomic.write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def git_sha() -> str | None:
    """The source tree's commit (with ``+dirty`` when modified), None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def environment(seed: int, threads: int, world_size: int, device: str, command: list[str] | None) -> dict:
    """What ``env.json`` records about where and how a run ran."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count()
    return {
        "chronorec": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "polars": pl.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "host_cores": cores,
        "threads": threads,
        # how torch's OpenMP threads wait (the CLI picks passive on a busy machine): a speed factor of ~2
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "world_size": world_size,
        "device": device,
        "seed": seed,
        "git_sha": git_sha(),
        "command": command if command is not None else [],
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class MetricsLog:
    """Append-only ``metrics.jsonl``; a resume truncates it to the lines its checkpoint had seen."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate(self, n: int) -> None:
        if not self.path.is_file():
            return
        kept = self.path.read_text().splitlines(keepends=True)[:n]
        atomic.write_text(self.path, "".join(kept))

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, default=_json_default) + "\n")
            fh.flush()

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


@dataclass
class LoadedRun:
    """A trained run rebuilt from its folder; ``model`` is in eval mode on CPU."""

    run_dir: Path
    config: RunConfig
    dataset: Any  # PreparedDataset
    schema: DatasetSchema
    task: Task
    model: nn.Module
    checkpoint: dict[str, Any]  # the loaded checkpoint minus model/optimizer tensors

    def loader(self, split: str, batch_size: int | None = None) -> Any:
        """An unshuffled, length-sorted loader over ``split`` with the run's history cap."""
        return build.make_eval_loader(self.dataset, split, self.config.train, self.task, batch_size)

    def evaluate(self, split: str = "test") -> dict:
        return self.task.evaluate(self.model, self.loader(split).iter_epoch(0))

    def predict(self, split: str = "test", raw_ids: bool = False) -> pl.DataFrame:
        """The task's per-sample predictions in split order; with ``raw_ids`` user and item are the
        source's ids."""
        df = predict_in_order(self.task, self.model, self.loader(split))
        return to_raw_ids(df, self.dataset) if raw_ids else df


def predict_in_order(task: Task, model: nn.Module, loader: Any) -> pl.DataFrame:
    """``task.predict`` over an (unshuffled, possibly length-sorted) loader, rows in split order.

    A task whose frame has no ``index`` column gets one from the loader's batch order, so every
    prediction file has ``index`` (row of the split's samples file) first and is sorted by it.
    """
    df = task.predict(model, loader.iter_epoch(0))
    if "index" not in df.columns:
        batches = loader.batch_rows(0)
        rows = np.concatenate(batches) if batches else np.empty(0, dtype=np.int64)
        df = df.with_columns(pl.Series("index", loader.row_sample[rows], dtype=pl.Int64))
    return df.select("index", pl.exclude("index")).sort("index")


def to_raw_ids(df: pl.DataFrame, dataset: Any) -> pl.DataFrame:
    """Replace internal ``user`` / ``item`` ids by the raw ids of the prepared vocabularies (order kept;
    padding and unknown ids become null)."""
    out = df
    for col in ("user", "item"):
        if col not in df.columns:
            continue
        vocab = dataset.vocab(col).select(pl.col("idx").cast(pl.Int64), pl.col("raw"))
        mapped = df.select(pl.col(col).cast(pl.Int64).alias("idx")).join(vocab, on="idx", how="left",
                                                                        maintain_order="left")
        out = out.with_columns(mapped["raw"].alias(col))
    return out


def read_config(run_dir: str | Path) -> RunConfig:
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise ChronorecError(f"not a run folder (no {CONFIG}): {run_dir}")
    return RunConfig.load(run_dir / CONFIG)


def check_data(data: str | Path, cache_key: str | None) -> None:
    """Warn when the prepared folder ``data`` changed since a run trained on it (its manifest cache key
    is no longer ``cache_key``)."""
    key = build.manifest_key(data)
    if cache_key and key and key != cache_key:
        warn(f"prepared data {data} changed since training (cache key {key[:12]}..., run trained "
             f"on {cache_key[:12]}...); metrics may not be comparable")


def load_run(run_dir: str | Path, checkpoint: Literal["best", "last"] = "best") -> LoadedRun:
    """Rebuild a run's dataset, task and trained model (``best`` falls back to ``last`` if absent)."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    check_data(cfg.data, cfg.cache_key)
    path = checkpoint_path(run_dir, checkpoint)
    if checkpoint == "best" and not path.is_file():
        path = checkpoint_path(run_dir, "last")
    state = load_checkpoint(path)
    dataset = build.open_dataset(cfg.data)
    schema: DatasetSchema = dataset.schema
    model = build.make_run_model(cfg, schema)
    load_weights(model, state, path, f"model {cfg.model!r}")
    model.eval()
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "rng")}
    return LoadedRun(run_dir, cfg, dataset, schema, build.make_task(schema, cfg.task_options), model, meta)


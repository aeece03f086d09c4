"""Typed run configuration and ``--set key=value`` overrides.

A run is fully described by a :class:`RunConfig` (saved resolved as ``config.json`` in the run
folder): which prepared data (path + manifest cache key), which model (registry name + its resolved
options), task options, and the training recipe :class:`TrainConfig`.

Overrides name a section and a field: ``model.dim=64``, ``model.mlp=[200,80]``, ``train.lr=0.01``,
``train.optimizer=adagrad``, ``task.gauc_weight=clicks``, ``longtail.strategy=pin``. Values are parsed as JSON literals
(``64``, ``1e-3``, ``true``, ``null``, ``[80, 40]``, ``"text"``), with ``True``/``False``/``None``
accepted too and anything else kept as a plain string; nothing is ever evaluated. The parsed values
are then validated by pydantic against the section's types, so ``train.lr=fast`` is a one-line
error naming the option.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chronorec import atomic
from chronorec.errors import ChronorecError, first_validation_error
from chronorec.longtail.aggregation import LongtailConfig

SECTIONS = ("model", "train", "task", "longtail")

# Task options whose default changed after runs were saved: a config.json without the key was
# trained with this value (next-item runs before session 13 averaged each batch's loss; see
# docs/training.md, "task.loss_norm"). New runs record the value they use (build.run_config).
LEGACY_TASK_OPTIONS: dict[str, dict[str, Any]] = {"next_item": {"loss_norm": "batch"}}


def with_legacy_options(task: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """A saved run's task options with the values it was trained with where its config.json is silent."""
    return {**LEGACY_TASK_OPTIONS.get(task or "", {}), **options}


class TrainConfig(BaseModel):
    """The training recipe. Defaults follow the TIN paper's Amazon setting (Adam, lr 1e-3, clip 5)."""

    model_config = ConfigDict(extra="forbid")

    optimizer: Literal["adam", "adagrad"] = "adam"  # paper: Adam 1e-3 (Amazon), Adagrad 0.01 (Taobao)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(256, gt=0)  # global: each of W DDP processes takes batch_size // W
    eval_batch_size: int | None = Field(None, gt=0)  # None: the task's (CTR 1024 samples, next-item 256 sequences)
    epochs: int = Field(10, ge=1)
    max_len: int | None = Field(None, ge=1)  # history cap at batch time (None = the longest stored history)
    # next-item training windows of a history longer than max_len start every `window_stride` targets
    # (None = max_len: disjoint windows); a causal model trains each target once, with at least
    # max_len - stride behaviors before it where the history has them (1 = RecBole's prefixes);
    # BERT4Rec masks anywhere in a window, so overlaps give it more cloze samples per epoch
    window_stride: int | None = Field(None, ge=1)
    # at most this many windows per sequence: a longer one's stride grows to ceil(targets / max_windows)
    # (with window_stride=1: one window per target for short histories, max_windows for long ones)
    max_windows: int | None = Field(None, ge=1)
    bucket: bool = True  # train batches of similar history length: far less padding (4x faster on Amazon)
    grad_clip: float | None = Field(5.0, gt=0)  # global L2 norm; None disables clipping
    patience: int = Field(3, ge=1)  # evaluations without improvement of the selection metric
    # learning rate decay on a plateau of the selection metric (torch's ReduceLROnPlateau, mode max):
    # after more than `lr_decay_patience` evaluations without improvement every group's rate is
    # multiplied by `lr_decay`, never below `lr_min`; None: a constant rate
    lr_decay: float | None = Field(None, gt=0, lt=1)
    lr_decay_patience: int = Field(2, ge=0)
    lr_min: float = Field(0.0, ge=0)
    # evaluate, select and save an exponential moving average of the weights (torch's AveragedModel):
    # after every step avg = d*avg + (1-d)*weights with d = min(ema_decay, (1+t)/(10+t)) at its t-th
    # update; best.pt holds the average, last.pt both. None: the weights as trained
    ema_decay: float | None = Field(None, gt=0, lt=1)
    eval_every: int = Field(1, ge=1)
    eval_unit: Literal["epoch", "step"] = "epoch"
    checkpoint_every: int = Field(200, ge=0)  # steps between mid-epoch last.pt writes; 0 = at evaluations only
    seed: int = 0
    threads: int | None = Field(None, ge=1)  # torch threads per process; None = cores / local processes
    deterministic: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when available, else CPU
    find_unused_parameters: bool | None = None  # DDP: None = probe one batch for parameters without gradient
    save_predictions: bool = True  # write predictions/test.parquet (internal ids) at the end
    log_every: int = Field(50, ge=1)  # steps between progress-bar loss updates (one .item() each)


class RunConfig(BaseModel):
    """Everything needed to rebuild a run: data, model, task options and training recipe."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str
    data: str  # absolute path of the prepared dataset folder
    cache_key: str | None = None  # the prepared folder's manifest cache key at training time
    dataset: str = ""  # schema name
    task: Literal["ctr", "next_item"] = "ctr"
    model: str
    model_options: dict[str, Any] = Field(default_factory=dict)  # resolved model config
    task_options: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    longtail: LongtailConfig = Field(default_factory=LongtailConfig)  # PIN and the long-tail baselines

    @model_validator(mode="before")
    @classmethod
    def _legacy_task_options(cls, data: Any) -> Any:
        """An old config.json resumes, compares and re-runs with the options it was trained with."""
        if isinstance(data, dict) and isinstance(data.get("task_options", {}), dict):
            data = {**data, "task_options": with_legacy_options(data.get("task"), data.get("task_options", {}))}
        return data

    def save(self, path: Path) -> None:
        """Write atomically (temp file + ``os.replace``): a kill mid-write never leaves half a config."""
        atomic.write_text(path, self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            return cls.model_validate(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, ValidationError) as err:
            raise ChronorecError(f"cannot read run config: {err}", file=path) from None


def parse_value(text: str) -> Any:
    """A JSON literal (int, float, bool, null, list, object, quoted string), else the raw string."""
    low = text.strip()
    if low in ("True", "False"):
        return low == "True"
    if low == "None":
        return None
    try:
        return json.loads(low)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``["model.dim=64", "train.lr=1e-3"]`` -> ``{"model": {"dim": 64}, "train": {"lr": 0.001}, "task": {}}``.

    Dotted keys below the section nest: ``model.mlp.hidden=[80,40]`` -> ``{"mlp": {"hidden": [80, 40]}}``.
    """
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for item in items or []:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ChronorecError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. model.dim=64")
        if parts[0] not in SECTIONS:
            raise ChronorecError(f"--set {item!r}: section must be one of {', '.join(SECTIONS)}")
        node = out[parts[0]]
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ChronorecError(f"--set {item!r}: {p!r} is already set to a value")
        node[parts[-1]] = parse_value(raw)
    return out


def _validated(cls: type[BaseModel], values: dict[str, Any], section: str) -> Any:
    """``cls`` validated from ``values``; a pydantic error becomes one line naming ``section.option``."""
    try:
        return cls.model_validate(values)
    except ValidationError as err:
        loc, msg, _ = first_validation_error(err)
        raise ChronorecError(f"option '{section}.{loc}': {msg}" if loc else f"{section} options: {msg}") from None


def build_train_config(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Validate ``values`` over ``base`` (or the defaults); errors name the option."""
    return _validated(TrainConfig, {**(base.model_dump() if base else {}), **values}, "train")


def build_longtail_config(values: dict[str, Any]) -> LongtailConfig:
    """Validate ``longtail.*`` overrides; errors name the option."""
    return _validated(LongtailConfig, values, "longtail")


def default_threads(local_processes: int = 1) -> int:
    """CPU cores available to this process divided among the processes on this host (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_processes))

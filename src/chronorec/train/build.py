"""Build a run's parts from its config: dataset, loaders, model, task, optimizer.

The trainer, ``evaluate``, ``predict`` and ``reproduce`` all go through these, so a run folder is
read the same way everywhere. The data and next-item modules are imported lazily: they belong to
other parts of the library and are only needed once a run actually starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError
from chronorec.longtail import PluginModel
from chronorec.longtail.aggregation import strategy_task, trained_group
from chronorec.models.registry import build_config, create_model, get_entry
from chronorec.train.config import RunConfig, TrainConfig, build_longtail_config, build_train_config
from chronorec.train.ctr_task import CTRTask
from chronorec.train.task import Task

if TYPE_CHECKING:
    from torch.optim.lr_scheduler import ReduceLROnPlateau
    from torch.optim.swa_utils import AveragedModel


def open_dataset(path: str | Path) -> Any:
    """The prepared dataset at ``path`` (``PreparedDataset.open``), with a clear error when absent."""
    from chronorec.data.dataset import PreparedDataset

    p = Path(path)
    if not (p / "schema.json").is_file():
        raise ChronorecError(f"not a prepared dataset (no schema.json): {p}; run 'chronorec prepare' first")
    return PreparedDataset.open(p)


def manifest_key(path: str | Path) -> str | None:
    """The prepared folder's manifest cache key (None when the folder has no manifest)."""
    m = Path(path) / "manifest.json"
    if not m.is_file():
        return None
    try:
        manifest = json.loads(m.read_text())
    except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON
        return None
    if not isinstance(manifest, dict):  # valid JSON but not a manifest (e.g. a list)
        return None
    key = manifest.get("key", manifest.get("cache_key"))
    return str(key) if key is not None else None


def make_loader(
    dataset: Any,
    split: str,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    max_len: int | None,
    rank: int = 0,
    world_size: int = 1,
    bucket: bool = False,
    groups: list[int] | None = None,
    window_stride: int | None = None,
    max_windows: int | None = None,
) -> Any:
    """A ``BatchLoader`` over one split (``iter_epoch(epoch, start_batch=k)`` yields batches);
    ``groups`` keeps only the rows of those activity groups."""
    from chronorec.data.loader import BatchLoader

    return BatchLoader(
        dataset, split, batch_size=batch_size, shuffle=shuffle, seed=seed, max_len=max_len,
        rank=rank, world_size=world_size, bucket=bucket, groups=groups, window_stride=window_stride,
        max_windows=max_windows,
    )


def train_window(config: RunConfig) -> int | None:
    """The training history cap: ``train.max_len``, else the model's own ``max_len`` (next-item)."""
    return config.train.max_len or config.model_options.get("max_len")


def make_train_loader(config: RunConfig, dataset: Any, rank: int = 0, world_size: int = 1) -> Any:
    """The run's shuffled training batches (each of ``world_size`` processes takes its share)."""
    tc = config.train
    return make_loader(dataset, "train", batch_size=max(1, tc.batch_size // world_size), shuffle=True, seed=tc.seed,
                       max_len=train_window(config), rank=rank, world_size=world_size, bucket=tc.bucket,
                       groups=train_groups(config, dataset.schema), window_stride=tc.window_stride,
                       max_windows=tc.max_windows)


def make_eval_loader(dataset: Any, split: str, train: Any, task: Any, batch_size: int | None = None) -> Any:
    """Unshuffled, length-sorted batches of ``split`` with the run's history cap (metrics do not depend
    on order; length-sorted batches evaluate 10-15x faster than random ones on Amazon). Batch size:
    ``batch_size``, else ``train.eval_batch_size``, else the task's default."""
    size = batch_size or train.eval_batch_size or task.eval_batch_size
    return make_loader(dataset, split, batch_size=size, shuffle=False, seed=train.seed, max_len=train.max_len,
                       bucket=True)


def train_groups(config: RunConfig, schema: DatasetSchema) -> list[int] | None:
    """The activity groups the training loader keeps (:func:`trained_group`; None = all).
    Filtering rows in the loader (rather than zero-weighting the other group's rows) keeps every
    step a full batch of the group and never takes an optimizer step on an empty loss."""
    if config.longtail.phase == "plugins":
        return None
    only = trained_group(config.longtail.strategy, len(schema.groups.names))
    return None if only is None else [only]


def resolve_model_options(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The model's full config (defaults + overrides) as JSON-able values, validated by its type."""
    return build_config(name, overrides).model_dump(mode="json")


def make_model(name: str, schema: DatasetSchema, options: dict[str, Any]) -> nn.Module:
    return create_model(name, schema, options)


def make_run_model(config: RunConfig, schema: DatasetSchema) -> nn.Module:
    """The model a run trains and serves: the registered model, wrapped with one plugin prediction
    network per activity group in PIN's second phase (:class:`~chronorec.longtail.PluginModel`)."""
    model = make_model(config.model, schema, config.model_options)
    if config.longtail.phase == "plugins":
        model = PluginModel(model, n_groups=len(schema.groups.names))
    return model


def train_sample_share(dataset: Any) -> list[float]:
    """S(z): each activity group's share of the training terms (CTR: samples; next-item: target
    positions, ``length - 1`` per training sequence, since its first event predicts nothing)."""
    samples = dataset.samples("train")
    groups = dataset.group_of_user[np.asarray(samples["user"], dtype=np.int64)]
    if dataset.schema.task == "ctr":
        weights = None
    else:
        length = np.asarray(samples["hist_end"], dtype=np.float64) - np.asarray(samples["hist_start"])
        weights = np.maximum(length - 1, 0)
    counts = np.bincount(groups, weights=weights, minlength=len(dataset.schema.groups.names))
    return (counts / max(counts.sum(), 1)).tolist()


def make_training_task(config: RunConfig, dataset: Any) -> Task:
    """The task whose loss the trainer minimises: the run's task, weighted per the long-tail strategy
    (joint = unchanged; PIN's plugin phase trains with the plain loss, routing does the rest)."""
    task = make_task(dataset.schema, config.task_options)
    lt = config.longtail
    if lt.strategy == "joint" or lt.phase == "plugins":
        return task
    return strategy_task(task, lt, dataset.schema.groups, train_sample_share(dataset))  # type: ignore[return-value]


def calibrate_task(task: Any, loader: Any) -> None:
    """Let the task (or a long-tail strategy's weighted task) fix run constants from the training
    loader (``task.loss_norm=epoch``: terms per batch, per group)."""
    calibrate = getattr(task, "calibrate", None)
    if calibrate is not None:
        calibrate(loader)


def make_task(schema: DatasetSchema, options: dict[str, Any] | None = None) -> Task:
    """``CTRTask`` or ``NextItemTask`` as the dataset's ``schema.task`` says, with the run's task options."""
    from chronorec.train.task_options import check_task_options

    opts = check_task_options(schema.task, options)  # types, ranges, known keys: one line naming the option
    groups = list(schema.groups.names)
    try:
        if schema.task == "ctr":
            return CTRTask(group_names=groups, **opts)
        from chronorec.train.nextitem_task import NextItemTask

        return NextItemTask.from_schema(schema, **opts)
    except (TypeError, ValueError) as err:
        raise ChronorecError(f"task option not understood by the {schema.task} task: {err}") from None


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or Adagrad over the trainable parameters, fused (one kernel over all tensors) when the
    parameters allow it: on CPU the fused step is several times faster than the per-tensor loop.
    torch's own classes minus their ``torch._dynamo`` import (:mod:`chronorec.train.optim`)."""
    from chronorec.train import optim

    params: Any = [p for p in model.parameters() if p.requires_grad]
    groups = getattr(model, "param_groups", None)  # e.g. PIN plugins + a fine-tuned backbone at a lower lr
    if callable(groups):
        params = groups(cfg.lr)
    cls = optim.Adam if cfg.optimizer == "adam" else optim.Adagrad
    try:
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, ValueError):  # e.g. sparse gradients or an unsupported dtype/device
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_lr_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> ReduceLROnPlateau | None:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau`` on the selection metric (higher is better) when
    ``train.lr_decay`` is set, else None. A rate is cut only when the metric has not beaten its best
    for more than ``lr_decay_patience`` evaluations, the trainer's own test of an improvement
    (strictly higher), so the two patience counters agree on what an improvement is."""
    if cfg.lr_decay is None:
        return None
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    return ReduceLROnPlateau(optimizer, mode="max", factor=cfg.lr_decay, patience=cfg.lr_decay_patience,
                             threshold=0.0, min_lr=cfg.lr_min)


def make_weight_average(model: nn.Module, cfg: TrainConfig) -> AveragedModel | None:
    """``torch.optim.swa_utils.AveragedModel`` keeping an exponential moving average of ``model``'s
    parameters and buffers when ``train.ema_decay`` is set, else None. Its ``t``-th update (0 = the
    copy after the first step) uses the decay ``min(ema_decay, (1 + t) / (10 + t))``, so the first
    evaluations are not dominated by the initial weights; integer buffers are copied, not averaged."""
    if cfg.ema_decay is None:
        return None
    from torch.optim.swa_utils import AveragedModel

    decay = cfg.ema_decay

    @torch.no_grad()
    def ema_update(averaged: list[torch.Tensor], current: list[torch.Tensor], _n: torch.Tensor | int) -> None:
        if not (averaged[0].is_floating_point() or averaged[0].is_complex()):
            torch._foreach_copy_(averaged, current)
            return
        # the count as kept on the host: AveragedModel hands over a copy on the parameters' device,
        # whose read-back would be a device sync every step on a GPU
        t = int(average.n_averaged)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + t) / (10.0 + t)))

    average = AveragedModel(model, multi_avg_fn=ema_update, use_buffers=True)
    return average


def check_name(name: str, what: str = "run name") -> str:
    """A run (or table) name is one folder under ``--out``: no path separators, not ``.`` or ``..``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ChronorecError(f"{what} {name!r} must be one folder name (no '/', not '.' or '..')")
    return name


def run_config(
    data: Path, model: str, overrides: dict[str, dict[str, Any]], *, seed: int | None = None,
    epochs: int | None = None, name: str | None = None,
) -> RunConfig:
    """The resolved config of a new run: ``overrides`` by section (``parse_overrides``) validated
    against the model's, the trainer's and the task's options; ``seed`` / ``epochs`` win over them."""
    data = Path(data).expanduser().resolve()
    if not (data / "schema.json").is_file():
        raise ChronorecError(f"not a prepared dataset (no schema.json): {data}; run 'chronorec prepare' first")
    schema = DatasetSchema.load(data / "schema.json")
    entry = get_entry(model)
    if entry.task != schema.task:
        raise ChronorecError(f"model {model!r} is a {entry.task} model but {data} was prepared for {schema.task}")
    train_values = dict(overrides.get("train", {}))
    if seed is not None:
        train_values["seed"] = seed
    if epochs is not None:
        train_values["epochs"] = epochs
    longtail = build_longtail_config(dict(overrides.get("longtail", {})))
    task_options = dict(overrides.get("task", {}))
    if schema.task == "next_item":  # recorded, so a later change of default leaves this run as it was
        task_options.setdefault("loss_norm", "epoch")
    config = RunConfig(
        name=check_name(name) if name is not None else f"{schema.name}-{model}",
        data=str(data),
        cache_key=manifest_key(data),
        dataset=schema.name,
        task=schema.task,
        model=model,
        model_options=resolve_model_options(model, overrides.get("model", {})),
        task_options=task_options,
        train=build_train_config(train_values),
        longtail=longtail,
    )
    stride, window = config.train.window_stride, train_window(config)
    if stride is not None and (schema.task != "next_item" or window is None or stride > window):
        raise ChronorecError(f"train.window_stride={stride} needs next-item data and at most the training window "
                             f"(train.max_len or model.max_len: {window})")
    if config.train.max_windows is not None and (schema.task != "next_item" or window is None):
        raise ChronorecError(f"train.max_windows={config.train.max_windows} needs next-item data and a training "
                             "window (train.max_len or model.max_len)")
    return config

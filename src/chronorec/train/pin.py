"""PIN's two training phases on top of the ordinary :class:`~chronorec.train.trainer.Trainer`.

Stage one trains the backbone with backdoor-adjusted gradient aggregation
(:class:`~chronorec.longtail.GroupAggregatedTask`) into ``RUN/backbone/``; stage two starts from
its best checkpoint, wraps the model in per-group plugins (:class:`~chronorec.longtail.PluginModel`)
and trains them into ``RUN/`` itself, so ``RUN`` holds the final model and its metrics like any
other run. ``RUN/pin.json`` keeps the user's full config: ``chronorec train --resume RUN`` picks up
wherever the run stopped, in either stage. See ``docs/pin.md``.
"""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from chronorec.train.config import RunConfig
from chronorec.train.ddp import DistInfo, barrier
from chronorec.train.runs import METRICS, checkpoint_path
from chronorec.train.trainer import Trainer

PIN_PLAN = "pin.json"  # the user's full PIN config, so an interrupted stage one can be resumed


def fit_pin(config: RunConfig, run_dir: Path, info: DistInfo, resume: bool,
             command: list[str] | None, verbose: bool) -> None:
    """PIN's two phases: stage one (backbone, gradient aggregation) in ``RUN/backbone/``, then stage
    two (per-group plugins from the backbone's best checkpoint) in ``RUN/`` itself, so ``RUN`` holds
    the final model and its metrics like any other run."""
    lt = config.longtail
    if info.is_main and not (run_dir / PIN_PLAN).is_file():
        config.save(run_dir / PIN_PLAN)
    backbone_dir = run_dir / "backbone"
    stage1 = config.model_copy(update={"longtail": lt.model_copy(update={"phase": "backbone"})})
    if not (backbone_dir / METRICS).is_file():
        if info.is_main:
            backbone_dir.mkdir(parents=True, exist_ok=True)
        barrier(info)
        if verbose and info.is_main:
            tqdm.write(f"PIN stage one (backbone, gradient aggregation) -> {backbone_dir}")
        again = resume and checkpoint_path(backbone_dir, "last").is_file()
        Trainer(stage1, backbone_dir, info, resume=again, command=command, verbose=verbose).fit()
    train2 = config.train.model_copy(update={"epochs": max(lt.plugin_epochs, 1), "lr": lt.plugin_lr})
    stage2 = config.model_copy(update={
        "train": train2,
        "longtail": lt.model_copy(update={"phase": "plugins",
                                          "init_from": str(checkpoint_path(backbone_dir, "best"))}),
    })
    if verbose and info.is_main:
        tqdm.write(f"PIN stage two (plugins per group, backbone {'fine-tuned' if lt.finetune_backbone else 'frozen'})")
    again = resume and checkpoint_path(run_dir, "last").is_file()
    Trainer(stage2, run_dir, info, resume=again, command=command, verbose=verbose).fit()

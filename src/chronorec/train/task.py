"""The task interface the trainer drives: how a model's loss and metrics are computed.

A task knows nothing of optimizers, checkpoints or run folders; the trainer knows nothing of
labels or rankings. ``CTRTask`` (pointwise click prediction) and ``NextItemTask`` (full-ranking
next-item recommendation) implement it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import polars as pl
from torch import Tensor, nn

from chronorec.data.batch import Batch


class Task(Protocol):
    name: str
    select_metric: str  # validation metric used for early selection, higher is better ("gauc", "ndcg@10")
    eval_batch_size: int  # evaluation batch when train.eval_batch_size is not set

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Scalar training loss of one batch (including any auxiliary loss the model returns)."""
        ...

    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict:
        """Metrics over a split: ``{"gauc": .., "auc": .., ..., "groups": {"head": {...}, "tail": {...}}}``."""
        ...

    def predict(self, model: nn.Module, batches: Iterable[Batch]) -> pl.DataFrame:
        """One row per sample so anyone can recompute the metrics (CTR: user, item, label, score;
        next-item: user, item, rank)."""
        ...

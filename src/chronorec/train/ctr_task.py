"""Pointwise click prediction (the TIN paper's task): BCE on one logit per (history, target) row.

``loss``     mean binary cross-entropy with logits, plus the model's auxiliary loss (DIEN) if any.
``evaluate`` GAUC (the selection metric by default; ``task.select_metric=auc``), AUC and logloss
             over the split, and the same per activity group (``batch.group`` indexes the schema's
             group names: head, ..., tail).
``predict``  one row per sample, in split order: ``index`` (row in the split's samples file),
             ``user``, ``item`` (internal ids), ``label`` and ``score`` (click probability).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.metrics.ctr import GaucWeight, ctr_metrics


class CTRTask:
    """The Task protocol for CTR models (``ModelOutput.logits: [B]``)."""

    name = "ctr"
    eval_batch_size = 1024  # samples: one target and one history each

    def __init__(self, group_names: list[str] | None = None, gauc_weight: GaucWeight = "impressions",
                 select_metric: str = "gauc") -> None:
        self.group_names = list(group_names or [])
        self.gauc_weight: GaucWeight = gauc_weight
        self.select_metric = select_metric  # "gauc" (the TIN paper's) or "auc" (what DIN's peers select on)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        out = model(batch)
        loss = F.binary_cross_entropy_with_logits(out.logits, batch.label)
        if out.aux_loss is not None:
            loss = loss + out.aux_loss
        return loss

    def row_losses(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor, Tensor | None]:
        """Per-sample BCE ``[B]``, the row of each (``arange(B)``) and the auxiliary loss, from one
        forward pass (used by the long-tail strategies to weight groups)."""
        out = model(batch)
        values = F.binary_cross_entropy_with_logits(out.logits, batch.label, reduction="none")  # [B]
        return values, torch.arange(len(batch), device=values.device), out.aux_loss

    def _scores(self, model: nn.Module, batches: Iterable[Batch]) -> Iterator[tuple[Batch, Tensor]]:
        """(batch, click probability [B]) under inference mode, restoring the model's train flag."""
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for batch in batches:
                    yield batch, torch.sigmoid(model(batch).logits.double())
        finally:
            model.train(was_training)

    def _collect(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, np.ndarray]:
        cols: dict[str, list[Tensor]] = {"index": [], "user": [], "item": [], "label": [], "score": [], "group": []}
        for batch, prob in self._scores(model, batches):
            cols["index"].append(batch.index)
            cols["user"].append(batch.user)
            cols["item"].append(batch.target_item)
            cols["label"].append(batch.label)
            cols["score"].append(prob)
            cols["group"].append(batch.group)
        return {k: (torch.cat(v).cpu().numpy() if v else np.empty(0)) for k, v in cols.items()}

    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict:
        c = self._collect(model, batches)
        return ctr_metrics(c["label"], c["score"], c["user"], c["group"], self.group_names, self.gauc_weight)

    def predict(self, model: nn.Module, batches: Iterable[Batch]) -> pl.DataFrame:
        c = self._collect(model, batches)
        return pl.DataFrame(
            {
                "index": c["index"].astype(np.int64),
                "user": c["user"].astype(np.int64),
                "item": c["item"].astype(np.int64),
                "label": c["label"].astype(np.float32),
                "score": c["score"].astype(np.float64),
            }
        ).sort("index")  # batches may come length-sorted; rows follow the split's sample order

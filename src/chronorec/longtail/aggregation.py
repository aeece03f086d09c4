"""Backdoor-adjusted gradient aggregation (PIN stage one) and the long-tail comparison strategies.

PIN's abstract: user activeness ``z`` confounds what a jointly trained model learns, because
plain joint training weights each group by its *sample* share ``S(z)`` — the head's many behaviors
dominate. Backdoor adjustment replaces that with the intervention distribution

    P(Y | do(X)) = sum_z P(Y | X, z) P(z)   =>   g = sum_z P(z) * grad L_z

where ``L_z`` is the mean loss over the batch's terms of group ``z`` and ``P(z)`` is the group's
*user* share (``weights="users"``; option ``"uniform"``: ``1/K``). Because the gradient is linear,
the step takes the gradient of ``sum_z P(z) L_z``: one forward pass, one backward pass.

Strategies (``LongtailConfig.strategy``):

- ``joint``      the task's own loss (sample-share weighting), the baseline;
- ``pin``        ``sum_z P(z) L_z`` (stage one; stage two adds plugins, :mod:`.plugins`);
- ``reweight``   inverse-frequency re-weighting: every term weighted by ``1 / S(z)`` of its group,
                 normalised, so each group contributes equally regardless of P(z) — the classic
                 re-balancing baseline the paper compares against;
- ``head_only`` / ``tail_only``  train on one group's rows only: the training loader keeps just
                 that group's rows (:func:`chronorec.train.build.train_groups`), and the zero
                 weights here guard any other caller (evaluation still covers all groups).

Groups absent from a batch are left out and the remaining weights renormalised, so the estimate
stays unbiased in expectation over stratified batches. With the next-item task's
``loss_norm="epoch"`` a group's batch mean ``L_z`` becomes its batch *sum* over ``E_z``, the
group's expected number of terms per batch (set by :meth:`GroupAggregatedTask.calibrate` from the
training loader), so a term weighs the same in every batch, as in the plain task; an absent group
then adds nothing and no renormalisation is needed. A term is what the task's loss averages: a
sample (CTR) or a target position (next-item; a row holds up to ``max_len`` of them). The task
offers ``row_losses`` (per-term losses with the batch row each belongs to, CTR) or
``group_losses`` (per-group mean losses and term counts, next-item); tasks with neither fall back
to one forward per group, which assumes one term per batch row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import polars as pl
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import GroupSpec
from chronorec.errors import ChronorecError

Strategy = Literal["joint", "pin", "reweight", "head_only", "tail_only"]


class LongtailConfig(BaseModel):
    """Options of ``chronorec train --longtail ...`` (defaults: the reconstruction in METHODS.md §3)."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy = "joint"
    weights: Literal["users", "uniform"] = Field("users", description="P(z): group user share, or 1/K")
    plugin_epochs: int = Field(5, ge=0, description="stage two: epochs training the per-group plugins")
    plugin_lr: float = Field(1e-3, gt=0)
    finetune_backbone: bool = Field(False, description="stage two: also train the backbone (lr * backbone_lr_scale)")
    backbone_lr_scale: float = Field(0.1, gt=0)
    # set by the trainer for PIN's two phases: "full" = both (the user's choice), "backbone" = stage
    # one, "plugins" = stage two started from the backbone checkpoint ``init_from``
    phase: Literal["full", "backbone", "plugins"] = "full"
    init_from: str | None = None


def group_weights(groups: GroupSpec, mode: Literal["users", "uniform"]) -> list[float]:
    """P(z) per group: the saved user share (``users``) or ``1/K`` (``uniform``)."""
    k = len(groups.names)
    if mode == "uniform" or not groups.user_share:
        return [1.0 / k] * k
    if len(groups.user_share) != k:
        raise ChronorecError(f"dataset schema has {k} group names but {len(groups.user_share)} user shares")
    return [float(s) for s in groups.user_share]


class GroupAggregatedTask:
    """A Task wrapper whose loss weights per-group mean losses by ``weights[z]``.

    ``evaluate`` and ``predict`` delegate to the wrapped task, so every strategy is scored the same way.
    ``sample_share`` (``S(z)``, for ``reweight``) turns the weights into ``w_z / S(z)`` applied per term.
    """

    def __init__(self, inner: object, weights: Sequence[float], *, per_term: bool = False) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "task")
        self.select_metric = inner.select_metric  # type: ignore[attr-defined]
        self.eval_batch_size = inner.eval_batch_size  # type: ignore[attr-defined]
        self.weights = torch.tensor(list(weights), dtype=torch.float64)
        self.per_term = per_term  # True: weights apply to each term (re-weighting), not to group means
        self.terms_per_group: Tensor | None = None  # [K] E_z, loss_norm="epoch" (calibrate)

    def calibrate(self, loader: object) -> None:
        """``loss_norm="epoch"``: the inner task's terms per batch, split by the groups' shares of
        the loader's terms (each row counted by the targets it trains, as the inner task counts)."""
        calibrate = getattr(self.inner, "calibrate", None)
        if calibrate is None:
            return
        calibrate(loader)
        per_batch = getattr(self.inner, "terms_per_batch", None)
        if per_batch is None:
            return
        terms = torch.as_tensor(loader.row_terms(), dtype=torch.float64)  # type: ignore[attr-defined]
        groups = torch.as_tensor(loader.row_groups(), dtype=torch.int64)  # type: ignore[attr-defined]
        share = torch.zeros(len(self.weights), dtype=torch.float64).index_add_(0, groups, terms)
        self.terms_per_group = per_batch * share / share.sum().clamp_min(1.0)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        row_losses = getattr(self.inner, "row_losses", None)
        if row_losses is None:
            if hasattr(self.inner, "group_losses"):
                return self._loss_by_group(model, batch)
            return self._loss_by_select(model, batch)
        values, rows, aux = row_losses(model, batch)  # [N], [N] row of each term
        group = batch.group.to(values.device)[rows]  # [N]
        k = len(self.weights)
        w = self.weights.to(values.device, values.dtype)
        sums = torch.zeros(k, dtype=values.dtype, device=values.device).index_add_(0, group, values)  # [K]
        counts = torch.bincount(group, minlength=k).to(values.dtype)  # [K]
        present = (counts > 0) & (w > 0)
        if not bool(present.any()):
            loss = values.sum() * 0.0  # keeps the graph (and DDP) intact on an all-excluded batch
        elif self.per_term:
            tw = w[group] * present[group]  # [N]
            loss = (tw * values).sum() / tw.sum()
        else:
            means = sums / counts.clamp_min(1)  # [K] L_z
            wz = torch.where(present, w, torch.zeros_like(w))
            loss = (wz * means).sum() / wz.sum()
        return loss if aux is None else loss + aux

    def _loss_by_group(self, model: nn.Module, batch: Batch) -> Tensor:
        """From the task's per-group mean losses ``L_z`` and term counts ``n_z`` (one forward):
        ``sum_z w_z L_z / sum_z w_z`` or, per term, ``sum_z w_z n_z L_z / sum_z w_z n_z``."""
        means, counts, aux = self.inner.group_losses(model, batch, len(self.weights))  # type: ignore[attr-defined]
        w = self.weights.to(means.device, means.dtype)
        n = counts.to(means.device, means.dtype)
        if self.terms_per_group is not None:  # loss_norm="epoch": group sums over E_z, run constants
            e = self.terms_per_group.to(means.device, means.dtype)
            wz = torch.where((w > 0) & (e > 0), w, torch.zeros_like(w))  # [K]
            sums = means * n  # [K]
            if self.per_term:  # sum_z w_z S_z / sum_z w_z E_z
                loss = (wz * sums).sum() / (wz * e).sum()
            else:  # sum_z w_z (S_z / E_z) / sum_z w_z
                loss = (wz * sums / e.clamp_min(1e-12)).sum() / wz.sum()
            return loss if aux is None else loss + aux
        wz = torch.where((n > 0) & (w > 0), w * n if self.per_term else w, torch.zeros_like(w))  # [K]
        loss = (wz * means).sum() / wz.sum() if bool((wz > 0).any()) else means.sum() * 0.0
        return loss if aux is None else loss + aux

    def _loss_by_select(self, model: nn.Module, batch: Batch) -> Tensor:
        total: Tensor | None = None
        wsum = 0.0
        for z, wz in enumerate(self.weights.tolist()):
            rows = (batch.group == z).nonzero().squeeze(1)
            if rows.numel() == 0 or wz == 0:
                continue
            lz = self.inner.loss(model, batch.select(rows))  # type: ignore[attr-defined]
            scale = wz * rows.numel() if self.per_term else wz
            total = lz * scale if total is None else total + lz * scale
            wsum += scale
        if total is None:  # no row of a trained group: a zero loss that keeps the graph (and DDP) intact
            return self.inner.loss(model, batch) * 0.0  # type: ignore[attr-defined]
        return total / wsum

    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict:
        return self.inner.evaluate(model, batches)  # type: ignore[attr-defined]

    def predict(self, model: nn.Module, batches: Iterable[Batch]) -> pl.DataFrame:
        return self.inner.predict(model, batches)  # type: ignore[attr-defined]


def trained_group(strategy: str, n_groups: int) -> int | None:
    """The one group ``head_only`` (the first, most active) or ``tail_only`` (the last) trains
    on; None for the strategies that train on every group."""
    if strategy == "head_only":
        return 0
    if strategy == "tail_only":
        return n_groups - 1
    return None


def strategy_task(inner: object, cfg: LongtailConfig, groups: GroupSpec, sample_share: Sequence[float]) -> object:
    """The training task of a long-tail strategy (``joint`` returns ``inner`` unchanged)."""
    k = len(groups.names)
    if cfg.strategy == "joint":
        return inner
    if cfg.strategy == "pin":
        return GroupAggregatedTask(inner, group_weights(groups, cfg.weights))
    if cfg.strategy == "reweight":
        inv = [1.0 / s if s > 0 else 0.0 for s in sample_share]
        return GroupAggregatedTask(inner, inv, per_term=True)
    only = trained_group(cfg.strategy, k)
    return GroupAggregatedTask(inner, [1.0 if z == only else 0.0 for z in range(k)], per_term=True)

"""Learned semantic-temporal correlation of a trained model (TIN paper §4.3, Eq. (4)-(5), Table 2).

For behavior ``i`` and target ``t`` the learned correlation is::

    Cor~(f(X_i), e_i, v_t) = exp(z_i) * ||r_i||_2                                    (Eq. 4)

with ``z_i`` the pre-softmax target-attention logit and ``r_i`` the representation the model
pools (TIN: ``z = <e~_i, v~_t> / sqrt(d)``, ``r = e~_i ⊙ v~_t``, Eq. 5). Models expose both terms
through :meth:`~chronorec.models.base.CTRModel.explain`; a term a model lacks is ``None`` and its
factor is dropped (Table 2: SASRec has no attention term, TIN w/o TA neither).

Aggregation. The per-behavior values at positions ``1..P`` are averaged per
``(c_t, c, p)`` cell over the **same samples as the ground truth** — every labelled sample of the
chosen splits, positives and negatives (option: positives only). Reasons: Eq. (4) is a function of
``(position, behavior, target)`` alone, not of the label the model never sees; and the ground-truth
MI (Eq. 1) is a property of the whole population of samples with target category ``c_t``, so the
learned curve it is compared with should describe that same population. The mean is over the
behaviors present in the cell (samples with a behavior of category ``c`` at position ``p``).

``exp`` is taken in float64 with logits clamped at 700 (no overflow); Pearson r, the agreement
measure, is invariant to the positive scale of a curve, so no further normalisation is needed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
import torch
from torch import nn

from chronorec.analysis.ctc import cell_keys, cell_sums, target_index
from chronorec.analysis.prepared import PreparedArrays, Samples
from chronorec.data.batch import Batch
from chronorec.errors import ChronorecError

LearnedOn = Literal["all", "positives"]
_MAX_LOGIT = 700.0


def behavior_scores(model: nn.Module, batch: Batch) -> torch.Tensor:
    """``[B, L]`` float64 ``exp(attn_logit) * rep_norm`` (missing factors dropped), NaN at padding."""
    ex = model.explain(batch)
    if ex.attn_logit is None and ex.rep_norm is None:
        raise ChronorecError(f"{type(model).__name__}.explain returned neither attention nor representation")
    val = torch.ones(batch.hist_item.shape, dtype=torch.float64)
    if ex.attn_logit is not None:
        val = val * torch.exp(ex.attn_logit.double().clamp(max=_MAX_LOGIT))
    if ex.rep_norm is not None:
        val = val * ex.rep_norm.double()
    return torch.where(batch.mask, val, torch.full_like(val, float("nan")))


def by_position(values: torch.Tensor, lengths: torch.Tensor, n_positions: int) -> np.ndarray:
    """``[B, P]`` values at positions 1..P of right-padded rows (position p = column len - p)."""
    p = torch.arange(1, n_positions + 1)
    cols = lengths[:, None] - p[None, :]  # [B, P]
    valid = cols >= 0
    out = values.gather(1, cols.clamp(min=0).clamp(max=values.shape[1] - 1))
    return torch.where(valid, out, torch.full_like(out, float("nan"))).numpy()


def learned_values(model: nn.Module, data: PreparedArrays, samples: Samples, n_positions: int,
                   batch_size: int = 1024, max_len: int | None = None) -> np.ndarray:
    """``[N, P]`` learned correlation of each sample's behaviors at positions 1..P (NaN = none).

    Runs ``model.explain`` under :func:`torch.inference_mode` over ``samples`` in batches; samples
    with an empty history are not run (they have no behavior to score).
    """
    out = np.full((len(samples), n_positions), np.nan)
    nonempty = np.flatnonzero(samples.hist_len > 0)
    sub = samples.take(nonempty)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for idx, batch in data.iter_batches(sub, batch_size=batch_size, max_len=max_len):
                out[nonempty[idx]] = by_position(behavior_scores(model, batch), batch.lengths, n_positions)
    finally:
        model.train(was_training)
    return out


def predict_scores(model: nn.Module, data: PreparedArrays, samples: Samples, batch_size: int = 2048,
                   max_len: int | None = None) -> np.ndarray:
    """``[N]`` click probabilities ``sigmoid(logit)`` of the samples (for per-bucket GAUC)."""
    out = np.empty(len(samples))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for idx, batch in data.iter_batches(samples, batch_size=batch_size, max_len=max_len):
                out[idx] = torch.sigmoid(model(batch).logits.double()).numpy()
    finally:
        model.train(was_training)
    return out


def learned_table(target_cat: np.ndarray, label: np.ndarray, pos_cat: np.ndarray, values: np.ndarray,
                  targets: np.ndarray, n_categories: int, on: LearnedOn = "all") -> pl.DataFrame:
    """Mean learned correlation per non-empty ``(c_t, c, p)`` cell.

    Returns columns ``target_category, category, position, learned, n`` (``n`` behaviors averaged).
    """
    P = pos_cat.shape[1]
    K = targets.shape[0]
    tidx = target_index(target_cat, targets)
    if on == "positives":
        tidx = np.where(label > 0.5, tidx, -1)
    keys, valid = cell_keys(tidx, pos_cat, n_categories)
    valid &= ~np.isnan(values)  # positions beyond a model's max_len window carry no value
    uniq, counts, sums = cell_sums(keys[valid], K * n_categories * P, values[valid])
    t = uniq // (n_categories * P)
    return pl.DataFrame({
        "target_category": targets[t].astype(np.int32),
        "category": ((uniq // P) % n_categories).astype(np.int32),
        "position": (uniq % P + 1).astype(np.int16),
        "learned": sums / counts,
        "n": counts.astype(np.int64),
    })

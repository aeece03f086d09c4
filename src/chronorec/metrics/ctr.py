"""Pointwise click-prediction metrics: logloss, AUC and GAUC, vectorised over whole splits.

All functions take flat arrays (numpy or torch, any numeric dtype) and return Python floats.
Nothing loops over users in Python: per-user quantities come from one lexicographic sort and
segment reductions (``np.add.reduceat``), so a split of millions of samples costs a few sorts.

Formulas (``y`` labels in {0, 1}, ``p`` predicted click probabilities, ``s`` any scores):

* **logloss** ``= -1/n * sum_j [ y_j log p'_j + (1 - y_j) log(1 - p'_j) ]`` with
  ``p' = clip(p, eps, 1 - eps)`` so a confident mistake costs ``-log(eps)``, not infinity.
* **AUC** (Mann-Whitney) ``= (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-)`` where ``R_+`` is the sum of
  the ranks (1-based, ascending score) of the positives and tied scores share their average rank.
  Equivalently the probability that a random positive outscores a random negative, ties counted ½.
* **GAUC** ``= sum_u w_u AUC_u / sum_u w_u`` over the users ``u`` having both a positive and a
  negative (others are excluded, as in DIN). Weights ``w_u``: ``"impressions"`` (DIN's default,
  ``n_u`` samples of the user), ``"clicks"`` (positives of the user) or ``"uniform"`` (1).
  With one positive and one negative per user, ``AUC_u`` is 1, ½ or 0 as the positive scores
  above, level with or below the negative.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

GaucWeight = Literal["impressions", "clicks", "uniform"]
_WEIGHTS = ("impressions", "clicks", "uniform")


def _np(x: Any, dtype: Any = None) -> np.ndarray:
    """A 1-d numpy view of a numpy array, torch tensor or sequence."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr.reshape(-1)


def _check(labels: np.ndarray, scores: np.ndarray) -> None:
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length: {labels.shape[0]} vs {scores.shape[0]}")
    if labels.size and not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")


def logloss(labels: Any, probs: Any, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities ``probs`` clipped to ``[eps, 1 - eps]``."""
    y = _np(labels, np.float64)
    p = _np(probs, np.float64)
    _check(y, p)
    if y.size == 0:
        return float("nan")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def _tie_ranks(starts_new: np.ndarray) -> np.ndarray:
    """Average 1-based ranks of sorted data; ``starts_new[j]`` marks the first element of a tie run.

    Position j has rank j + 1; a tie run covering positions a..b shares rank (a + b) / 2 + 1.
    """
    n = starts_new.shape[0]
    run_start = np.flatnonzero(starts_new)
    run_end = np.append(run_start[1:], n) - 1
    run_rank = (run_start + run_end) / 2.0 + 1.0
    return np.repeat(run_rank, run_end - run_start + 1)


def auc(labels: Any, scores: Any) -> float:
    """ROC AUC via average ranks (ties count ½). NaN when only one class is present."""
    y = _np(labels, np.float64)
    s = _np(scores, np.float64)
    _check(y, s)
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    new[1:] = s_sorted[1:] != s_sorted[:-1]
    ranks = _tie_ranks(new)
    r_pos = float(ranks[y[order] == 1].sum())
    return (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def per_user_auc(labels: Any, scores: Any, users: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-user AUC in one pass.

    Returns ``(user_ids, auc_u, n_pos_u, n_u)`` for every distinct user (sorted by id); ``auc_u`` is
    NaN for users with a single class.
    """
    y = _np(labels, np.float64)
    s = _np(scores, np.float64)
    u = _np(users)
    _check(y, s)
    if u.shape != y.shape:
        raise ValueError(f"users and labels differ in length: {u.shape[0]} vs {y.shape[0]}")
    if y.size == 0:
        empty = np.empty(0)
        return u[:0], empty, empty, empty
    order = np.lexsort((s, u))  # by user, then score
    u_s, s_s, y_s = u[order], s[order], y[order]
    user_new = np.empty(y.size, dtype=bool)
    user_new[0] = True
    user_new[1:] = u_s[1:] != u_s[:-1]
    tie_new = user_new.copy()
    tie_new[1:] |= s_s[1:] != s_s[:-1]
    global_rank = _tie_ranks(tie_new)  # ranks over the whole sorted array
    user_start = np.flatnonzero(user_new)
    n_u = np.diff(np.append(user_start, y.size)).astype(np.float64)
    # rank within the user = global rank - (user's first position)
    offset = np.repeat(user_start.astype(np.float64), n_u.astype(np.int64))
    local_rank = global_rank - offset
    n_pos = np.add.reduceat(y_s, user_start)
    r_pos = np.add.reduceat(local_rank * y_s, user_start)
    n_neg = n_u - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc_u = (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    auc_u[(n_pos == 0) | (n_neg == 0)] = np.nan
    return u_s[user_start], auc_u, n_pos, n_u


def gauc(labels: Any, scores: Any, users: Any, weight: GaucWeight = "impressions") -> float:
    """Group AUC: the ``weight``-weighted mean of per-user AUC over users with both classes."""
    if weight not in _WEIGHTS:
        raise ValueError(f"weight must be one of {_WEIGHTS}, got {weight!r}")
    _, auc_u, n_pos, n_u = per_user_auc(labels, scores, users)
    valid = ~np.isnan(auc_u)
    if not valid.any():
        return float("nan")
    if weight == "impressions":
        w = n_u[valid]
    elif weight == "clicks":
        w = n_pos[valid]
    else:
        w = np.ones(int(valid.sum()))
    return float(np.sum(w * auc_u[valid]) / np.sum(w))


def ctr_metrics(
    labels: Any,
    probs: Any,
    users: Any,
    groups: Any | None = None,
    group_names: list[str] | None = None,
    weight: GaucWeight = "impressions",
) -> dict[str, Any]:
    """``{"gauc", "auc", "logloss", "n"}`` over all samples, plus ``"groups": {name: {...}}``.

    ``groups`` holds each sample's group index into ``group_names`` (PIN's activity groups); a group
    without samples is reported with ``n = 0`` and NaN metrics.
    """
    y = _np(labels, np.float64)
    p = _np(probs, np.float64)
    u = _np(users)
    out: dict[str, Any] = {
        "gauc": gauc(y, p, u, weight),
        "auc": auc(y, p),
        "logloss": logloss(y, p),
        "n": int(y.size),
    }
    if groups is not None and group_names:
        g = _np(groups)
        out["groups"] = {}
        for k, name in enumerate(group_names):
            sel = g == k
            out["groups"][name] = {
                "gauc": gauc(y[sel], p[sel], u[sel], weight),
                "auc": auc(y[sel], p[sel]),
                "logloss": logloss(y[sel], p[sel]),
                "n": int(sel.sum()),
            }
    return out

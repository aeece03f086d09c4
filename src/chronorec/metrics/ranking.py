"""Full-ranking next-item metrics, as pure functions of a rank vector.

One target per sample; ``rank_u`` is the 1-based position of the target among the candidate items
(all items except padding id 0 and any excluded ones). Ties are ranked **pessimistically**:

    rank_u = 1 + #{i candidate : s_i > s_t} + #{i candidate, i != t : s_i == s_t}

so a model that scores everything alike gets the worst rank, not the best. Metrics @K, averaged
over samples (``[.]`` is 1 when true, 0 otherwise):

* **HIT@K**  ``= mean_u [rank_u <= K]`` — the target is in the top K (= recall@K with one target).
* **NDCG@K** ``= mean_u [rank_u <= K] / log2(rank_u + 1)`` — with one relevant item the ideal DCG is 1.
* **MRR@K**  ``= mean_u [rank_u <= K] / rank_u`` — reciprocal rank, 0 beyond the cut-off.

Keys are ``"hit@10"``, ``"ndcg@10"``, ``"mrr@10"``; a ranking protocol other than plain full ranking
names its option in a key suffix, e.g. ``"ndcg@10_exclude_seen"`` for ``exclude_seen=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_KS: tuple[int, ...] = (5, 10, 20, 50)


def ranks_from_scores(scores: Tensor, target: Tensor, exclude: Tensor | None = None) -> Tensor:
    """Pessimistic 1-based rank of ``target [B]`` among the columns of ``scores [B, N]``.

    Column 0 (padding) never counts; ``exclude [B, N]`` bool removes further candidates (e.g. items
    the user has seen). The target itself is always a candidate, even if ``exclude`` marks it.
    Returns ``[B]`` int64.

    >>> ranks_from_scores(torch.tensor([[9.0, 0.5, 0.7, 0.5, 0.1]]), torch.tensor([1]))
    tensor([3])
    """
    if scores.dim() != 2 or target.shape != scores.shape[:1]:
        raise ValueError(f"scores must be [B, N] and target [B]; got {tuple(scores.shape)}, {tuple(target.shape)}")
    s_t = scores.gather(1, target[:, None])  # [B, 1]
    beats = scores >= s_t  # [B, N]: strictly higher, or tied (the target itself included)
    beats[:, 0] = False  # padding is never a candidate
    if exclude is not None:
        beats &= ~exclude
    # the target ties with itself; count it once as the rank's "1 +", whatever exclude says
    beats.scatter_(1, target[:, None], True)
    return beats.sum(dim=1)  # [B]


def row_gains(ranks: Tensor, metric: str, k: int) -> Tensor:
    """``[B]`` float64 per-sample values whose mean is ``metric@k`` (``"hit"``, ``"ndcg"``, ``"mrr"``):
    what paired comparisons of two rankers resample (``benchmarks/compare_ranks.py``)."""
    r = ranks.double()
    inside = r <= k
    if metric == "hit":
        return inside.double()
    if metric == "ndcg":
        return torch.where(inside, 1.0 / torch.log2(r + 1.0), torch.zeros_like(r))
    if metric == "mrr":
        return torch.where(inside, 1.0 / r, torch.zeros_like(r))
    raise ValueError(f"unknown ranking metric {metric!r}; choose hit, ndcg or mrr")


def _mean_gain(ranks: Tensor, metric: str, k: int) -> float:
    return float(row_gains(ranks, metric, k).mean()) if ranks.numel() else float("nan")


def hit_at(ranks: Tensor, k: int) -> float:
    """HIT@K ``= mean [rank <= K]``."""
    return _mean_gain(ranks, "hit", k)


def ndcg_at(ranks: Tensor, k: int) -> float:
    """NDCG@K ``= mean [rank <= K] / log2(rank + 1)``."""
    return _mean_gain(ranks, "ndcg", k)


def mrr_at(ranks: Tensor, k: int) -> float:
    """MRR@K ``= mean [rank <= K] / rank``."""
    return _mean_gain(ranks, "mrr", k)


def ranking_metrics(ranks: Tensor, ks: Sequence[int] = DEFAULT_KS, suffix: str = "") -> dict[str, float]:
    """``{"hit@K<suffix>": .., "ndcg@K<suffix>": .., "mrr@K<suffix>": ..}`` for every K in ``ks``."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit@{k}{suffix}"] = hit_at(ranks, k)
        out[f"ndcg@{k}{suffix}"] = ndcg_at(ranks, k)
        out[f"mrr@{k}{suffix}"] = mrr_at(ranks, k)
    return out

"""Evaluation metrics: pointwise CTR metrics (:mod:`.ctr`) and full-ranking metrics (:mod:`.ranking`)."""

from chronorec.metrics.ctr import auc, ctr_metrics, gauc, logloss, per_user_auc
from chronorec.metrics.ranking import hit_at, mrr_at, ndcg_at, ranking_metrics, ranks_from_scores

__all__ = [
    "auc", "ctr_metrics", "gauc", "hit_at", "logloss", "mrr_at", "ndcg_at", "per_user_auc", "ranking_metrics",
    "ranks_from_scores",
]

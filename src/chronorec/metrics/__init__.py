"""Evaluation metrics: pointwise CTR metrics (:mod:`.ctr`) and full-ranking metrics (:mod:`.ranking`)."""

from chronorec.metrics.ctr import auc, ctr_metrics, gauc, logloss, per_user_auc

__all__ = ["auc", "ctr_metrics", "gauc", "logloss", "per_user_auc"]

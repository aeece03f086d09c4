"""CTR metrics: hand-computed cases and a cross-check against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from chronorec.metrics.ctr import auc, ctr_metrics, gauc, logloss, per_user_auc


def test_auc_hand_computed_with_ties() -> None:
    # positives 0.8, 0.4; negatives 0.4, 0.1 -> pairs: (0.8>0.4)=1, (0.8>0.1)=1, (0.4=0.4)=.5, (0.4>0.1)=1
    assert auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)


def test_auc_perfect_reversed_and_all_tied() -> None:
    assert auc([0, 0, 1], [0.1, 0.2, 0.3]) == 1.0
    assert auc([1, 1, 0], [0.1, 0.2, 0.3]) == 0.0
    assert auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_auc_single_class_is_nan() -> None:
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def test_logloss_hand_computed_and_clipped() -> None:
    expected = -(math.log(0.9) + math.log(1 - 0.2)) / 2
    assert logloss([1, 0], [0.9, 0.2]) == pytest.approx(expected)
    # a certain mistake costs -log(eps), not infinity
    assert logloss([1], [0.0], eps=1e-7) == pytest.approx(-math.log(1e-7))


def test_gauc_one_pos_one_neg_per_user() -> None:
    users = [5, 5, 7, 7, 9, 9]
    labels = [1, 0, 1, 0, 0, 1]
    # user 5: pos above neg -> 1; user 7: tie -> .5; user 9: pos below neg -> 0
    scores = [0.9, 0.1, 0.3, 0.3, 0.6, 0.2]
    assert gauc(labels, scores, users) == pytest.approx((1 + 0.5 + 0) / 3)
    for w in ("impressions", "clicks", "uniform"):
        assert gauc(labels, scores, users, weight=w) == pytest.approx(0.5)


def test_gauc_weights_and_single_class_users_excluded() -> None:
    # user 1: pos .5 vs negs .7, .2 -> AUC 1/2 (3 impressions, 1 click)
    # user 2: pos .9, .8 vs neg .5 -> AUC 1 (3 impressions, 2 clicks)
    # user 3: only a positive -> excluded
    users = [1, 1, 1, 2, 2, 2, 3]
    labels = [1, 0, 0, 1, 1, 0, 1]
    scores = [0.5, 0.7, 0.2, 0.9, 0.8, 0.5, 0.4]
    assert gauc(labels, scores, users, "impressions") == pytest.approx((3 * 0.5 + 3 * 1.0) / 6)
    assert gauc(labels, scores, users, "clicks") == pytest.approx((1 * 0.5 + 2 * 1.0) / 3)
    assert gauc(labels, scores, users, "uniform") == pytest.approx(0.75)
    ids, auc_u, n_pos, n_u = per_user_auc(labels, scores, users)
    assert ids.tolist() == [1, 2, 3]
    assert auc_u[:2].tolist() == [0.5, 1.0] and math.isnan(auc_u[2])
    assert n_pos.tolist() == [1, 2, 1] and n_u.tolist() == [3, 3, 1]


def test_gauc_no_valid_user_is_nan_and_bad_weight_raises() -> None:
    assert math.isnan(gauc([1, 1], [0.1, 0.2], [1, 2]))
    with pytest.raises(ValueError):
        gauc([1, 0], [0.1, 0.2], [1, 1], weight="sessions")  # type: ignore[arg-type]


def test_inputs_accept_torch_and_reject_bad_labels() -> None:
    assert auc(torch.tensor([0.0, 1.0]), torch.tensor([0.1, 0.9])) == 1.0
    with pytest.raises(ValueError):
        auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        auc([0, 1], [0.1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_check_against_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    users = rng.integers(0, 200, n)
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, 20, n) / 20.0  # coarse scores -> many ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    probs = np.clip(scores, 0.01, 0.99)
    assert logloss(labels, probs) == pytest.approx(log_loss(labels, probs), abs=1e-12)

    # reference GAUC: a per-user loop with sklearn
    num = {"impressions": 0.0, "clicks": 0.0, "uniform": 0.0}
    den = dict.fromkeys(num, 0.0)
    for u in np.unique(users):
        sel = users == u
        y, s = labels[sel], scores[sel]
        if y.min() == y.max():
            continue
        a = roc_auc_score(y, s)
        for w, wt in (("impressions", sel.sum()), ("clicks", y.sum()), ("uniform", 1)):
            num[w] += wt * a
            den[w] += wt
    for w in num:
        assert gauc(labels, scores, users, w) == pytest.approx(num[w] / den[w], abs=1e-12)


def test_ctr_metrics_groups() -> None:
    labels = np.array([1, 0, 1, 0])
    probs = np.array([0.9, 0.1, 0.2, 0.8])
    users = np.array([1, 1, 2, 2])
    groups = np.array([0, 0, 1, 1])
    m = ctr_metrics(labels, probs, users, groups, ["head", "tail", "empty"])
    assert m["gauc"] == pytest.approx(0.5) and m["n"] == 4
    assert m["groups"]["head"]["gauc"] == 1.0 and m["groups"]["tail"]["auc"] == 0.0
    assert m["groups"]["empty"]["n"] == 0 and math.isnan(m["groups"]["empty"]["auc"])

"""Full-ranking metrics: hand-computed cases and a brute-force numpy oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chronorec.metrics.ranking import hit_at, mrr_at, ndcg_at, ranking_metrics, ranks_from_scores, row_gains


def test_rank_strictly_higher_and_ties_pessimistic() -> None:
    # item 0 is padding (its 9.0 must not count); target 2 scores 0.5, item 3 beats it, 1 and 4 tie
    scores = torch.tensor([[9.0, 0.5, 0.5, 0.7, 0.5, 0.1]])
    assert ranks_from_scores(scores, torch.tensor([2])).tolist() == [4]  # 1 + 1 higher + 2 tied
    assert ranks_from_scores(scores, torch.tensor([3])).tolist() == [1]
    assert ranks_from_scores(scores, torch.tensor([5])).tolist() == [5]


def test_all_equal_scores_rank_last() -> None:
    scores = torch.zeros(2, 11)
    assert ranks_from_scores(scores, torch.tensor([3, 10])).tolist() == [10, 10]


def test_exclude_removes_candidates_but_never_the_target() -> None:
    scores = torch.tensor([[0.0, 0.9, 0.8, 0.7, 0.6]])
    target = torch.tensor([3])
    assert ranks_from_scores(scores, target).tolist() == [3]
    excl = torch.tensor([[False, True, False, True, False]])  # excludes item 1 and the target itself
    assert ranks_from_scores(scores, target, exclude=excl).tolist() == [2]


def test_neg_inf_columns_do_not_count_unless_target_is_there() -> None:
    scores = torch.tensor([[float("-inf"), float("-inf"), 0.3, 0.1]])
    assert ranks_from_scores(scores, torch.tensor([3])).tolist() == [2]


def test_metrics_hand_values() -> None:
    ranks = torch.tensor([1, 2, 3, 11])
    assert hit_at(ranks, 10) == pytest.approx(3 / 4)
    assert hit_at(ranks, 2) == pytest.approx(2 / 4)
    assert ndcg_at(ranks, 10) == pytest.approx((1 + 1 / math.log2(3) + 1 / 2 + 0) / 4)
    assert mrr_at(ranks, 10) == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)
    assert mrr_at(ranks, 20) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 11) / 4)
    assert math.isnan(hit_at(torch.empty(0, dtype=torch.long), 10))


def test_metric_keys_and_suffix() -> None:
    m = ranking_metrics(torch.tensor([1, 60]), ks=(5, 50), suffix="_exclude_seen")
    assert set(m) == {f"{n}@{k}_exclude_seen" for n in ("hit", "ndcg", "mrr") for k in (5, 50)}
    assert m["hit@50_exclude_seen"] == 0.5 and m["ndcg@5_exclude_seen"] == 0.5
    assert set(ranking_metrics(torch.tensor([1]))) == {
        f"{n}@{k}" for n in ("hit", "ndcg", "mrr") for k in (5, 10, 20, 50)
    }


def _oracle(scores: np.ndarray, target: np.ndarray, exclude: np.ndarray) -> tuple[np.ndarray, dict]:
    ranks = []
    for s, t, ex in zip(scores, target, exclude, strict=True):
        cands = [i for i in range(1, len(s)) if (not ex[i] or i == t)]
        order = sorted(cands, key=lambda i: (-s[i], i == t))  # ties: target after the others
        ranks.append(order.index(t) + 1)
    r = np.array(ranks)
    m = {}
    for k in (5, 10, 20):
        m[f"hit@{k}"] = np.mean(r <= k)
        m[f"ndcg@{k}"] = np.mean(np.where(r <= k, 1 / np.log2(r + 1), 0))
        m[f"mrr@{k}"] = np.mean(np.where(r <= k, 1 / r, 0))
    return r, m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_brute_force_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    B, N = 40, 30
    scores = rng.integers(0, 6, (B, N)).astype(np.float32)  # few distinct values: many ties
    target = rng.integers(1, N, B)
    exclude = rng.random((B, N)) < 0.3
    r_exp, m_exp = _oracle(scores, target, exclude)
    r = ranks_from_scores(torch.from_numpy(scores), torch.from_numpy(target), torch.from_numpy(exclude))
    assert r.tolist() == r_exp.tolist()
    m = ranking_metrics(r, ks=(5, 10, 20))
    for key, v in m_exp.items():
        assert m[key] == pytest.approx(v)
    no_ex = np.zeros_like(exclude)
    r_exp2, _ = _oracle(scores, target, no_ex)
    assert ranks_from_scores(torch.from_numpy(scores), torch.from_numpy(target)).tolist() == r_exp2.tolist()


def test_row_gains_are_the_per_sample_terms_of_the_means() -> None:
    ranks = torch.tensor([1, 3, 10, 11])
    assert row_gains(ranks, "hit", 10).tolist() == [1.0, 1.0, 1.0, 0.0]
    assert row_gains(ranks, "mrr", 10).tolist() == pytest.approx([1.0, 1 / 3, 0.1, 0.0])
    assert row_gains(ranks, "ndcg", 10).tolist() == pytest.approx([1.0, 0.5, 1 / math.log2(11), 0.0])
    for name, fn in (("hit", hit_at), ("ndcg", ndcg_at), ("mrr", mrr_at)):
        assert float(row_gains(ranks, name, 5).mean()) == pytest.approx(fn(ranks, 5))
    with pytest.raises(ValueError, match="unknown ranking metric 'map'"):
        row_gains(ranks, "map", 10)

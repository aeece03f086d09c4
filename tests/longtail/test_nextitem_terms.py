"""Long-tail strategies on next-item data weight *terms* (target positions), not batch rows.

A next-item training row holds up to ``max_len`` targets, so per-term re-weighting (``reweight``:
``sum_t w_z(t) l_t / sum_t w_z(t)``) and the sample share ``S(z)`` it inverts must count target
positions: a training sequence of length n has n - 1 of them (its first event predicts nothing).
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chronorec.data.batch import synthetic_batch
from chronorec.data.schema import FIRST_ID, DatasetSchema
from chronorec.longtail import GroupAggregatedTask
from chronorec.models.registry import create_model
from chronorec.train.build import train_sample_share
from chronorec.train.nextitem_task import NextItemTask


def _setup() -> tuple[torch.nn.Module, object, torch.Tensor, torch.Tensor]:
    """A dropout-free SASRec and a batch: row 0 (head) has 8 targets, row 1 (tail) 2.
    Returns the model, the batch, the per-term cross-entropies and each term's group."""
    torch.manual_seed(0)
    schema = DatasetSchema(name="t", protocol="next-item-last-out", task="next_item", n_users=10,
                           n_items=48, n_events=100, vocab_sizes={"user": 12, "item": 50}, max_history_len=8)
    model = create_model("sasrec", schema, {"dim": 8, "max_len": 8, "dropout": 0.0}).eval()
    b = synthetic_batch(batch_size=2, max_len=8, next_item=True, side_vocab={}, seed=1)
    lengths = torch.tensor([8, 2])
    mask = torch.arange(8)[None] < lengths[:, None]
    b = replace(b, lengths=lengths, mask=mask, hist_item=b.hist_item * mask, target_item=b.target_item * mask,
                hist_gap=torch.where(mask, b.hist_gap, -1), hist_ts=b.hist_ts * mask, group=torch.tensor([0, 1]))
    with torch.no_grad():
        h, W = model(b).logits, model.item_weights()
        real = b.target_item >= FIRST_ID
        z = h[real] @ W.T
        z[:, :FIRST_ID] = float("-inf")
        terms = F.cross_entropy(z, b.target_item[real], reduction="none")  # [10]
    group = b.group[:, None].expand_as(b.target_item)[real]
    assert torch.bincount(group).tolist() == [8, 2]
    return model, b, terms, group


def test_reweight_weights_each_target_position() -> None:
    model, batch, terms, group = _setup()
    w = torch.tensor([1.0, 3.0])  # per-term weights, e.g. 1 / S(z)
    expected = float((w[group] * terms).sum() / w[group].sum())  # (8 L_head + 6 L_tail) / 14
    got = GroupAggregatedTask(NextItemTask(50), w.tolist(), per_term=True).loss(model, batch).item()
    # weighting rows instead of terms gave (1 L_head + 3 L_tail) / 4
    assert got == pytest.approx(expected, rel=1e-5)


def test_pin_weights_group_means_and_backprops_once() -> None:
    model, batch, terms, group = _setup()
    pz = [0.8, 0.2]
    expected = pz[0] * float(terms[group == 0].mean()) + pz[1] * float(terms[group == 1].mean())
    loss = GroupAggregatedTask(NextItemTask(50), pz).loss(model, batch)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert model.item_emb.weight.grad is not None


def test_group_losses_without_terms_of_a_group() -> None:
    model, batch, terms, _ = _setup()
    batch = replace(batch, group=torch.tensor([0, 0]))
    means, counts, aux = NextItemTask(50).group_losses(model, batch, 2)
    assert counts.tolist() == [10, 0] and aux is None
    assert means[0].item() == pytest.approx(float(terms.mean()), rel=1e-5) and means[1].item() == 0.0
    loss = GroupAggregatedTask(NextItemTask(50), [0.5, 0.5], per_term=True).loss(model, batch)
    assert loss.item() == pytest.approx(float(terms.mean()), rel=1e-5)


def test_sample_share_counts_target_positions() -> None:
    # one head sequence of 100 events (99 targets), four tail sequences of 2 (1 target each)
    start, end = np.array([0, 100, 102, 104, 106]), np.array([100, 102, 104, 106, 108])
    ds = SimpleNamespace(
        samples=lambda split: {"user": np.array([2, 3, 4, 5, 6]), "hist_start": start, "hist_end": end},
        group_of_user=np.array([0, 0, 0, 1, 1, 1, 1]),
        schema=SimpleNamespace(task="next_item", groups=SimpleNamespace(names=["head", "tail"])),
    )
    assert train_sample_share(ds) == pytest.approx([99 / 103, 4 / 103])  # was [100/108, 8/108]


@pytest.mark.parametrize("per_term", [False, True])
def test_epoch_norm_weights_group_sums_by_expected_terms(per_term: bool) -> None:
    """loss_norm="epoch" under a strategy: group z's batch sum S_z over E_z, its expected terms per
    batch (calibrated: terms per batch x the group's share of the loader's terms), so a batch's loss
    does not depend on how many terms it happens to hold; an absent group adds nothing."""
    model, batch, terms, group = _setup()
    task = NextItemTask(50, loss_norm="epoch")
    w = [0.8, 0.2] if not per_term else [1.0, 3.0]
    agg = GroupAggregatedTask(task, w, per_term=per_term)
    # 3 rows of lengths 6, 6, 3: head rows (group 0) hold 12 of 15 terms; batch 4 -> 20 terms per batch
    loader = SimpleNamespace(row_terms=lambda: np.array([6, 6, 3]), batch_size=4, row_groups=lambda: np.array([0, 0, 1]))
    agg.calibrate(loader)
    assert task.terms_per_batch == 20.0
    torch.testing.assert_close(agg.terms_per_group, torch.tensor([16.0, 4.0], dtype=torch.float64))
    s = [float(terms[group == z].sum()) for z in (0, 1)]
    if per_term:
        expected = (1.0 * s[0] + 3.0 * s[1]) / (1.0 * 16 + 3.0 * 4)
    else:
        expected = (0.8 * s[0] / 16 + 0.2 * s[1] / 4) / 1.0
    loss = agg.loss(model, batch)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert model.item_emb.weight.grad is not None
    # equal weights per term reduce to the plain task's epoch loss
    plain = GroupAggregatedTask(task, [1.0, 1.0], per_term=True)
    plain.calibrate(loader)
    assert plain.loss(model, batch).item() == pytest.approx(task.loss(model, batch).item(), rel=1e-5)
    # a batch without tail terms: the head's sum over E_head, nothing renormalised
    head = replace(batch, group=torch.tensor([0, 0]))
    got = agg.loss(model, head).item()
    total = float(terms.sum())
    assert got == pytest.approx(total / (16 + 3.0 * 4) if per_term else 0.8 * total / 16, rel=1e-5)

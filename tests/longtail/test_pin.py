"""PIN reconstruction: gradient aggregation equals the P(z)-weighted sum of per-group gradients;
plugins start at the shared model and route rows by group."""

from __future__ import annotations

import pytest
import torch

from chronorec.data.batch import synthetic_batch
from chronorec.data.schema import DatasetSchema, GroupSpec
from chronorec.longtail import GroupAggregatedTask, LongtailConfig, PluginModel, group_weights
from chronorec.longtail.aggregation import strategy_task
from chronorec.models.registry import create_model
from chronorec.train.ctr_task import CTRTask


def _schema(task: str = "ctr") -> DatasetSchema:
    return DatasetSchema(
        name="toy", protocol="ctr-leave-one-out" if task == "ctr" else "next-item-last-out", task=task,
        n_users=20, n_items=48, n_events=200, vocab_sizes={"user": 22, "item": 50, "category": 7},
        side_features=["category"], bin_edges={"interval": [3600.0, 86400.0, 7 * 86400.0], "gap": [60.0, 3600.0]},
        max_history_len=12, groups=GroupSpec(names=["head", "tail"], thresholds=[10], user_share=[0.2, 0.8]),
    )


def _grads(model: torch.nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


def test_aggregated_gradient_is_weighted_sum_of_group_gradients() -> None:
    torch.manual_seed(0)
    model = create_model("din", _schema(), {"dim": 8, "mlp": [16]})
    batch = synthetic_batch(batch_size=32, max_len=12, n_items=50, seed=3)
    batch.group = torch.arange(32) % 2  # both groups present, unequal sizes don't matter
    inner = CTRTask(["head", "tail"])
    pz = [0.2, 0.8]
    agg = _grads(model, GroupAggregatedTask(inner, pz).loss(model, batch))
    per_group = []
    for z in range(2):
        rows = (batch.group == z).nonzero().squeeze(1)
        per_group.append(_grads(model, inner.loss(model, batch.select(rows))))
    expected = [pz[0] * g0 + pz[1] * g1 for g0, g1 in zip(*per_group, strict=True)]
    for a, e in zip(agg, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-7)
    # and it differs from plain joint training (sample share 1/2 each here), so the weights matter
    joint = _grads(model, inner.loss(model, batch))
    assert any(not torch.allclose(a, j, atol=1e-6) for a, j in zip(agg, joint, strict=True))


def test_strategies_weights() -> None:
    groups = _schema().groups
    assert group_weights(groups, "users") == [0.2, 0.8]
    assert group_weights(groups, "uniform") == [0.5, 0.5]
    inner = CTRTask(["head", "tail"])
    assert strategy_task(inner, LongtailConfig(strategy="joint"), groups, [0.6, 0.4]) is inner
    rw = strategy_task(inner, LongtailConfig(strategy="reweight"), groups, [0.6, 0.4])
    assert isinstance(rw, GroupAggregatedTask) and rw.per_term
    torch.testing.assert_close(rw.weights, torch.tensor([1 / 0.6, 1 / 0.4], dtype=torch.float64))
    tail = strategy_task(inner, LongtailConfig(strategy="tail_only"), groups, [0.6, 0.4])
    assert tail.weights.tolist() == [0.0, 1.0]


def test_tail_only_loss_ignores_head_rows() -> None:
    torch.manual_seed(0)
    model = create_model("tin", _schema(), {"dim": 8})
    batch = synthetic_batch(batch_size=16, max_len=12, n_items=50, seed=1)
    batch.group = (torch.arange(16) >= 5).long()
    inner = CTRTask(["head", "tail"])
    task = strategy_task(inner, LongtailConfig(strategy="tail_only"), _schema().groups, [0.5, 0.5])
    rows = (batch.group == 1).nonzero().squeeze(1)
    torch.testing.assert_close(task.loss(model, batch), inner.loss(model, batch.select(rows)))


@pytest.mark.parametrize("name", ["tin", "din", "sasrec"])
def test_plugins_start_at_shared_model_and_route_by_group(name: str) -> None:
    torch.manual_seed(0)
    task = "next_item" if name == "sasrec" else "ctr"
    base = create_model(name, _schema(task), {"dim": 8})
    base.eval()
    model = PluginModel(base, n_groups=2).eval()
    batch = synthetic_batch(batch_size=10, max_len=12, n_items=50, seed=2, next_item=task == "next_item")
    batch.group = (torch.arange(10) >= 4).long()
    with torch.no_grad():
        torch.testing.assert_close(model(batch).logits, base(batch).logits)
        # perturb the tail plugin: only tail rows change
        for p in (model.plugins[1] if model.plugins is not None else model.adapters[1]).parameters():
            p.add_(0.5)
        out = model(batch).logits
        ref = base(batch).logits
    head, tail = batch.group == 0, batch.group == 1
    torch.testing.assert_close(out[head], ref[head])
    assert not torch.allclose(out[tail], ref[tail])
    # stage two trains the plugins only; the backbone can be frozen by its parameters
    n_plugin = sum(p.numel() for p in model.plugin_parameters())
    assert 0 < n_plugin < sum(p.numel() for p in model.parameters())

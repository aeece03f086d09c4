"""Target attention: masking, empty rows, DIN's algebraic split, pooling; MLP and embedding layers."""

from __future__ import annotations

import math

import pytest
import torch

from chronorec.data.batch import synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.attention import (
    ActivationUnit,
    attention_pool,
    dot_attention_logits,
    masked_mean,
    masked_softmax,
    mean_weights,
)
from chronorec.layers.embedding import FeatureEmbedding
from chronorec.layers.fused import gather_rows
from chronorec.layers.mlp import MLP, Dice


def _mask(lengths: list[int], L: int) -> torch.Tensor:
    return torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]


def test_masked_softmax_ignores_padding_and_zeroes_empty_rows() -> None:
    logits = torch.tensor([[1.0, 2.0, 50.0], [0.5, -1.0, 3.0], [7.0, 8.0, 9.0]])
    mask = _mask([2, 3, 0], 3)
    w = masked_softmax(logits, mask)
    torch.testing.assert_close(w[0, :2], torch.softmax(torch.tensor([1.0, 2.0]), 0))
    assert w[0, 2] == 0  # a huge logit in the padding changes nothing
    torch.testing.assert_close(w[1], torch.softmax(logits[1], 0))
    assert (w[2] == 0).all()  # empty row: zero weights, not NaN
    # even -inf or NaN junk in padded logits must not leak
    junk = logits.clone()
    junk[0, 2] = float("nan")
    junk[2] = float("inf")
    torch.testing.assert_close(masked_softmax(junk, mask), w)


def test_empty_history_pools_to_zero_with_finite_gradient() -> None:
    keys = torch.randn(2, 4, 6, requires_grad=True)
    query = torch.randn(2, 6, requires_grad=True)
    mask = _mask([3, 0], 4)
    u = attention_pool(masked_softmax(dot_attention_logits(query, keys), mask), keys * mask[..., None])
    assert (u[1] == 0).all()
    u.sum().backward()
    assert torch.isfinite(keys.grad).all() and torch.isfinite(query.grad).all()


def test_dot_attention_is_scaled_dot_product() -> None:
    q, k = torch.randn(3, 8), torch.randn(3, 5, 8)
    torch.testing.assert_close(dot_attention_logits(q, k), (k * q[:, None]).sum(-1) / math.sqrt(8))


def test_masked_mean_and_mean_weights() -> None:
    x = torch.randn(3, 4, 2)
    mask = _mask([4, 1, 0], 4)
    m = masked_mean(x * mask[..., None], mask)
    torch.testing.assert_close(m[0], x[0].mean(0))
    torch.testing.assert_close(m[1], x[1, 0])
    assert (m[2] == 0).all()
    torch.testing.assert_close(attention_pool(mean_weights(mask), x * mask[..., None]), m)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "prelu"])
def test_activation_unit_split_equals_naive_concat(activation: str) -> None:
    torch.manual_seed(0)
    unit = ActivationUnit(dim=6, hidden=[5, 3], activation=activation)
    q, k = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 7, 6, dtype=torch.float64)
    unit = unit.double()
    torch.testing.assert_close(unit(q, k), unit.forward_naive(q, k))
    # gradients agree too (the split is the same function of the same parameters)
    g1 = torch.autograd.grad(unit(q, k).sum(), unit.first.weight)[0]
    g2 = torch.autograd.grad(unit.forward_naive(q, k).sum(), unit.first.weight)[0]
    torch.testing.assert_close(g1, g2)


def test_activation_unit_refuses_dice() -> None:
    with pytest.raises(ValueError, match="dice"):
        ActivationUnit(4, [3], "dice")


def test_mlp_activations_and_dice_modes() -> None:
    x = torch.randn(6, 10)
    for act in ("sigmoid", "relu", "prelu", "dice"):
        tower = MLP(10, [8, 4], act, dropout=0.2)
        assert tower(x).shape == (6, 1)
    assert MLP(10, [8], "relu", out_dim=None)(x).shape == (6, 8)
    dice = Dice(3)
    dice.alpha.data.fill_(0.5)
    dice.eval()  # running stats (mean 0, var 1): p = sigmoid(x / sqrt(1 + eps))
    y = torch.tensor([[2.0, -2.0, 0.0]])
    p = torch.sigmoid(y)
    torch.testing.assert_close(dice(y), p * y + (1 - p) * 0.5 * y)


def test_feature_embedding_layout_sharing_and_padding() -> None:
    schema = DatasetSchema(name="t", protocol="ctr-leave-one-out", task="ctr", n_users=5, n_items=48,
                           n_events=10, vocab_sizes={"item": 50, "category": 7}, side_features=["category"])
    emb = FeatureEmbedding(schema, dim=4)
    assert emb.out_dim == 8
    b = synthetic_batch(batch_size=4, max_len=6, min_len=0)
    h, t = emb.history(b), emb.target(b)
    assert h.shape == (4, 6, 8) and t.shape == (4, 8)
    item, cat = emb.field_weight("item"), emb.field_weight("category")
    assert item.shape == (50, 4) and cat.shape == (7, 4) and (item[0] == 0).all() and (cat[0] == 0).all()
    torch.testing.assert_close(h[0, 0], torch.cat([item[b.hist_item[0, 0]], cat[b.hist_side["category"][0, 0]]]))
    torch.testing.assert_close(t[2, :4], item[b.target_item[2]])  # same table as history
    assert (h[~b.mask] == 0).all()
    b.hist_item[~b.mask] = 7  # junk ids in the padding still embed to zero
    assert (emb.history(b)[~b.mask] == 0).all()


def test_activation_unit_bf16_is_close_and_keeps_the_dtype() -> None:
    torch.manual_seed(0)
    unit = ActivationUnit(dim=16, hidden=[12, 6])
    q, k = torch.randn(5, 16, requires_grad=True), torch.randn(5, 9, 16)
    exact = unit(q, k)
    unit.bf16 = True
    fast = unit(q, k)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast, exact, rtol=0, atol=3e-2)
    fast.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and unit.first.weight.grad.dtype == torch.float32


@pytest.mark.parametrize("padding", [True, False])
def test_gather_rows_equals_embedding_with_its_gradient(padding: bool) -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(9, 4, generator=g, requires_grad=True)
    rows = torch.randint(0, 9, (6, 5), generator=g)
    rows[0, :2] = 0
    grad = torch.randn(6, 5, 4, generator=g)
    (fast,) = torch.autograd.grad(gather_rows(w, rows, padding), w, grad)
    (ref,) = torch.autograd.grad(torch.nn.functional.embedding(rows, w, padding_idx=0 if padding else None), w, grad)
    assert torch.equal(fast, ref)  # same additions in the same order
    assert (fast[0] == 0).all() == padding
    with torch.no_grad():  # inference and export use the plain op
        assert torch.equal(gather_rows(w, rows, padding), w[rows])

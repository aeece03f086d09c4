"""The cheap-mask dropout: the rate, the scale, independence of lanes, gradients, seeding, and the
explicit attention path (equal to SDPA's weights when no weight is dropped)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from chronorec.layers.dropout import Dropout, dropout, keep_mask
from chronorec.layers.transformer import MultiHeadSelfAttention, attention_mask


@pytest.mark.parametrize("p", [0.1, 0.2, 0.3, 0.5, 0.9])
def test_drop_rate_and_unbiased_scale(p: float) -> None:
    torch.manual_seed(0)
    n = 400_000
    y = dropout(torch.ones(n), p)
    dropped = float((y == 0).float().mean())
    assert abs(dropped - p) < 4 * math.sqrt(p * (1 - p) / n)  # binomial: within 4 sd
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, kept[0].item()))  # one scale for all kept
    assert abs(float(kept[0]) * (1 - p) - 1.0) < 2.0**-16 / (1 - p)  # 1 / exact keep rate, within 2^-17 of 1 - p


def test_lanes_of_one_draw_are_independent() -> None:
    """The four 16-bit lanes of each 64-bit draw (adjacent elements) are not correlated."""
    torch.manual_seed(1)
    keep, _ = keep_mask((200_000, 4), 0.5)
    k = keep.float()
    corr = torch.corrcoef(k.T)  # [4, 4]
    off = corr[~torch.eye(4, dtype=torch.bool)]
    assert off.abs().max() < 0.015  # sd of a null correlation at n=200k is ~0.0022
    assert (k.mean(0) - 0.5).abs().max() < 0.01  # every lane, including the draw's top one, at the rate


def test_gradient_is_the_same_mask_and_scale() -> None:
    torch.manual_seed(2)
    x = torch.randn(8, 5, 16, requires_grad=True)
    y = dropout(x, 0.3)
    g = torch.randn_like(y)
    y.backward(g)
    factor = torch.where(y != 0, y / x.detach(), torch.zeros_like(y))
    assert torch.allclose(x.grad, g * factor)
    kept = factor[factor != 0]
    assert kept.numel() > 0 and torch.allclose(kept, torch.full_like(kept, 1 / (1 - 0.3)), rtol=1e-4)


def test_identity_in_eval_or_at_zero_and_zeros_at_one() -> None:
    x = torch.randn(3, 7)
    m = Dropout(0.4).eval()
    assert m(x) is x and Dropout(0.0).train()(x) is x
    assert (dropout(x, 1.0) == 0).all()
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)


def test_seeded_masks_repeat_and_steps_differ() -> None:
    x = torch.ones(1000)
    torch.manual_seed(3)
    a, b = dropout(x, 0.5), dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.5), a)
    assert not torch.equal(a, b)


def test_bf16_and_odd_sizes() -> None:
    torch.manual_seed(4)
    x = torch.ones(3, 5, 7, dtype=torch.bfloat16)  # 105 elements: not a multiple of four lanes
    y = dropout(x, 0.5)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    assert set(torch.unique(y).tolist()) <= {0.0, 2.0}


def test_same_state_dict_as_nn_dropout() -> None:
    assert Dropout(0.2).state_dict() == torch.nn.Dropout(0.2).state_dict() == {}


def test_attention_with_dropout_equals_sdpa_when_nothing_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The explicit path taken in training with attention dropout computes SDPA's attention."""
    torch.manual_seed(5)
    att = MultiHeadSelfAttention(dim=16, heads=2, dropout=0.3).train()
    x = torch.randn(3, 6, 16)
    allowed = attention_mask(torch.arange(6)[None, :] < torch.tensor([6, 3, 0])[:, None], causal=True)
    monkeypatch.setattr("chronorec.layers.transformer.dropout", lambda w, p: w)  # keep every weight
    explicit = att(x, allowed)
    att.attn_dropout = 0.0
    fused = att(x, allowed)
    assert torch.allclose(explicit, fused, atol=1e-5)
    att.attn_dropout = 0.3
    monkeypatch.undo()
    y = att(x, allowed)
    assert torch.isfinite(y).all() and not torch.allclose(y, fused, atol=1e-4)  # weights really dropped


def test_dropout_matches_f_dropout_in_distribution() -> None:
    """Same first two moments as torch's dropout over many elements."""
    torch.manual_seed(6)
    x = torch.randn(300_000)
    ours, ref = dropout(x, 0.25), F.dropout(x, 0.25, training=True)
    assert abs(float(ours.mean()) - float(ref.mean())) < 0.01
    assert abs(float(ours.pow(2).mean()) - float(ref.pow(2).mean())) < 0.02

"""Serving's shared-history path (``CTRBase.score_shared_history``) equals the regular forward for
every CTR model, and the models that override it (TIN and its variants, DIN, DIN') encode the
history once. Also the fused training kernels (TIN's attention pool, DIN's distinct-key projection)
against the composed reference ops, gradients included."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.attention import (
    attention_pool,
    dot_attention_logits,
    dot_attention_pool,
    masked_softmax,
    softmax_pool,
)
from chronorec.models.ctr.common import CTRBase
from chronorec.models.registry import create_model, list_models

CTR = list_models("ctr")
SHARED = ["tin", "tin_wo_tte", "tin_wo_ta", "tin_wo_tr", "tin_ttet", "tin_coe", "tin_calendar", "din", "din_prime"]


def schema() -> DatasetSchema:
    return DatasetSchema(
        name="t", protocol="ctr-leave-one-out", task="ctr", n_users=10, n_items=48, n_events=100,
        vocab_sizes={"item": 50, "category": 7}, side_features=["category"], max_history_len=10,
        bin_edges={"interval": [3600.0, 86400.0, 604800.0]},
    )


def build(name: str, **over: object) -> nn.Module:
    torch.manual_seed(0)
    cfg = {"dim": 8, "mlp": [16, 8], **({"heads": 2} if name in ("bst", "dsin") else {}), **over}
    m = create_model(name, schema(), cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # spread the near-constant init so rows really differ
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return m.eval()


def shared_batch(n_candidates: int = 7, length: int = 9, seed: int = 0) -> Batch:
    """C candidate rows sharing row 0's history and target time, expanded the way serving does."""
    src = synthetic_batch(batch_size=n_candidates, max_len=10, seed=seed, min_len=1)
    n = src.max_len
    src.lengths[0] = length
    src.mask[0] = torch.arange(n) < length

    def rows(t: Tensor) -> Tensor:
        return t[:1].expand(n_candidates, *t.shape[1:])

    return Batch(
        hist_item=rows(src.hist_item), hist_side={k: rows(v) for k, v in src.hist_side.items()},
        hist_ts=rows(src.hist_ts), hist_gap=rows(src.hist_gap), hist_calendar=rows(src.hist_calendar),
        mask=rows(src.mask), lengths=rows(src.lengths), target_item=src.target_item,
        target_side=src.target_side, target_ts=rows(src.target_ts), label=src.label, user=rows(src.user),
        group=rows(src.group), index=torch.arange(n_candidates),
    )



@pytest.mark.parametrize("name", SHARED)
@pytest.mark.parametrize("length", [9, 3, 0])
def test_shared_history_equals_forward(name: str, length: int) -> None:
    m = build(name)
    assert type(m).score_shared_history is not CTRBase.score_shared_history, "expected an override"
    b = shared_batch(length=length)
    with torch.no_grad():
        torch.testing.assert_close(m.score_shared_history(b), m(b).logits, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("length", [9, 0])
def test_din_per_field_shared_history_equals_forward(length: int) -> None:
    m = build("din", att_per_field=True)
    b = shared_batch(length=length)
    with torch.no_grad():
        torch.testing.assert_close(m.score_shared_history(b), m(b).logits, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", CTR)
def test_every_ctr_model_has_a_shared_history_entry(name: str) -> None:
    m = build(name)
    b = shared_batch(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(m.score_shared_history(b), m(b).logits, rtol=1e-6, atol=1e-6)


def test_encode_shared_is_one_history_row() -> None:
    m = build("tin_ttet")
    b = shared_batch()
    e, v, mask = m.encode_shared(b)
    e_full, v_full = m.encode(b)
    assert e.shape == e_full.shape[1:] and v.shape == v_full.shape and mask.shape == b.mask.shape[1:]
    torch.testing.assert_close(e, e_full[3])
    torch.testing.assert_close(v, v_full)


def _grads(fn: Callable[..., Tensor], *xs: Tensor) -> tuple[Tensor, ...]:
    xs = tuple(x.detach().clone().requires_grad_() for x in xs)
    out = fn(*xs)
    out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
    return (out.detach(), *(x.grad for x in xs))


def test_fused_pools_match_the_composed_ops_with_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randn(5, 4, 6, generator=g, dtype=torch.float64)
    z = torch.randn(5, 4, generator=g, dtype=torch.float64)
    mask = torch.arange(4)[None, :] < torch.tensor([4, 2, 1, 0, 3])[:, None]

    def ref_dot(q: Tensor, k: Tensor) -> Tensor:
        return attention_pool(masked_softmax(dot_attention_logits(q, k), mask), k)

    for got, want in zip(_grads(lambda q, k: dot_attention_pool(q, k, mask), q, k), _grads(ref_dot, q, k), strict=True):
        torch.testing.assert_close(got, want)
    fused = _grads(lambda z, k: softmax_pool(z, k, mask), z, k)
    ref = _grads(lambda z, k: attention_pool(masked_softmax(z, mask), k), z, k)
    for got, want in zip(fused, ref, strict=True):
        torch.testing.assert_close(got, want)
    assert (fused[1][~mask] == 0).all()  # padded logits get no gradient


def _assert_same_logits_and_grads(m: nn.Module, b: Batch, reference: Callable[[], Tensor]) -> None:
    """``m(b).logits`` and every parameter's gradient equal those of ``reference()``."""
    out = m(b).logits
    grads = torch.autograd.grad(out.sum(), list(m.parameters()))
    ref = reference()
    ref_grads = torch.autograd.grad(ref.sum(), list(m.parameters()))
    torch.testing.assert_close(out, ref)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("temporal", ["none", "ttep", "calendar"])
def test_din_distinct_key_projection_equals_the_plain_unit(temporal: str) -> None:
    """DIN's forward projects each distinct (item, side) tuple and temporal row once; the logits
    and every parameter's gradient equal the plain activation unit over ``e~`` (float64)."""
    m = build("din", temporal=temporal).double().train()
    b = synthetic_batch(batch_size=6, max_len=8, seed=2, min_len=0)
    b.hist_item[1, :3] = b.hist_item[0, :3]  # repeated items across rows
    b.hist_side["category"][1, :3] = b.hist_side["category"][0, :3]

    def reference() -> Tensor:
        e, v = m.encode(b)
        s = m.unit(v, e)  # no k_part: one [B*L, D] x [D, H] GEMM
        u = attention_pool(masked_softmax(s / math.sqrt(m.D), b.mask), e)
        return m._logit(u, v, b)

    _assert_same_logits_and_grads(m, b, reference)


@pytest.mark.parametrize("temporal", ["none", "ttep"])
@pytest.mark.parametrize("act", ["sigmoid", "prelu"])
def test_din_per_field_units_attend_over_their_own_slice(temporal: str, act: str) -> None:
    """``att_per_field``: one activation unit per embedding field (item, category), each scoring and
    pooling its own ``dim``-wide slice of ``e~`` (the explicit concat form per field); the fused path
    (sigmoid) and the composed one (prelu) give the logits and gradients of that reference (float64)."""
    m = build("din", temporal=temporal, att_per_field=True, att_activation=act).double().train()
    assert len(m.units) == 2 and all(u.dim == 8 for u in m.units)
    b = synthetic_batch(batch_size=6, max_len=8, seed=2, min_len=0)
    b.hist_item[1, :3] = b.hist_item[0, :3]
    b.hist_side["category"][1, :3] = b.hist_side["category"][0, :3]

    def reference() -> Tensor:
        e, v = m.encode(b)
        pooled = []
        for unit, sl in zip(m.units, m.slices, strict=True):
            s = unit.forward_naive(v[:, sl], e[..., sl])  # [B, L]
            pooled.append(attention_pool(masked_softmax(s / math.sqrt(8), b.mask), e[..., sl]))
        return m._logit(torch.cat(pooled, dim=-1), v, b)

    _assert_same_logits_and_grads(m, b, reference)

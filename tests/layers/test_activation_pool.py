"""The blocked activation-unit pooling equals the composed ops, in value and gradient, in every form."""

from __future__ import annotations

import math

import pytest
import torch

from chronorec.layers.activation_pool import fused_activation_pool
from chronorec.layers.attention import ActivationUnit, attention_pool, softmax_pool

B, L, D, H, U = 7, 5, 6, 8, 9
FORMS = ["k", "k+dense", "k+ptable", "k+ptable+dense", "ktable", "ktable+ptable+dense"]


def _composed(unit, q, k, mask, norm, kpart):
    s = unit(q, k, k_part=kpart)
    if norm == "softmax":
        return softmax_pool(s / math.sqrt(D), k, mask)
    return attention_pool(s * mask, k)


def _case(form: str, act: str, dtype=torch.float64, seed: int = 0):
    torch.manual_seed(seed)
    unit = ActivationUnit(D, [H, 4], act).to(dtype)
    mask = torch.rand(B, L) > 0.3
    mask[2] = False  # a sample without behaviors pools to zero
    q = torch.randn(B, D, dtype=dtype, requires_grad=True)
    index = torch.randint(0, U, (B, L))
    ktable = torch.randn(U, D, dtype=dtype, requires_grad=True) if form.startswith("ktable") else None
    k = (torch.randn(B, L, D, dtype=dtype) * mask.unsqueeze(-1)).requires_grad_() if ktable is None else None
    ptable = torch.randn(U, H, dtype=dtype, requires_grad=True) if "ptable" in form else None
    dense = torch.randn(B, L, H, dtype=dtype, requires_grad=True) if "dense" in form else None
    return unit, q, k, ktable, ptable, index if (ktable is not None or ptable is not None) else None, dense, mask


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("act", ["sigmoid", "relu"])
@pytest.mark.parametrize("norm", ["softmax", "none"])
def test_equals_the_composed_ops_in_value_and_gradient(form: str, act: str, norm: str) -> None:
    unit, q, k, ktable, ptable, index, dense, mask = _case(form, act)
    leaves = [t for t in (q, k, ktable, ptable, dense) if t is not None] + list(unit.parameters())
    # blocks of 12 positions: 2 samples a block, the last block shorter
    u = fused_activation_pool(unit, q, k, mask, norm, 1 / math.sqrt(D), ktable=ktable, ptable=ptable,
                              index=index, dense=dense, rows=12)
    g = torch.randn_like(u)
    got = torch.autograd.grad(u, leaves, g)

    kk = ktable[index] if ktable is not None else k
    kpart = ptable[index] if ptable is not None else None
    if dense is not None:
        kpart = dense if kpart is None else kpart + dense
    ref = _composed(unit, q, kk, mask, norm, kpart)
    want = torch.autograd.grad(ref, leaves, g)
    torch.testing.assert_close(u, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert u[2].abs().max() == 0


def test_block_size_does_not_change_the_result() -> None:
    unit, q, k, *_, mask = _case("k", "sigmoid")
    outs = [fused_activation_pool(unit, q, k, mask, "softmax", 0.3, rows=r) for r in (1, 7, 10_000)]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=1e-12, atol=1e-12)


def test_padded_behaviors_do_not_matter() -> None:
    unit, q, k, *_, mask = _case("k", "relu")
    u = fused_activation_pool(unit, q, k, mask, "none")
    junk = k.detach() + torch.randn_like(k) * (~mask).unsqueeze(-1)
    torch.testing.assert_close(fused_activation_pool(unit, q, junk, mask, "none"), u)


def test_refuses_what_it_cannot_fuse() -> None:
    unit = ActivationUnit(D, [H, 4], "prelu")
    q, k, mask = torch.randn(B, D), torch.randn(B, L, D), torch.ones(B, L, dtype=torch.bool)
    assert fused_activation_pool(unit, q, k, mask, "none") is None
    with pytest.raises(ValueError, match="ktable with index"):
        fused_activation_pool(ActivationUnit(D, [H]), q, None, mask, "none", ktable=torch.randn(U, D))


@pytest.mark.parametrize("form", ["k+dense", "ktable+ptable+dense"])
@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_bf16_gemm_operands_stay_within_bf16_rounding_of_fp32(form: str, act: str) -> None:
    """``unit.bf16``: the unit's GEMMs take bf16 operands; values and every gradient stay fp32 and
    within bf16's rounding (8 mantissa bits) of the fp32 path, and actually differ from it."""
    unit, q, k, ktable, ptable, index, dense, mask = _case(form, act, dtype=torch.float32)
    leaves = [t for t in (q, k, ktable, ptable, dense) if t is not None] + list(unit.parameters())

    def run(bf16: bool):
        unit.bf16 = bf16
        u = fused_activation_pool(unit, q, k, mask, "softmax", 0.4, ktable=ktable, ptable=ptable,
                                  index=index, dense=dense, rows=12)
        return u, torch.autograd.grad(u, leaves, torch.ones_like(u))

    (u32, g32), (u16, g16) = run(False), run(True)
    assert u16.dtype == torch.float32 and all(g.dtype == torch.float32 for g in g16)
    assert not torch.equal(u16, u32)  # the bf16 path was taken
    torch.testing.assert_close(u16, u32, rtol=2e-2, atol=2e-2 * float(u32.detach().abs().max()))
    for a, b in zip(g16, g32, strict=True):
        torch.testing.assert_close(a, b, rtol=3e-2, atol=3e-2 * float(b.abs().max()) + 1e-6)  # the last bias: a sum softmax makes 0


def test_bf16_leaves_float64_exact() -> None:
    """A float64 call ignores ``bf16`` (the rounding is a float32 speed option)."""
    unit, q, k, *_, mask = _case("k", "sigmoid")
    exact = fused_activation_pool(unit, q, k, mask, "none")
    unit.bf16 = True
    torch.testing.assert_close(fused_activation_pool(unit, q, k, mask, "none"), exact, rtol=0, atol=0)

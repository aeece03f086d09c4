"""DIN's activation-unit attention pooling, one cache-sized block of samples at a time.

For a target ``q [B, D]``, behaviors ``k [B, L, D]`` and the behavior mask it computes::

    h1_i = act(hq + kpart_i + W4 (q * k_i))        hq = (W1 + W3) q + b1,  kpart_i = (W2 - W3) k_i
    s_i  = MLP(h1_i)                               the unit's hidden layers (80 -> 40 -> 1)
    a    = masked softmax of s * scale             (norm="softmax")  or  s * mask  (norm="none")
    u    = sum_i a_i k_i                           -> [B, D]

exactly what :class:`~chronorec.layers.attention.ActivationUnit` followed by ``softmax_pool`` or
``attention_pool`` computes, as one autograd Function that walks the batch in blocks of about
``rows`` behavior positions. Autograd over the composed ops writes and re-reads a dozen
``[B, L, H]`` and ``[B, L, D]`` tensors per step (16-26 MB each at B=1024, L=50), each a fresh
allocation paid in page faults; here a block's intermediates are made and used while in cache, and
the forward keeps only each block's hidden activations and weights for the backward (about 120
floats per position; keeping nothing and recomputing them in the backward was 10% slower).

Behaviors and key parts may come as small tables plus one index ``[B, L]`` (``k = ktable[index]``,
``kpart = ptable[index]``): a batch repeats items a lot, so DIN embeds and projects each distinct
behavior once. Their gradients are then summed into the tables' rows block by block, and neither
``[B, L, D]`` nor ``[B, L, H]`` is ever materialised, forward or backward.

Only activations whose derivative is a function of their output (sigmoid, relu) are fused;
:func:`fused_activation_pool` returns None otherwise and the caller composes the ops.

With the unit's ``bf16`` flag (fp32 inputs), the unit's GEMMs take bfloat16 operands: the first
layer's ``W4 (q * k)`` forward, its weight and input gradients, and the hidden layers' (the last,
one-output layer stays fp32: it is memory-bound). The kernels accumulate in fp32 and each product
is added to fp32 pre-activations, gradients and accumulators; activations, weights, softmax and
pooling stay fp32. On this machine's AVX-512-BF16 CPU those GEMMs ran 3-4x faster (``[4050, 128] x
[128, 80]``: 111 vs 404 us, 2 threads), DIN's training a median 1.29x (0.92-1.62x over 12
paired trainer runs, ml-100k, docs/benchmark-results.md §2-s14) at the same test AUC (0.853 vs
0.851, 3 epochs).

Example::

    >>> from chronorec.layers.attention import ActivationUnit, attention_pool
    >>> unit = ActivationUnit(dim=8, hidden=[6, 4])
    >>> q, k, mask = torch.randn(3, 8), torch.randn(3, 5, 8), torch.rand(3, 5) > 0.3
    >>> u = fused_activation_pool(unit, q, k, mask, norm="none")
    >>> bool(torch.allclose(u, attention_pool(unit(q, k) * mask, k), atol=1e-6))
    True
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

# behavior positions per block: [rows, 80] fp32 intermediates are ~1.3 MB, within L2
DEFAULT_ROWS = 4096


def _act(x: Tensor, name: str) -> Tensor:
    """The activation, in place."""
    return x.sigmoid_() if name == "sigmoid" else x.relu_()


def _act_grad(g: Tensor, y: Tensor, name: str) -> Tensor:
    """``g * act'(x)`` from the activation's output ``y``, in ``y``'s dtype: in place on ``g`` when
    ``g`` has that dtype (a bf16 ``g`` is widened by the first product)."""
    if g.dtype != y.dtype:
        g = torch.mul(g, y) if name == "sigmoid" else g.to(y.dtype)
        return g.mul_(1.0 - y) if name == "sigmoid" else g.mul_(y > 0)
    if name == "sigmoid":
        return g.mul_(y).mul_(1.0 - y)
    return g.mul_(y > 0)


class _Inputs:
    """The Function's tensors, by name, for one batch or one block of samples ``sl``."""

    def __init__(self, q: Tensor, k: Tensor | None, ktable: Tensor | None, ptable: Tensor | None,
                 index: Tensor | None, dense: Tensor | None, mask: Tensor, hq: Tensor) -> None:
        self.q, self.k, self.ktable, self.ptable = q, k, ktable, ptable
        self.index, self.dense, self.mask, self.hq = index, dense, mask, hq

    def keys(self, sl: slice) -> tuple[Tensor, Tensor | None]:
        """``(k [n, L, D], flat table rows [n*L] or None)`` of block ``sl``."""
        rows = self.index[sl].reshape(-1) if self.index is not None else None
        if self.k is not None:
            return self.k[sl], rows
        return self.ktable.index_select(0, rows).view(*self.mask[sl].shape, -1), rows  # [n, L, D]

    def block(self, sl: slice) -> tuple[Tensor, Tensor | None, Tensor]:
        """``(k [n, L, D], flat table rows [n*L] or None, key part [n*L, H])`` of block ``sl``."""
        k, rows = self.keys(sl)
        n, L = k.shape[:2]
        if self.ptable is not None:
            base = self.ptable.index_select(0, rows)  # [N, H]
            if self.dense is not None:
                base += self.dense[sl].reshape(n * L, -1)
        else:
            base = self.dense[sl].reshape(n * L, -1).clone()
        return k, rows, base


# layers with fewer outputs than this keep fp32 GEMMs under ``low``: a [N, 40] x [40, 1] product is
# memory-bound, so rounding its operands would cost more than it saves
_LOW_MIN_OUT = 8


# bf16 GEMM operands are padded to a multiple of this many rows: oneDNN builds and caches a kernel
# per shape, and blocks of n samples x L positions have a new row count in nearly every batch (246
# kernels and ~86 MB of cache over 150 DIN steps on ml-100k; at most 16 row counts this way)
_ROW_QUANTUM = 256


def _low(t: Tensor, low: torch.dtype | None) -> Tensor:
    return t if low is None else t.to(low)


def _rows_low(t: Tensor, low: torch.dtype) -> Tensor:
    """``t [N, C]`` rounded to ``low`` in a buffer of N rounded up to ``_ROW_QUANTUM`` rows, the extra
    rows zero (so they add nothing to a product over rows, and rows past N of a result are dropped)."""
    n = t.shape[0]
    out = torch.empty(-(-n // _ROW_QUANTUM) * _ROW_QUANTUM, t.shape[1], dtype=low, device=t.device)
    out[:n].copy_(t)
    out[n:].zero_()
    return out


def _mm_rows(a: Tensor, w: Tensor, low: torch.dtype) -> Tensor:
    """``a [N, K] @ w [K, M]`` from ``a`` rounded to ``low`` (``w`` already in it): ``[N, M]`` in
    ``low`` (the kernel accumulates in fp32)."""
    return (_rows_low(a, low) @ w)[: a.shape[0]]


def _linear_backward(g: Tensor, x: Tensor, w: Tensor, dw: Tensor, low: torch.dtype | None) -> Tensor:
    """Layer ``y = x @ w.T`` (``x [N, in]``, ``w [out, in]``, already in ``low``): ``dw += g.T @ x``
    and returns ``g @ w`` (``[N, in]``; in ``low`` when given)."""
    if low is None:
        dw.addmm_(g.T, x)
        return g @ w
    gl = _rows_low(g, low)
    dw.add_(gl.T @ _rows_low(x, low))
    return (gl @ w)[: g.shape[0]]


class _Weights:
    """The unit's weights as its GEMMs take them: ``w4`` and the hidden layers' weights rounded to
    ``low`` once per call (``lows[j]``: layer j's GEMM dtype, None = fp32; j = 0 is the first layer)."""

    def __init__(self, w4: Tensor, rest: tuple[Tensor, ...] | list[Tensor], low: torch.dtype | None) -> None:
        weights = rest[0::2]
        self.lows = [low] + [low if w.shape[0] >= _LOW_MIN_OUT else None for w in weights]
        self.w4 = _low(w4, low)
        self.weights = [_low(w, lo) for w, lo in zip(weights, self.lows[1:], strict=True)]
        self.biases = rest[1::2]


def _block_forward(x: _Inputs, sl: slice, spec: tuple,
                   ws: _Weights) -> tuple[Tensor, Tensor | None, list[Tensor], Tensor]:
    """One block: ``(k [n, L, D], table rows, [p, h1, h2, ...] as [N, *] rows, weights a [n, L])``."""
    act, norm, scale, _, _ = spec
    k, rows, base = x.block(sl)
    n, L, D = k.shape
    mask = x.mask[sl]
    p = (k * x.q[sl].unsqueeze(1)).view(-1, D)  # [N, D]
    base.view(n, L, -1).add_(x.hq[sl].unsqueeze(1))
    if ws.lows[0] is None:
        base.addmm_(p, ws.w4.T)
    else:
        base.add_(_mm_rows(p, ws.w4.T, ws.lows[0]))
    h = _act(base, act)  # [N, H]
    hs = [p, h]
    for j, (w, b, lo) in enumerate(zip(ws.weights, ws.biases, ws.lows[1:], strict=True)):
        h = torch.addmm(b, h, w.T) if lo is None else torch.add(b, _mm_rows(h, w.T, lo))
        if j < len(ws.weights) - 1:
            hs.append(_act(h, act))
    s = h.view(n, L)
    if norm == "softmax":
        z = (s * scale).masked_fill_(~mask, torch.finfo(s.dtype).min)
        a = torch.softmax(z, dim=-1).mul_(mask)
    else:
        a = s * mask
    return k, rows, hs, a


def _blocks(B: int, L: int, rows: int) -> list[slice]:
    step = max(1, rows // max(L, 1))
    return [slice(b0, min(B, b0 + step)) for b0 in range(0, B, step)]


class _ActivationPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor | None, ktable: Tensor | None, ptable: Tensor | None,
                index: Tensor | None, dense: Tensor | None, mask: Tensor, hq: Tensor, spec: tuple,
                w4: Tensor, *rest: Tensor) -> Tensor:
        x = _Inputs(q, k, ktable, ptable, index, dense, mask, hq)
        B, L = mask.shape
        u = torch.empty(B, q.shape[1], dtype=q.dtype, device=q.device)
        # each block's hidden activations and weights, for the backward; none when no gradient is wanted
        ctx.kept = [] if any(ctx.needs_input_grad) else None
        ws = _Weights(w4, rest, spec[4])
        for sl in _blocks(B, L, spec[3]):
            kb, _, hs, a = _block_forward(x, sl, spec, ws)
            u[sl] = torch.bmm(a.unsqueeze(1), kb).squeeze(1)  # [n, D]
            if ctx.kept is not None:
                ctx.kept.append((hs[1:], a))
        ctx.save_for_backward(q, k, ktable, ptable, index, dense, mask, hq, w4, *rest)
        ctx.spec = spec
        return u

    @staticmethod
    def backward(ctx: Any, du: Tensor) -> tuple[Tensor | None, ...]:
        q, k, ktable, ptable, index, dense, mask, hq, w4, *rest = ctx.saved_tensors
        x = _Inputs(q, k, ktable, ptable, index, dense, mask, hq)
        act, norm, scale, rows, low = ctx.spec
        need = ctx.needs_input_grad
        B, L = mask.shape
        dq, dhq, dw4 = torch.empty_like(q), torch.empty_like(hq), torch.zeros_like(w4)
        dk = torch.empty_like(k) if k is not None and need[1] else None
        dktable = torch.zeros_like(ktable) if ktable is not None and need[2] else None
        dptable = torch.zeros_like(ptable) if ptable is not None and need[3] else None
        ddense = torch.empty_like(dense) if dense is not None and need[5] else None
        drest = [torch.zeros_like(t) for t in rest]
        ws = _Weights(w4, rest, low)
        for sl, (hidden, a) in zip(_blocks(B, L, rows), ctx.kept, strict=True):
            kb, flat = x.keys(sl)
            qb, dub = q[sl], du[sl]
            hs = [(kb * qb.unsqueeze(1)).view(-1, kb.shape[-1]), *hidden]  # p = q * k again: one cheap pass
            n, _, D = kb.shape
            # pooling u = sum_i a_i k_i; a bmm of [L, D] x [D, 1] is 4x slower than multiply-and-sum
            da = torch.mul(kb, dub.unsqueeze(1)).sum(-1)  # [n, L]
            if norm == "softmax":
                ds = a * (da - (a * da).sum(-1, keepdim=True)) * scale
            else:
                ds = da * mask[sl]
            # the unit's MLP, last layer first; layer j reads hs[j + 1] (hs = [p, h1, h2, ...])
            g = ds.reshape(-1, 1)  # [N, 1]
            for j in range(len(ws.weights) - 1, -1, -1):
                h = hs[j + 1]
                drest[2 * j + 1].add_(g.sum(0))
                g = _act_grad(_linear_backward(g, h, ws.weights[j], drest[2 * j], ws.lows[j + 1]), h, act)  # [N, in_j], fp32
            # g: gradient of the first layer's pre-activation, [N, H]
            dp = _linear_backward(g, hs[0], ws.w4, dw4, low).view(n, L, D).to(q.dtype)  # [n, L, D]
            torch.sum(g.view(n, L, -1), dim=1, out=dhq[sl])
            if dptable is not None:
                dptable.index_add_(0, flat, g)
            if ddense is not None:
                ddense[sl] = g.view(n, L, -1)
            dkb = torch.mul(a.unsqueeze(-1), dub.unsqueeze(1))  # [n, L, D]
            dkb.addcmul_(dp, qb.unsqueeze(1))
            torch.sum(dp.mul_(kb), dim=1, out=dq[sl])
            if dk is not None:
                dk[sl] = dkb
            if dktable is not None:
                dktable.index_add_(0, flat, dkb.view(n * L, D))
        return (dq, dk, dktable, dptable, None, ddense, None, dhq, None, dw4, *drest)


def fused_activation_pool(
    unit: torch.nn.Module, q: Tensor, k: Tensor | None, mask: Tensor, norm: str, scale: float = 1.0, *,
    ktable: Tensor | None = None, ptable: Tensor | None = None, index: Tensor | None = None,
    dense: Tensor | None = None, rows: int = DEFAULT_ROWS,
) -> Tensor | None:
    """The pooled interest ``u [B, D]`` of an :class:`ActivationUnit` ``unit``, or None when it
    cannot be fused (another activation, TorchScript/ONNX tracing). ``unit.bf16`` with fp32 inputs:
    bf16 GEMM operands (module docstring). An earlier bf16 version that also ran the activations in
    bf16 lost 0.03 AUC (DIN, ml-100k, ``benchmarks/results/ctr-20261203-144137.json``).

    ``q [B, D], mask [B, L]``. Behaviors: ``k [B, L, D]``, or ``ktable [U, D]`` with ``index
    [B, L]`` (``k = ktable[index]``; then pass ``k=None``). Key part ``(W2 - W3) k``: ``ptable[index]``
    (``ptable [U, H]``) plus ``dense [B, L, H]``, either may be None; both None: computed from ``k``.
    ``norm``: ``"softmax"`` (masked softmax of ``s * scale``) or ``"none"`` (``s * mask``).
    """
    if unit.act_name not in ("sigmoid", "relu") or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return None
    if (k is None) == (ktable is None) or (index is None and (ktable is not None or ptable is not None)):
        raise ValueError("pass behaviors as k, or as ktable with index (and ptable only with index)")
    if ptable is None and dense is None:
        if k is not None:
            dense = k @ unit.key_weight().T  # [B, L, H]
        else:
            ptable = ktable @ unit.key_weight().T  # [U, H]
    hq = q @ unit.query_weight().T + unit.first.bias  # [B, H]
    rest = [t for lin in unit.rest.net if isinstance(lin, torch.nn.Linear) for t in (lin.weight, lin.bias)]
    spec = (unit.act_name, norm, scale, rows, torch.bfloat16 if unit.bf16 and q.dtype == torch.float32 else None)
    return _ActivationPool.apply(q, k, ktable, ptable, index, dense, mask, hq, spec, unit.product_weight(), *rest)

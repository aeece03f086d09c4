"""The full-softmax cross-entropy of next-item training, fused and chunked (``task.loss=ce``).

Full softmax cross-entropy over all items at every real position. Only the
``[N, D]`` hidden states of real positions are gathered, never the padded ``[B, L, n]`` grid, and
even ``[N, n]`` is held at once only up to 16 MB: :func:`full_softmax_ce` walks row chunks of about
a million logits (cache-sized), computing each chunk's loss *and* gradient in the forward pass
(one fused softmax, ``- onehot``, the hidden-state gradient matmul while the chunk is warm), and
the item-table gradient as one matmul per 16 MB group of chunks, so memory stays flat in ``N``
(measured on one thread, before the groups: about 2× faster than ``F.cross_entropy`` on ``[N, n]``).
Padding and UNK columns are masked. ``loss_precision="bf16"`` (``--set task.loss_precision=bf16``)
runs its three matmuls on bfloat16 copies of the hidden states and item table; the logits and the
softmax are stored in bf16 but computed in fp32, and the loss and the gradient sums stay fp32. On a
CPU with native bf16 dot products (avx512_bf16 or AMX) those matmuls run 2-4× faster; elsewhere keep fp32.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from chronorec.data.schema import FIRST_ID

Precision = Literal["fp32", "bf16"]
CE_CHUNK_ELEMS = 1 << 20  # logits per chunk of the fused cross-entropy (4 MB in fp32)
CE_GROUP_BYTES = 16 << 20  # logits kept for one item-gradient matmul, at most (4M in fp32, 8M in bf16)
# ... and fewer where 1,024 rows fit in less (a small catalogue), down to 4 MB: K = 1,024 keeps that
# matmul efficient, and on ml-100k (1,683 items) the 16 MB buffer was 12 MB of GRU4Rec's peak
CE_GROUP_ROWS, CE_GROUP_MIN_BYTES = 1024, 4 << 20
_TINY_P = 1e-30  # a target probability below this has its row's loss recomputed from fp32 logits


class _FullSoftmaxCE(torch.autograd.Function):
    """Mean over rows of ``logsumexp(h W^T) - h . W[t]``, chunked, gradient computed in forward."""

    @staticmethod
    def forward(ctx, h: Tensor, W: Tensor, t: Tensor, rows: int, group: int, n_masked: int, low: torch.dtype | None) -> Tensor:  # type: ignore[override]
        N, n, D = h.shape[0], W.shape[0], h.shape[1]
        grads = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        inv_n = 1.0 / max(N, 1)
        total = torch.zeros((), dtype=torch.float64, device=h.device)
        # low precision: the three GEMMs take bf16 operands (fp32 accumulation inside the kernel) and
        # the softmax reads and writes bf16 while computing in fp32, as autocast does for cross-entropy
        dt = h.dtype if low is None else low
        # bf16 matmuls go to oneDNN, which caches a primitive per shape: the last chunk is padded to
        # `rows` rows (a multiple of 8) with zero rows, so a call has a handful of shapes and a run a
        # few dozen (a shape per chunk length took a 3-epoch GRU4Rec run on amazon-beauty to a 631 MB
        # peak, against 458 MB in fp32)
        Np = N if low is None else -(-N // rows) * rows
        hl = h if low is None and Np == N else h.new_zeros((Np, D), dtype=dt)
        if hl is not h:
            hl[:N] = h
        Wl = W if low is None else W.to(low)
        # the item gradient is one matmul per group of chunks, P^T @ (h / N), over the chunks'
        # (softmax - onehot) kept side by side: per chunk it was a K = 76 matmul into a temporary
        # and an add over the whole [n, D] table (-27% for the call, 380 rows x 12,103 items, bf16)
        hs = None
        if grads:
            hs = hl.new_zeros((Np, D))
            hs[:N] = h * inv_n
        gh = torch.empty_like(h)
        gW = None
        P = hl.new_empty((min(group, Np), n))  # [g, n] logits, softmax, then softmax - onehot
        gh_low = hl.new_empty((rows, D)) if low is not None else None
        for g0 in range(0, Np, group):
            g1 = min(g0 + group, Np)
            for s in range(g0, g1, rows):
                e = min(s + rows, g1)  # chunk rows s..e, of which s..s+c are real
                c = min(e, N) - s
                z = P[s - g0 : e - g0]
                torch.mm(hl[s:e], Wl.T, out=z)  # padded rows: zero logits, and zero rows of hs
                zc = z[:c]
                zc[:, :n_masked] = float("-inf")  # padding / UNK are never targets
                # ATen's fused softmax, in place: max, exp-sum and scale per row while the row is in
                # cache (one pass over the chunk's memory, where max / sub / exp / sum / div by hand were five)
                torch.ops.aten._softmax.out(zc, 1, False, out=zc)
                r, tc = torch.arange(c, device=h.device), t[s : s + c]
                pt = zc[r, tc].float()  # [c] softmax at the targets
                loss = -pt.log()
                small = pt < _TINY_P  # log of an underflowed probability: recompute those rows exactly
                if bool(small.any()):
                    rs = small.nonzero()[:, 0]
                    zs = hl[s + rs].float() @ Wl.float().T  # [k, n]
                    zs[:, :n_masked] = float("-inf")
                    loss[rs] = zs.logsumexp(1) - zs[torch.arange(rs.numel(), device=h.device), tc[rs]]
                total += loss.sum(dtype=torch.float64)
                if grads:
                    zc[r, tc] = (pt - 1.0).to(dt)  # d loss_row / d z = softmax - onehot
                    if low is None:
                        torch.mm(zc, W, out=gh[s : s + c])  # [c, D]
                    else:
                        gh[s : s + c] = torch.mm(z, Wl, out=gh_low[: e - s])[:c]
            if grads:
                part = torch.mm(P[: g1 - g0].T, hs[g0:g1])  # [n, D]
                if gW is None:
                    gW = part if low is None else part.float()
                else:
                    gW += part
        if grads:
            gh.mul_(inv_n)
        ctx.grads = (gh, gW)  # intermediates, not inputs or outputs: kept on ctx
        return (total * inv_n).to(h.dtype)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        gh, gW = ctx.grads
        del ctx.grads
        if float(g) != 1.0:  # a scaled loss; the usual g = 1 needs no pass over the [n, D] table
            gh, gW = gh * g, gW * g
        return gh, gW, None, None, None, None, None


def full_softmax_ce(
    h: Tensor, W: Tensor, target: Tensor, chunk_elems: int = CE_CHUNK_ELEMS, precision: Precision = "fp32",
    group_bytes: int = CE_GROUP_BYTES,
) -> Tensor:
    """Mean full-softmax cross-entropy of ``h [N, D]`` against all items ``W [n, D]``, targets ``[N]``.

    Equal to ``F.cross_entropy(h @ W.T with columns 0, 1 at -inf, target)`` (0 for ``N = 0``),
    computed in equal row chunks of at most ``chunk_elems`` logits; no double backward.
    ``precision="bf16"`` runs the three matmuls on bfloat16 copies of ``h`` and ``W`` and keeps the
    chunk's logits and softmax in bf16 (computed in fp32; loss and gradient sums stay fp32): loss and
    gradients agree with fp32 to about 0.2% relative.
    """
    if precision not in get_args(Precision):
        raise ValueError(f"unknown loss precision {precision!r}; choose fp32 or bf16")
    low = torch.bfloat16 if precision == "bf16" and h.dtype == torch.float32 else None
    size = h.element_size() if low is None else torch.finfo(low).bits // 8
    rows, group = ce_chunking(h.shape[0], W.shape[0], size, chunk_elems, group_bytes, pad8=low is not None)
    return _FullSoftmaxCE.apply(h, W, target, rows, group, FIRST_ID, low)


def ce_chunking(N: int, n: int, size: int, chunk_elems: int = CE_CHUNK_ELEMS, group_bytes: int = CE_GROUP_BYTES,
                pad8: bool = False) -> tuple[int, int]:
    """``(rows per chunk, rows per item-gradient group)`` for ``N`` terms over ``n`` items of ``size`` bytes.

    Equal chunks of at most ``chunk_elems`` logits: 380 rows in chunks of 86 would leave a last chunk
    of 36, padded to 86 in bf16 (13% more matmul work); 5 chunks of 76 leave none. In bf16 (``pad8``)
    the row count is rounded up to a multiple of 8, which bounds the shapes oneDNN caches (see
    forward). A group is whole chunks: ``CE_GROUP_ROWS`` rows, within 4 MB .. ``group_bytes``.
    """
    n = max(n, 1)
    n_chunks = max(1, -(-N // max(1, chunk_elems // n)))
    rows = max(1, -(-N // n_chunks))
    if pad8:
        rows = -(-rows // 8) * 8
    most = group_bytes // size // n
    least = min(CE_GROUP_MIN_BYTES // size // n, most)
    return rows, rows * max(1, min(max(CE_GROUP_ROWS, least), most) // rows)

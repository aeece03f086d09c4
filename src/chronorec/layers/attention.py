"""Target attention: TIN's scaled dot product, DIN's activation unit, masked pooling.

Every function takes the behavior mask ``[B, L]`` (True at real behaviors). Padded positions get
exactly zero weight whatever their values, and a row with no behavior at all pools to the zero
vector instead of NaN (the softmax of an all-masked row is uniform, and is then multiplied by the
mask).

Example::

    >>> import torch
    >>> keys, query = torch.randn(2, 4, 8), torch.randn(2, 8)    # [B, L, D], [B, D]
    >>> mask = torch.tensor([[True, True, False, False], [False] * 4])
    >>> logits = dot_attention_logits(query, keys)               # [B, L]
    >>> u = attention_pool(masked_softmax(logits, mask), keys)   # [B, D]
    >>> bool((u[1] == 0).all())
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from chronorec.layers.mlp import MLP, make_activation


def masked_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """Softmax over real positions. ``logits [B, L], mask [B, L] -> weights [B, L]``, 0 at padding.

    Masked logits are replaced by the dtype's most negative finite value (the released TIN/DIN code
    uses -2**32+1): finite, so an all-masked row gives a uniform softmax rather than NaN, and the
    final multiply by the mask then zeroes it.
    """
    neg = torch.finfo(logits.dtype).min
    w = torch.softmax(logits.masked_fill(~mask, neg), dim=-1)  # [B, L]
    return w * mask.to(w.dtype)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over real positions. ``x [B, L, D], mask [B, L] -> [B, D]``; zero for empty rows."""
    m = mask.to(x.dtype)  # [B, L]
    total = torch.einsum("bl,bld->bd", m, x)  # [B, D]
    return total / m.sum(dim=1, keepdim=True).clamp(min=1.0)


def mean_weights(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform weights ``1/len`` at real positions (masked mean as an attention). ``[B, L] -> [B, L]``."""
    m = mask.to(dtype)
    return m / m.sum(dim=1, keepdim=True).clamp(min=1.0)


def attention_pool(weights: Tensor, values: Tensor) -> Tensor:
    """``sum_i w_i v_i``. ``weights [B, L], values [B, L, D] -> [B, D]``."""
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # [B, D]


def dot_attention_logits(query: Tensor, keys: Tensor) -> Tensor:
    """TIN's target attention logit ``<q, k_i> / sqrt(D)`` (no projections). ``[B, D], [B, L, D] -> [B, L]``."""
    return torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1) / math.sqrt(query.shape[-1])  # [B, L]


class ActivationUnit(nn.Module):
    """DIN's local activation unit: ``score_i = MLP([q, k_i, q - k_i, q * k_i])``.

    The first layer's weight ``W = [W1 W2 W3 W4]`` (``[H, 4D]``) is kept as one ``nn.Linear(4D, H)``
    so its parameters are exactly those of the naive form, but it is applied as

        W [q, k, q-k, q*k] = (W1 + W3) q + (W2 - W3) k + W4 (q * k)

    i.e. the q-part once per sample and two ``[B*L, D] x [D, H]`` GEMMs for the behaviors instead of a
    ``[B*L, 4D]`` concat and GEMM: measured 2.3x faster forward+backward than the naive form at
    B=1024, L=50, D=128, H=80 (a per-sample fused ``bmm(k, (W2-W3) + W4 diag(q))`` was slower).
    Hidden activations act per behavior, so batch-statistics activations (dice) are refused here.

    ``forward(q [B, D], k [B, L, D]) -> scores [B, L]`` (unnormalised; mask them yourself).
    """

    def __init__(self, dim: int, hidden: list[int], activation: str = "sigmoid") -> None:
        super().__init__()
        if not hidden:
            raise ValueError("the activation unit needs at least one hidden layer")
        if activation == "dice":
            raise ValueError("dice normalises over the batch; padded behaviors would leak into it")
        self.dim = dim
        self.first = nn.Linear(4 * dim, hidden[0])
        self.rest = MLP(hidden[0], hidden[1:], activation, 0.0, out_dim=1)
        self.act = make_activation(activation, hidden[0])

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        D = self.dim
        w = self.first.weight  # [H, 4D]
        w1, w2, w3, w4 = w[:, :D], w[:, D : 2 * D], w[:, 2 * D : 3 * D], w[:, 3 * D :]
        hq = q @ (w1 + w3).T + self.first.bias  # [B, H]: once per sample
        hk = k @ (w2 - w3).T + (k * q.unsqueeze(1)) @ w4.T  # [B, L, H]
        h = self.act(hk + hq.unsqueeze(1))  # [B, L, H]
        return self.rest(h).squeeze(-1)  # [B, L]

    def forward_naive(self, q: Tensor, k: Tensor) -> Tensor:
        """Reference form with the explicit ``[q, k, q-k, q*k]`` concat (tests only). ``-> [B, L]``"""
        qe = q.unsqueeze(1).expand_as(k)  # [B, L, D]
        x = torch.cat([qe, k, qe - k, qe * k], dim=-1)  # [B, L, 4D]
        return self.rest(self.act(self.first(x))).squeeze(-1)  # [B, L]

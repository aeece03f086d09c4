"""LightSANs layers: low-rank item-to-interest self-attention + decoupled position attention.

Paper: Fan et al., *Lighter and Better: Low-Rank Decomposed Self-Attention Networks for
Next-Item Recommendation* (SIGIR 2021); layout as RecBole's ``LightTransformerLayer``.
Per layer, per head (``d_h = D / heads``), for the query at position ``j``:

    K~ = softmax_i(K Θ_K)^T K,  V~ = softmax_i(V Θ_V)^T V     item-to-interest aggregation, [k, D]
    C_item[j] = softmax_k( q_j K~^T / sqrt(d_h) ) V~           attention to k latent interests
    A_pos[j, i] = (W_q^p LN(P_j)) . (W_k^p LN(P_i)) / (sqrt(2 d_h) sqrt(d_h))   decoupled positions
    C_pos[j] = softmax_i(A_pos[j, :]) V                        position-to-position attention
    h = LN(x + Dropout(W_o (C_item + C_pos)));  y = LN(h + Dropout(W_2 act(W_1 h)))

Deviations from RecBole's code (each needed for correctness, none changes the paper's equations):

* **Causal, per prefix.** RecBole scores one prefix per sample, so its interest pooling may look
  at the whole (padded) row. chronorec trains every position at once, so the pooling ``softmax_i``
  runs over the keys ``i <= j`` that are real, giving each query position its own ``k`` interests
  (``[B, k, L, D]``, exactly what running the layer on the prefix ``0..j`` would give). The position
  branch is masked the same way.
* **Softmax axes as in the paper.** RecBole normalises both the interest scores and the position
  scores over the *query* axis (``dim=-2``); here they are normalised over the interests and the
  keys respectively.
* **Per-sample positions.** The position branch takes a per-sample ``[B, heads, L, L]`` logit bias
  (``[1, heads, L, L]`` when positions are shared), so INTERPOS's rhythm-morphed positions, which
  differ per sample, work. RecBole's layer assumes one position vector per index.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from chronorec.layers.dropout import Dropout
from chronorec.layers.transformer import _ACTS, attention_mask


class ItemToInterest(nn.Module):
    """Causal item-to-interest aggregation: ``x [B, L, D], allowed [B, 1, L, L] -> [B, k, L, D]``.

    Row ``j`` of interest ``c`` is ``sum_{i allowed for j} softmax_i(x_i . theta_c) x_i``.
    """

    def __init__(self, dim: int, k_interests: int) -> None:
        super().__init__()
        # RecBole draws theta from N(0, 1) (it sits outside its Linear/Embedding initialiser)
        self.theta = nn.Parameter(torch.randn(dim, k_interests))

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        s = (x @ self.theta).transpose(1, 2)  # [B, k, L]: score of each key position per interest
        logits = s[:, :, None, :].masked_fill(~allowed, float("-inf"))  # [B, k, Lq, Lk]
        a = torch.softmax(logits, dim=-1)  # [B, k, Lq, Lk]; the diagonal is always allowed
        return a @ x[:, None]  # [B, k, Lq, D]


class LightSANsLayer(nn.Module):
    """One LightSANs layer. ``forward(x [B,L,D], pos_logits [B|1,H,L,L], allowed [B,1,L,L]) -> [B,L,D]``."""

    def __init__(
        self, dim: int, heads: int, k_interests: int, inner: int, dropout: float = 0.0, act: str = "gelu"
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} not divisible by heads {heads}")
        self.heads, self.dh = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.pool_k = ItemToInterest(dim, k_interests)
        self.pool_v = ItemToInterest(dim, k_interests)
        self.pos_ln = nn.LayerNorm(dim)
        self.pos_qk = nn.Linear(dim, 2 * dim)
        # RecBole scales position queries by (2 d_h)^-1/2 and the product again by d_h^-1/2
        self.pos_scale = (2.0 * self.dh) ** -0.5 / math.sqrt(self.dh)
        self.attn_drop = Dropout(dropout)
        self.out = nn.Linear(dim, dim)
        self.ln1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, inner), _ACTS[act](), nn.Linear(inner, dim))
        self.ln2 = nn.LayerNorm(dim)
        self.drop = Dropout(dropout)

    def _heads(self, t: Tensor) -> Tensor:
        """[..., L, D] -> [..., H, L, d_h]."""
        *lead, L, _ = t.shape
        return t.view(*lead, L, self.heads, self.dh).transpose(-3, -2)

    def position_logits(self, pos: Tensor) -> Tensor:
        """Decoupled position-attention logits: ``pos [B|1, L, D] -> [B|1, H, L, L]``."""
        pq, pk = self.pos_qk(self.pos_ln(pos)).chunk(2, dim=-1)  # each [B|1, L, D]
        return (self._heads(pq) @ self._heads(pk).transpose(-1, -2)) * self.pos_scale  # [B|1, H, L, L]

    def forward(self, x: Tensor, pos_logits: Tensor, allowed: Tensor) -> Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # each [B, L, D]
        k_int = self.pool_k(k, allowed).view(B, -1, L, self.heads, self.dh)  # [B, k, L, H, d_h]
        v_int = self.pool_v(v, allowed).view(B, -1, L, self.heads, self.dh)  # [B, k, L, H, d_h]
        qh = self._heads(q)  # [B, H, L, d_h]
        s_item = torch.einsum("bhld,bclhd->bhlc", qh, k_int) / math.sqrt(self.dh)  # [B, H, L, k]
        p_item = self.attn_drop(torch.softmax(s_item, dim=-1))  # [B, H, L, k]
        c_item = torch.einsum("bhlc,bclhd->bhld", p_item, v_int)  # [B, H, L, d_h]
        s_pos = pos_logits.masked_fill(~allowed, float("-inf"))  # [B, H, L, L]
        p_pos = self.attn_drop(torch.softmax(s_pos, dim=-1))  # [B, H, L, L]
        c_pos = p_pos @ self._heads(v)  # [B, H, L, d_h]
        ctx = (c_item + c_pos).transpose(1, 2).reshape(B, L, D)  # [B, L, D]
        h = self.ln1(x + self.drop(self.out(ctx)))  # [B, L, D]
        y = self.ln2(h + self.drop(self.ffn(h)))  # [B, L, D]
        return y


class LightSANsEncoder(nn.Module):
    """A stack of :class:`LightSANsLayer`, causal over the real positions.

    ``forward(x [B, L, D], pos [B|1, L, D], mask [B, L] bool) -> [B, L, D]`` with padded rows zero.
    Each layer computes its own position logits from the shared (possibly morphed) positions.
    """

    def __init__(
        self, n_layers: int, dim: int, heads: int, k_interests: int, inner: int,
        dropout: float = 0.0, act: str = "gelu",
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            LightSANsLayer(dim, heads, k_interests, inner, dropout, act) for _ in range(n_layers)
        )

    def forward(self, x: Tensor, pos: Tensor, mask: Tensor) -> Tensor:
        allowed = attention_mask(mask, causal=True)  # [B, 1, L, L], diagonal always allowed
        keep = mask[..., None].to(x.dtype)  # [B, L, 1]
        x = x * keep
        for layer in self.layers:
            x = layer(x, layer.position_logits(pos), allowed) * keep  # [B, L, D]
        return x


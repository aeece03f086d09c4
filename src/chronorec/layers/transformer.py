"""Multi-head self-attention blocks shared by the CTR (SASRec/BERT4Rec/BST/DSIN) and next-item models.

Layout follows SASRec as implemented in RecBole (``TransformerLayer``): **post-LN** residuals,

    h = LayerNorm(x + Dropout(MHA(x)))
    y = LayerNorm(h + Dropout(W2 · Dropout_ffn(act(W1 · h))))

``Dropout_ffn`` (rate ``ffn_dropout``, default ``dropout``) is the SASRec paper's; RecBole's
``FeedForward`` has none (``ffn_dropout=0``).

Attention goes through :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels
on CPU), except when training with attention dropout on CPU: SDPA would draw its dropout mask with
``bernoulli_``, so the weights are formed explicitly and dropped with
:func:`chronorec.layers.dropout.dropout` (the same computation, 6-7x cheaper dropout); every dropout
here is that module's. ``TransformerEncoder(..., read=[B, L])`` computes the last layer's outputs
only at the positions a training loss reads (keys and values still at all of them).

Padding safety: keys at padded positions are masked out, and a query whose row has no
visible key at all (a fully padded row, or a padded query under a causal mask) attends to itself
instead, so softmax never sees an all ``-inf`` row and never yields NaN. Outputs at padded
positions are zeroed after every block, so junk written into padded inputs cannot leak.

Example::

    >>> import torch
    >>> enc = TransformerEncoder(n_layers=2, dim=16, heads=2, inner=32, dropout=0.0)
    >>> x = torch.randn(3, 5, 16)                                  # [B, L, D]
    >>> mask = torch.arange(5)[None, :] < torch.tensor([5, 2, 0])[:, None]  # [B, L] real positions
    >>> y = enc(x, mask, causal=True)                              # [B, L, D]
    >>> bool(torch.isfinite(y).all()), bool((y[2] == 0).all())
    (True, True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chronorec.layers.attention import masked_softmax
from chronorec.layers.dropout import Dropout, dropout

_ACTS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


def attention_mask(mask: Tensor, causal: bool, attn_mask: Tensor | None = None) -> Tensor:
    """Boolean ``[B, 1, L, L]`` "may attend" matrix, with the diagonal always allowed.

    ``mask``: ``[B, L]`` True at real positions. ``attn_mask``: optional extra ``[B, L, L]``
    restriction (e.g. DSIN's same-session mask). Keeping the diagonal guarantees every query row has
    at least one allowed key, which keeps SDPA's softmax finite for padded/empty rows; real queries
    still see themselves anyway, so this changes nothing for them.
    """
    B, L = mask.shape
    allowed = mask[:, None, :].expand(B, L, L)  # [B, Lq, Lk]: keys must be real
    if causal:
        tri = torch.ones(L, L, dtype=torch.bool, device=mask.device).tril()  # [L, L]
        allowed = allowed & tri
    if attn_mask is not None:
        allowed = allowed & attn_mask
    eye = torch.eye(L, dtype=torch.bool, device=mask.device)  # [L, L]
    return (allowed | eye)[:, None]  # [B, 1, L, L]


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with Q/K/V/output projections. ``x [B, L, D] , allowed [B, 1, L, L] -> [B, L, D]``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.attn_dropout = dropout

    def forward(self, x: Tensor, allowed: Tensor, xq: Tensor | None = None) -> Tensor:
        """``xq [B, S, D]``: the inputs of the only positions to attend from, with ``allowed [B, 1, S, L]``
        their mask rows (``[B, S, D]`` out; keys and values still from all ``L`` of ``x``)."""
        B, L, D = x.shape
        h, d = self.heads, D // self.heads
        if xq is None:
            qkv = self.qkv(x).view(B, L, 3, h, d)  # [B, L, 3, h, d]
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, h, L, d]
        else:
            W, bias = self.qkv.weight, self.qkv.bias  # [3D, D], [3D]
            k, v = F.linear(x, W[D:], bias[D:]).view(B, L, 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)
            q = F.linear(xq, W[:D], bias[:D]).view(B, -1, h, d).transpose(1, 2)  # [B, h, S, d]
        if self.training and self.attn_dropout > 0 and x.device.type == "cpu":
            scores = (q @ k.transpose(-2, -1)) * (d**-0.5)  # [B, h, S, L]
            weights = masked_softmax(scores, allowed)  # [B, h, S, L]
            y = dropout(weights, self.attn_dropout) @ v  # [B, h, S, d]
        else:
            drop = self.attn_dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=drop)  # [B, h, S, d]
        return self.out(y.transpose(1, 2).reshape(B, -1, D))  # [B, S, D]


class TransformerBlock(nn.Module):
    """One post-LN Transformer layer (SASRec/RecBole layout).

    ``forward(x [B, L, D], mask [B, L] bool, causal: bool, attn_mask [B, L, L] | None) -> [B, L, D]``;
    ``allowed`` (keyword) passes a precomputed :func:`attention_mask` so a stack builds it once.
    """

    def __init__(
        self, dim: int, heads: int, inner: int, dropout: float = 0.0, act: str = "gelu",
        ffn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        if act not in _ACTS:
            raise ValueError(f"unknown activation {act!r}; choose from {sorted(_ACTS)}")
        self.attn = MultiHeadSelfAttention(dim, heads, dropout)
        self.ln1 = nn.LayerNorm(dim)
        p_ffn = dropout if ffn_dropout is None else ffn_dropout
        inner_drop = Dropout(p_ffn) if p_ffn > 0 else nn.Identity()  # no parameters: same state-dict keys
        self.ffn = nn.Sequential(nn.Linear(dim, inner), _ACTS[act](), inner_drop, nn.Linear(inner, dim))
        self.ln2 = nn.LayerNorm(dim)
        self.drop = Dropout(dropout)

    def forward(
        self, x: Tensor, mask: Tensor, causal: bool = False, attn_mask: Tensor | None = None,
        *, allowed: Tensor | None = None, rows: Tensor | None = None,
    ) -> Tensor:
        """``rows [B, S]`` (positions): compute only those outputs, ``[B, S, D]`` (padded rows not zeroed)."""
        if allowed is None:
            allowed = attention_mask(mask, causal, attn_mask)  # [B, 1, L, L]
        if rows is None:
            h = self.ln1(x + self.drop(self.attn(x, allowed)))  # [B, L, D]
        else:
            res = x.gather(1, rows[..., None].expand(-1, -1, x.shape[-1]))  # [B, S, D]
            allowed = allowed.gather(2, rows[:, None, :, None].expand(-1, 1, -1, x.shape[1]))  # [B, 1, S, L]
            h = self.ln1(res + self.drop(self.attn(x, allowed, res)))  # [B, S, D]
        y = self.ln2(h + self.drop(self.ffn(h)))  # [B, S, D]
        if rows is not None:
            return y
        return y * mask[..., None].to(y.dtype)  # [B, L, D]: padded rows exactly zero


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerBlock`. ``forward(x [B,L,D], mask [B,L], causal) -> [B,L,D]``.

    Input rows at padded positions are zeroed first, so the values the caller left there are irrelevant.
    """

    def __init__(
        self, n_layers: int, dim: int, heads: int, inner: int, dropout: float = 0.0, act: str = "gelu",
        ffn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerBlock(dim, heads, inner, dropout, act, ffn_dropout) for _ in range(n_layers)
        )

    def forward(
        self, x: Tensor, mask: Tensor, causal: bool = False, attn_mask: Tensor | None = None,
        read: Tensor | None = None,
    ) -> Tensor:
        """``read [B, L]`` (optional): the positions whose outputs the caller will read; the others
        come out as zeros, and the last layer computes queries, feed-forward and norms at those only."""
        allowed = attention_mask(mask, causal, attn_mask)  # [B, 1, L, L], built once for all layers
        x = x * mask[..., None].to(x.dtype)  # [B, L, D]
        rows = read_rows(read & mask, x.shape[1]) if read is not None else None
        for i, layer in enumerate(self.layers):
            if rows is not None and i == len(self.layers) - 1:
                pos, real = rows
                y = layer(x, mask, causal, allowed=allowed, rows=pos)  # [B, S, D]
                y = y * real[..., None].to(y.dtype)  # [B, S, D]
                return torch.zeros_like(x).scatter(1, pos[..., None].expand(-1, -1, x.shape[-1]), y)
            x = layer(x, mask, causal, allowed=allowed)  # [B, L, D]
        return x


def read_rows(read: Tensor, L: int, worth: float = 0.5) -> tuple[Tensor, Tensor] | None:
    """The positions of ``read [B, L]`` packed to the left: ``(pos [B, S], real [B, S])``, ``S`` the most
    any row reads; None when ``S > worth · L`` (packing would save too little)."""
    counts = read.sum(1)  # [B]
    S = int(counts.max()) if read.numel() else 0
    if S == 0 or L * worth < S:
        return None
    pos = torch.argsort((~read).to(torch.uint8), dim=1, stable=True)[:, :S]  # [B, S]: read ones first, in order
    real = torch.arange(S, device=read.device)[None, :] < counts[:, None]  # [B, S]
    return pos, real

"""DIEN — Deep Interest Evolution Network (Zhou et al., AAAI'19), as compared in the TIN paper.

Equations::

    h_1 .. h_H  = GRU(e~_1 .. e~_H)                          interest extractor
    s_i = ActivationUnit([v~_T, h_i, v~_T - h_i, v~_T * h_i]);  a_i = softmax_i(s_i) over real behaviors
    AUGRU: u_i = sigma(W_u h_i + U_u h'_{i-1} + b_u),  r_i = sigma(W_r h_i + U_r h'_{i-1} + b_r)
           g_i = tanh(W_g h_i + r_i * (U_g h'_{i-1}) + b_g)
           h'_i = (1 - a_i u_i) * h'_{i-1} + a_i u_i * g_i   interest evolution (attention-scaled update)
    y = MLP([h'_H, v~_T]) + b[x_T]                           (TIN paper, Table 5: EvoLayer, no TR)

Auxiliary loss (training mode only, returned as ``ModelOutput.aux_loss``, weight ``aux_weight``)::

    L_aux = mean_{i < H} [ BCE(f([h_i, e_{i+1}]), 1) + BCE(f([h_i, e_neg]), 0) ]

with ``f`` an MLP 100-50-1 and ``e_neg`` the semantic embedding of a behavior drawn uniformly
from all real behaviors in the batch (in-batch negative sampling).

``explain``: ``attn_logit = s_i`` (the AUGRU attention logit) and ``rep_norm = ||h_i||``.

Deviations from the paper: the released DIEN code also feeds the sum-pooled history and its
product with the target to the MLP; following the TIN paper's Table 5 the head is ``[h'_H, v~_T]``.
Negatives come from the batch's behaviors rather than the pre-sampled negative sequences of the
DIEN data pipeline. Shared MLP head (80-40 sigmoid) instead of DIEN's 200-80 Dice.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.attention import ActivationUnit, masked_softmax
from chronorec.layers.mlp import MLP
from chronorec.models.base import Explanation, ModelOutput
from chronorec.models.ctr.common import CTRBase, CTRConfig, explanation
from chronorec.models.registry import register_model


class AUGRU(nn.Module):
    """GRU with attentional update gate. ``x [B, L, D], a [B, L], mask [B, L] -> h_final [B, H]``.

    Input projections of all steps are one GEMM; the recurrence loops over time (not rows). At
    padded steps ``a = 0`` and the state is kept as is, so the final state is the one after the
    last real behavior (and 0 for an empty history).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.x2h = nn.Linear(dim, 3 * hidden)
        self.h2h = nn.Linear(hidden, 3 * hidden)

    def forward(self, x: Tensor, a: Tensor, mask: Tensor) -> Tensor:
        B = x.shape[0]
        # unbind, not gx[:, t]: indexing's backward would zero-fill a full [B, L, 3H] tensor per step
        steps = zip(self.x2h(x).unbind(1), a.unsqueeze(-1).unbind(1), mask.unsqueeze(-1).unbind(1), strict=True)
        h = x.new_zeros(B, self.hidden)  # [B, H]
        for gx, at, mt in steps:  # gx [B, 3H], at [B, 1], mt [B, 1]
            xu, xr, xg = gx.chunk(3, dim=-1)
            hu, hr, hg = self.h2h(h).chunk(3, dim=-1)
            u = torch.sigmoid(xu + hu) * at  # [B, H] attention-scaled update gate
            r = torch.sigmoid(xr + hr)
            g = torch.tanh(xg + r * hg)
            h = torch.where(mt, (1 - u) * h + u * g, h)  # [B, H]
        return h


class DIENConfig(CTRConfig):
    att_hidden: list[int] = Field(default_factory=lambda: [80, 40])
    att_activation: Literal["sigmoid", "relu", "prelu"] = "sigmoid"
    aux_hidden: list[int] = Field(default_factory=lambda: [100, 50])
    aux_weight: float = Field(1.0, ge=0.0)


class DIEN(CTRBase):
    """Deep Interest Evolution Network: GRU extractor, AUGRU evolution, auxiliary next-behavior loss."""

    def __init__(self, schema: DatasetSchema, cfg: DIENConfig) -> None:
        super().__init__(schema, cfg)
        D = self.D
        self.extractor = nn.GRU(D, D, batch_first=True)
        self.unit = ActivationUnit(D, cfg.att_hidden, cfg.att_activation)
        self.evolution = AUGRU(D, D)
        self.aux = MLP(2 * D, cfg.aux_hidden, "sigmoid", out_dim=1)
        self.mlp = self.head(2 * D)

    def _interests(self, e: Tensor, v: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(h [B, L, D] zero at padding, attention logits s [B, L])``."""
        h, _ = self.extractor(e)  # [B, L, D]
        h = h * mask.unsqueeze(-1).to(h.dtype)
        return h, self.unit(v, h)

    def _aux_loss(self, h: Tensor, e_sem: Tensor, mask: Tensor) -> Tensor:
        """Next-behavior discrimination from each interest state (DIEN's auxiliary loss)."""
        B, L, D = h.shape
        valid = (mask[:, :-1] & mask[:, 1:]).to(h.dtype)  # [B, L-1]: i and i+1 both real
        real = mask.reshape(-1).nonzero().squeeze(1)  # [N] flat indices of real behaviors
        if L < 2 or real.numel() == 0:
            return h.sum() * 0.0
        neg_idx = real[torch.randint(real.numel(), (B, L - 1), device=h.device)]  # [B, L-1]
        e_neg = e_sem.reshape(-1, D)[neg_idx]  # [B, L-1, D]
        hs = h[:, :-1]  # [B, L-1, D]
        pos = self.aux(torch.cat([hs, e_sem[:, 1:]], dim=-1)).squeeze(-1)  # [B, L-1]
        neg = self.aux(torch.cat([hs, e_neg], dim=-1)).squeeze(-1)  # [B, L-1]
        loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos), reduction="none") + \
            F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none")  # [B, L-1]
        return (loss * valid).sum() / valid.sum().clamp(min=1.0)

    def forward(self, batch: Batch) -> ModelOutput:
        e_sem, v_sem = self.semantic(batch)  # [B, L, D], [B, D]
        pe, pv = self.temporal(batch)
        e, v = e_sem + pe, v_sem + pv
        h, s = self._interests(e, v, batch.mask)  # [B, L, D], [B, L]
        a = masked_softmax(s, batch.mask)  # [B, L]
        final = self.evolution(h, a, batch.mask)  # [B, D]
        logits = self.logit(self.mlp, torch.cat([final, v], dim=-1), batch)
        aux = self.cfg.aux_weight * self._aux_loss(h, e_sem, batch.mask) if self.training else None
        return ModelOutput(logits=logits, aux_loss=aux)

    @torch.no_grad()
    def explain(self, batch: Batch) -> Explanation:
        e, v = self.encode(batch)
        h, s = self._interests(e, v, batch.mask)
        return explanation(batch.mask, s, h)


register_model("dien", config=DIENConfig)(DIEN)

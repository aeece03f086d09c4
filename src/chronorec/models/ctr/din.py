"""DIN — Deep Interest Network (Zhou et al., KDD'18), in the TIN paper's two forms (Table 5).

Equations::

    s_i = ActivationUnit([v~_T, e~_i, v~_T - e~_i, v~_T * e~_i])      MLP 80-40-1, sigmoid
    z_i = s_i / sqrt(D);  a_i = softmax_i(z_i) over real behaviors     (released code)
    u   = sum_i a_i e~_i;  u' = Linear_D(scale * u + shift)
    din:        y = MLP([u', v~_T, u' * v~_T]) + b[x_T]     attention + representation (released code)
    din_prime:  y = MLP([u', v~_T]) + b[x_T]                attention only (the DIN paper's text)

The activation unit's first layer is applied with the algebraic split
``(W1+W3) q + (W2-W3) k + W4 (q*k)`` (see :class:`~chronorec.layers.attention.ActivationUnit`):
the q-part once per sample, the k-part once per DISTINCT (item, side...) tuple in the batch and
once per temporal table row (``distinct_history`` and the temporal encoding's ``project_history``;
~4x fewer rows than positions on Amazon), and
only ``q*k`` per position. Unit, weight normalisation and pooling then run as one blocked autograd
Function (:func:`~chronorec.layers.activation_pool.fused_activation_pool`) that reads behaviors
and key parts from those distinct-row tables, so no ``[B, L, D]`` or ``[B, L, H]`` tensor is built
(prelu units use the composed ops; ``bf16`` gives the blocks' GEMMs bfloat16 operands). Serving (``score_shared_history``) computes the
k-part once per history position for all candidates.

``explain``: ``attn_logit = z_i`` (with ``weight_norm="none"``, the raw weight ``s_i``);
``rep_norm = ||e~_i * v~_T||`` for DIN, ``||e~_i||`` for DIN' (TIN paper, Table 2).

Deviations from the paper: the DIN paper does not normalise the weights; its released code (which
the TIN paper follows) scales by 1/sqrt(D) and applies a masked softmax, the default here
(``weight_norm="none"`` gives the paper's unnormalised ``a_i = s_i``). Sigmoid activations as in
the code (Dice is available for the MLP tower, not for the activation unit, whose per-behavior
batch statistics would include padding).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.activation_pool import fused_activation_pool
from chronorec.layers.attention import ActivationUnit, attention_pool, masked_softmax, softmax_pool
from chronorec.layers.fused import gather_rows
from chronorec.models.base import Explanation, ModelOutput
from chronorec.models.ctr.common import CTRBase, PooledCTRConfig, config_preset, explanation, zero_pad
from chronorec.models.registry import register_model


class DINConfig(PooledCTRConfig):
    product: bool = True
    att_hidden: list[int] = Field(default_factory=lambda: [80, 40])
    att_activation: Literal["sigmoid", "relu", "prelu"] = "sigmoid"
    weight_norm: Literal["softmax", "none"] = "softmax"
    att_per_field: bool = Field(False, description="one activation unit per embedding field (item, category, ...), each attending over its own slice and pooling it, as torch-rechub's DIN does; default: one unit over the concatenated [item; category] embedding")
    bf16: bool = Field(False, description="the activation unit's GEMMs with bfloat16 operands (fp32 accumulation, activations and gradients): not bit-exact; DIN a median 1.29x faster (12 paired runs, 0.92-1.62x) on an AVX-512-BF16 CPU at the same AUC (ml-100k); meant for CPUs with bf16 instructions")


class DIN(CTRBase):
    """Deep Interest Network: activation-unit target attention over behaviors."""

    def __init__(self, schema: DatasetSchema, cfg: DINConfig) -> None:
        super().__init__(schema, cfg)
        if cfg.att_per_field:  # field f is columns [f*d, (f+1)*d) of the [item; side...] embedding
            d = self.embed.dim
            self.units = torch.nn.ModuleList(
                ActivationUnit(d, cfg.att_hidden, cfg.att_activation, bf16=cfg.bf16) for _ in self.embed.fields)
            self.slices = [slice(f * d, (f + 1) * d) for f in range(len(self.embed.fields))]
        else:
            self.unit = ActivationUnit(self.D, cfg.att_hidden, cfg.att_activation, bf16=cfg.bf16)
            self.units, self.slices = [self.unit], [slice(None)]
        self.proj = self.user_projection()
        self.mlp = self.head((3 if cfg.product else 2) * self.D)

    def _attention(self, e: Tensor, v: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(logits z [B, L], weights a [B, L])``; per-field units: each field's, averaged."""
        zs, as_ = [], []
        for unit, sl in zip(self.units, self.slices, strict=True):
            s = unit(v[..., sl], e[..., sl])  # [B, L]
            if self.cfg.weight_norm == "softmax":
                z = s / math.sqrt(unit.dim)
                zs.append(z)
                as_.append(masked_softmax(z, mask))
            else:
                zs.append(s)
                as_.append(zero_pad(s, mask))
        return torch.stack(zs).mean(0), torch.stack(as_).mean(0)

    def _logit(self, u: Tensor, v: Tensor, batch: Batch) -> Tensor:
        """Pooled interest ``u [B, D]`` and target ``v [B, D]`` -> logits ``[B]``."""
        u = self.proj(u)  # [B, D]
        feats = [u, v, u * v] if self.cfg.product else [u, v]
        return self.logit(self.mlp, torch.cat(feats, dim=-1), batch)

    def forward(self, batch: Batch) -> ModelOutput:
        # the activation unit's key part (W2 - W3) e~_i is linear: projected once per distinct behavior
        # (ptable, index) and temporal table row (dense); without a temporal encoding the behaviors
        # themselves stay a table of distinct rows too (ktable), never a [B, L, D] tensor
        distinct = self.embed.distinct_history(batch)  # ([U, D], [B, L]) or None
        e = ktable = index = None
        if distinct is not None and self.temporal.zero:
            ktable, index = distinct
            v = self.embed.target(batch)  # [B, D]
        else:
            e, v = self.encode(batch)  # [B, L, D], [B, D]
            if distinct is not None:
                index = distinct[1]
        pooled = [self._pool(unit, sl, batch, v, e, ktable, distinct, index)
                  for unit, sl in zip(self.units, self.slices, strict=True)]
        u = pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=-1)  # [B, D]
        return ModelOutput(logits=self._logit(u, v, batch))

    def _pool(self, unit: ActivationUnit, sl: slice, batch: Batch, v: Tensor, e: Tensor | None,
              ktable: Tensor | None, distinct: tuple[Tensor, Tensor] | None, index: Tensor | None) -> Tensor:
        """One unit's pooled interest over its slice ``sl`` of the embedding (all of it by default)."""
        wk = unit.key_weight()  # [H, d]
        v, e = v[:, sl].contiguous(), None if e is None else e[..., sl]  # views when sl is everything
        if ktable is not None:  # no temporal part: behaviors and key parts as distinct-row tables
            ktable = ktable[:, sl].contiguous()
            ptable, dense = ktable @ wk.T, None  # [U, H]
        elif distinct is not None:  # distinct semantic rows, plus the temporal table's rows projected
            ptable = distinct[0][:, sl] @ wk.T  # [U, H]
            w = wk.new_zeros(wk.shape[0], self.D)  # the unit's key weight widened to all D columns
            w[:, sl] = wk
            dense = self.temporal.project_history(batch, w)  # [B, L, H] or None
        else:  # no distinct rows: the key part is projected from e itself
            ptable = dense = None
        scale = 1 / math.sqrt(unit.dim)
        u = fused_activation_pool(unit, v, e, batch.mask, self.cfg.weight_norm, scale,
                                  ktable=ktable, ptable=ptable, index=index, dense=dense)
        if u is not None:
            return u
        # not fusable (prelu, tracing): the composed ops (under autocast with bf16)
        if e is None:
            e = gather_rows(ktable, index, padding=False)
        k_part = gather_rows(ptable, index, padding=False) if ptable is not None else None
        if dense is not None:
            k_part = dense if k_part is None else k_part + dense
        s = unit(v, e, k_part=k_part)  # [B, L]
        if self.cfg.weight_norm == "softmax":
            return softmax_pool(s * scale, e, batch.mask)  # [B, d], fused backward
        return attention_pool(zero_pad(s, batch.mask), e)

    def score_shared_history(self, batch: Batch) -> Tensor:
        """Serving: the key part once per history position, only ``q * k`` per (candidate, position)."""
        e, v, mask = self.encode_shared(batch)  # [L, D], [C, D], [L]
        pooled = []
        for unit, sl in zip(self.units, self.slices, strict=True):
            s = unit.shared(v[:, sl], e[:, sl])  # [C, L]
            m = mask.expand_as(s)
            a = masked_softmax(s / math.sqrt(unit.dim), m) if self.cfg.weight_norm == "softmax" else zero_pad(s, m)
            pooled.append(a @ e[:, sl])  # [C, d]
        return self._logit(torch.cat(pooled, dim=-1), v, batch)

    @torch.no_grad()
    def explain(self, batch: Batch) -> Explanation:
        e, v = self.encode(batch)
        z, _ = self._attention(e, v, batch.mask)
        rep = e * v.unsqueeze(1) if self.cfg.product else e  # [B, L, D]
        return explanation(batch.mask, z, rep)


register_model("din", config=DINConfig)(DIN)
register_model(
    "din_prime",
    config=config_preset(DINConfig, "DINPrimeConfig", product=False),
    summary="DIN': DIN without the target-behavior product in its representation.",
)(DIN)

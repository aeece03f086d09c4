"""BST — Behavior Sequence Transformer (Chen et al., DLP-KDD'19), as compared in the TIN paper.

Equations::

    s   = [e~_1 .. e~_H, v~_T]                 behaviors and the target as one sequence, with
                                               positions p (temporal="coe": p[i], target p[0])
    o   = TransformerEncoder(s)                bidirectional, padding masked
    pool="mean":   h = mean of o over the H behaviors and the target
    pool="target": h = o_T                     the target token's output
    y   = MLP([h, v~_T]) + b[x_T]

``explain`` (TIN paper, Table 2): ``attn_logit = <e~_i, v~_T> / sqrt(D)`` on the position-encoded
inputs and ``rep_norm = ||e~_i||`` (BST's representation is target-agnostic).

Deviations from the paper: BST concatenates (flattens) the outputs of a fixed-length sequence;
histories here have variable length, so the outputs are pooled (masked mean, FuxiCTR's choice)
instead. The target token is appended after the padded tail (index L) with the mask marking it
real, which is equivalent to placing it right after the last behavior because attention is
position-free apart from the added encodings. BST's own positions are bucketed time intervals
``t_T - t_i``; the TIN paper classifies it as COE, the default here (``temporal="ttet"`` gives the
original flavour). LeakyReLU 1024-512-256 MLP of the paper replaced by the shared head config.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.attention import dot_attention_logits, masked_mean
from chronorec.layers.temporal import TemporalKind
from chronorec.layers.transformer import TransformerEncoder
from chronorec.models.base import Explanation, ModelOutput
from chronorec.models.ctr.common import CTRBase, CTRConfig, explanation
from chronorec.models.registry import register_model


class BSTConfig(CTRConfig):
    temporal: TemporalKind = "coe"
    layers: int = Field(1, ge=1)
    heads: int = Field(8, ge=1)
    inner: int = Field(256, gt=0)
    pool: Literal["mean", "target"] = "mean"


class BST(CTRBase):
    """Behavior Sequence Transformer: self-attention over the behaviors and the target together."""

    def __init__(self, schema: DatasetSchema, cfg: BSTConfig) -> None:
        super().__init__(schema, cfg)
        self.encoder = TransformerEncoder(cfg.layers, self.D, cfg.heads, cfg.inner, cfg.dropout)
        self.mlp = self.head(2 * self.D)

    def forward(self, batch: Batch) -> ModelOutput:
        e, v = self.encode(batch)  # [B, L, D], [B, D]
        s = torch.cat([e, v.unsqueeze(1)], dim=1)  # [B, L+1, D]
        mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch), 1)], dim=1)  # [B, L+1]
        o = self.encoder(s, mask, causal=False)  # [B, L+1, D]
        h = masked_mean(o, mask) if self.cfg.pool == "mean" else o[:, -1]  # [B, D]
        return ModelOutput(logits=self.logit(self.mlp, torch.cat([h, v], dim=-1), batch))

    @torch.no_grad()
    def explain(self, batch: Batch) -> Explanation:
        e, v = self.encode(batch)
        z = dot_attention_logits(v, e)  # [B, L]
        return explanation(batch.mask, z, e)


register_model("bst", config=BSTConfig)(BST)

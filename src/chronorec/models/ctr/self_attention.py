"""SASRec and BERT4Rec in CTR form (Kang & McAuley ICDM'18; Sun et al. CIKM'19), as in the TIN paper.

Equations::

    x_i = Dropout(LayerNorm(e_i + p[i]))       learned chronological positions (temporal="coe")
    o   = TransformerEncoder(x, causal)        post-LN blocks, SASRec/RecBole layout
    sasrec_ctr:   h = o_H                      causal; the last real behavior's output
    bert4rec_ctr: h = (1/H) sum_i o_i          bidirectional; masked mean of the outputs
    y = MLP([h, v~_T, h * v~_T]) + b[x_T]

``explain`` (TIN paper, Table 2): no attention term; ``rep_norm = ||(e_i + p_COE(i)) * v~_T||``,
the encoder input times the target.

Deviations from the paper: both are next-item models scored by ``<h, v>``; the TIN paper compares
their CTR form, MLP over ``[h, v, h*v]`` (Table 5). For BERT4Rec the CTR form has no [MASK]
token to read, so the bidirectional outputs are mean-pooled (keeping it attention-free towards the
target, TIN code ✓✗✓); ``pool="last"`` reads the last output instead. The target gets the temporal
encoding's origin row (``p[0]``) like every other model here.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.attention import masked_mean
from chronorec.layers.dropout import Dropout
from chronorec.layers.temporal import TemporalKind
from chronorec.layers.transformer import TransformerEncoder
from chronorec.models.base import Explanation, ModelOutput
from chronorec.models.ctr.common import CTRBase, CTRConfig, config_preset, explanation
from chronorec.models.ctr.gru4rec import last_real
from chronorec.models.registry import register_model


class SelfAttentionCTRConfig(CTRConfig):
    temporal: TemporalKind = "coe"
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    inner: int = Field(256, gt=0)
    causal: bool = True
    pool: Literal["last", "mean"] = "last"


class SelfAttentionCTR(CTRBase):
    """Self-attention over behaviors (SASRec: causal, last output; BERT4Rec: bidirectional, mean)."""

    def __init__(self, schema: DatasetSchema, cfg: SelfAttentionCTRConfig) -> None:
        super().__init__(schema, cfg)
        self.ln = nn.LayerNorm(self.D)
        self.drop = Dropout(cfg.dropout)
        self.encoder = TransformerEncoder(cfg.layers, self.D, cfg.heads, cfg.inner, cfg.dropout)
        self.mlp = self.head(3 * self.D)

    def forward(self, batch: Batch) -> ModelOutput:
        x, v = self.encode(batch)  # [B, L, D], [B, D]
        o = self.encoder(self.drop(self.ln(x)), batch.mask, causal=self.cfg.causal)  # [B, L, D]
        h = last_real(o, batch.lengths) if self.cfg.pool == "last" else masked_mean(o, batch.mask)  # [B, D]
        return ModelOutput(logits=self.logit(self.mlp, torch.cat([h, v, h * v], dim=-1), batch))

    @torch.no_grad()
    def explain(self, batch: Batch) -> Explanation:
        x, v = self.encode(batch)  # [B, L, D], [B, D]
        return explanation(batch.mask, None, x * v.unsqueeze(1))


register_model(
    "sasrec_ctr",
    config=SelfAttentionCTRConfig,
    summary="SASRec (CTR form): causal self-attention over behaviors; the last output meets the target.",
)(SelfAttentionCTR)
register_model(
    "bert4rec_ctr",
    config=config_preset(SelfAttentionCTRConfig, "BERT4RecCTRConfig", causal=False, pool="mean"),
    summary="BERT4Rec (CTR form): bidirectional self-attention over behaviors, mean-pooled, meets the target.",
)(SelfAttentionCTR)

"""Average-pooling baselines of the TIN paper (Table 5), from DIN's released code.

Equations::

    m = (1/H) sum_i e~_i                    masked mean over real behaviors (0 for H = 0)
    m' = Linear_D(scale * m + shift)        affine_u, as in the DIN code
    avgpool_concat:   y = MLP([m', v~_T]) + b[x_T]
    avgpool_product:  y = MLP([m', v~_T, m' * v~_T]) + b[x_T]

``explain``: no attention term; ``rep_norm = ||e~_i * v~_T||`` (product) or ``||e~_i||`` (concat).

Deviations from the paper: none known beyond the shared ``affine_u`` and item bias of the DIN/TIN
code base; ``temporal`` (default none) may add any temporal encoding to e~ and v~.
"""

from __future__ import annotations

import torch

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.attention import masked_mean
from chronorec.models.base import Explanation, ModelOutput
from chronorec.models.ctr.common import CTRBase, PooledCTRConfig, config_preset, explanation
from chronorec.models.registry import register_model


class AvgPoolConfig(PooledCTRConfig):
    product: bool = True


class AvgPool(CTRBase):
    """Average pooling of behaviors, concatenated (optionally with a product) with the target."""

    def __init__(self, schema: DatasetSchema, cfg: AvgPoolConfig) -> None:
        super().__init__(schema, cfg)
        self.proj = self.user_projection()
        self.mlp = self.head((3 if cfg.product else 2) * self.D)

    def forward(self, batch: Batch) -> ModelOutput:
        e, v = self.encode(batch)  # [B, L, D], [B, D]
        m = self.proj(masked_mean(e, batch.mask))  # [B, D]
        feats = [m, v, m * v] if self.cfg.product else [m, v]
        return ModelOutput(logits=self.logit(self.mlp, torch.cat(feats, dim=-1), batch))

    @torch.no_grad()
    def explain(self, batch: Batch) -> Explanation:
        e, v = self.encode(batch)
        rep = e * v.unsqueeze(1) if self.cfg.product else e  # [B, L, D]
        return explanation(batch.mask, None, rep)


register_model(
    "avgpool_product", config=AvgPoolConfig, summary="AvgPool&Product: mean of behaviors, concatenated with the target and their product."
)(AvgPool)
register_model(
    "avgpool_concat",
    config=config_preset(AvgPoolConfig, "AvgPoolConcatConfig", product=False),
    summary="AvgPool&Concat: mean of behaviors concatenated with the target (Table 1's reference row).",
)(AvgPool)

"""GRU4Rec in CTR form (Hidasi et al., ICLR'16), as the TIN paper uses it (Table 5).

Equations::

    h_1 .. h_H = GRU(e~_1 .. e~_H)            recurrent state over the behaviors, oldest first
    h = h_H                                   the state after the last real behavior (0 for H = 0)
    y = MLP([h, v~_T, h * v~_T]) + b[x_T]

Right padding makes packing unnecessary: the GRU is causal, so its output at position ``len - 1``
never sees the padded tail; it is gathered directly.

``explain``: no attention term; ``rep_norm = ||h_i * v~_T||`` (TIN paper, Table 5: ``<h_i, v_T>``).

Deviations from the paper: GRU4Rec is a session-based next-item model; this is the pointwise CTR
form of the TIN paper's comparison (final state with a target product, MLP head).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.models.base import Explanation, ModelOutput
from chronorec.models.ctr.common import CTRBase, CTRConfig, explanation
from chronorec.models.registry import register_model


def last_real(x: Tensor, lengths: Tensor) -> Tensor:
    """``x[b, len_b - 1]``, or 0 for rows with no behavior. ``[B, L, D], [B] -> [B, D]``."""
    idx = (lengths - 1).clamp(min=0)  # [B]
    out = x.gather(1, idx.view(-1, 1, 1).expand(-1, 1, x.shape[-1])).squeeze(1)  # [B, D]
    return out * (lengths > 0).unsqueeze(-1).to(out.dtype)


class GRU4RecCTRConfig(CTRConfig):
    layers: int = Field(1, ge=1)


class GRU4RecCTR(CTRBase):
    """GRU over behaviors; the final state meets the target through concat and product."""

    def __init__(self, schema: DatasetSchema, cfg: GRU4RecCTRConfig) -> None:
        super().__init__(schema, cfg)
        self.gru = nn.GRU(self.D, self.D, num_layers=cfg.layers, batch_first=True,
                          dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.mlp = self.head(3 * self.D)

    def states(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(h [B, L, D] zero at padding, v~ [B, D])``."""
        e, v = self.encode(batch)  # [B, L, D], [B, D]
        h, _ = self.gru(e)  # [B, L, D]
        return h * batch.mask.unsqueeze(-1).to(h.dtype), v

    def forward(self, batch: Batch) -> ModelOutput:
        hs, v = self.states(batch)
        h = last_real(hs, batch.lengths)  # [B, D]
        return ModelOutput(logits=self.logit(self.mlp, torch.cat([h, v, h * v], dim=-1), batch))

    @torch.no_grad()
    def explain(self, batch: Batch) -> Explanation:
        hs, v = self.states(batch)
        return explanation(batch.mask, None, hs * v.unsqueeze(1))


register_model("gru4rec_ctr", config=GRU4RecCTRConfig)(GRU4RecCTR)

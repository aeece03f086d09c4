"""Test models with known ``explain`` terms, so the learned-correlation pipeline can be checked
against closed-form values."""

from __future__ import annotations

import torch
from pydantic import BaseModel
from torch import nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.models.base import CTRModel, Explanation, ModelOutput


class OracleConfig(BaseModel):
    strength: float = 2.5
    decay: float = 0.7
    use_position: bool = True  # False: position-blind (like DIN), constant same-category curve
    with_rep: bool = False  # also return a representation norm of 2.0 everywhere


class Oracle(CTRModel):
    """Attention logit = the planted weight of a same-category behavior: ``strength * decay^(p-1)``."""

    def __init__(self, schema: DatasetSchema | None = None, cfg: OracleConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or OracleConfig()
        self.bias = nn.Parameter(torch.zeros(1))

    def _z(self, batch: Batch) -> torch.Tensor:
        pos = batch.positions_from_recent().double()  # [B, L]
        same = (batch.hist_side["category"] == batch.target_side["category"][:, None]) & batch.mask
        w = self.cfg.strength * self.cfg.decay ** (pos - 1) if self.cfg.use_position else \
            torch.full_like(pos, self.cfg.strength)
        return torch.where(same, w, torch.zeros_like(w))

    def forward(self, batch: Batch) -> ModelOutput:
        z = self._z(batch) * (batch.positions_from_recent() <= 10)
        return ModelOutput(logits=(self.bias - 1.0 + z.sum(1)).float())

    def explain(self, batch: Batch) -> Explanation:
        rep = torch.full(batch.hist_item.shape, 2.0) if self.cfg.with_rep else None
        return Explanation(attn_logit=self._z(batch), rep_norm=rep)

"""What every model returns, and the two task interfaces.

A model is a plain ``nn.Module`` built from ``(schema, config)``: no dataset, optimizer, device or
loss inside. CTR models map a :class:`Batch` to one logit per row. Next-item models map a batch
to hidden states and expose the item embedding table used to score all items.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from chronorec.data.batch import Batch


@dataclass
class ModelOutput:
    logits: Tensor  # CTR: [B] logits. Next-item: [B, L, D] hidden states (or [B, D] at eval)
    aux_loss: Tensor | None = None  # e.g. DIEN's auxiliary loss, added to the task loss by the trainer


@dataclass
class Explanation:
    """Per-behavior terms for the semantic-temporal correlation analysis (TIN paper, Table 2).

    A term a model does not have is None (SASRec has no target-attention term, DIN no position term).
    """

    attn_logit: Tensor | None  # [B, L] pre-softmax target-attention logits at real positions
    rep_norm: Tensor | None  # [B, L] L2 norm of each behavior's representation as the model uses it


class CTRModel(nn.Module):
    """Base class of pointwise CTR models: ``forward(batch) -> ModelOutput(logits=[B])``."""

    task = "ctr"

    def forward(self, batch: Batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, batch: Batch) -> Explanation:
        """Correlation-analysis terms; models without attention or representation terms raise."""
        raise NotImplementedError(f"{type(self).__name__} has no attention or representation term")


class NextItemModel(nn.Module):
    """Base class of next-item models.

    ``forward(batch)`` returns hidden states ``[B, L, D]`` (one per position, causal where the
    model is causal); ``item_weights()`` returns the ``[n_items, D]`` table the head scores against
    (row 0 = padding, never recommended).
    """

    task = "next_item"

    def forward(self, batch: Batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_weights(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

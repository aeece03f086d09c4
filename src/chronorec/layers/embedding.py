"""Semantic embedding of behaviors and targets: ``e = [item_emb(x) ; side_emb_1(x) ; ...]``.

One table per field (item, then every ``schema.side_features`` entry), each ``dim`` wide, shared by
the history and the target, so ``out_dim = dim * (1 + len(side_features))`` (64 per part with a
category gives the paper's D = 128). Id 0 is padding (``padding_idx``: a zero row that receives no
gradient); history rows are additionally multiplied by the mask, so whatever ids sit in the padded
tail the result there is exactly zero.

Initialisation is N(0, 0.05^2) rather than torch's N(0, 1): the released TF code uses small Glorot
tables, and with N(0, 1) TIN's ``<e, v>/sqrt(D)`` logits start in the saturated region of the softmax.

Example::

    >>> from chronorec.data.batch import synthetic_batch
    >>> from chronorec.data.schema import DatasetSchema
    >>> schema = DatasetSchema(name="t", protocol="ctr-leave-one-out", task="ctr", n_users=10,
    ...     n_items=48, n_events=100, vocab_sizes={"user": 12, "item": 50, "category": 7},
    ...     side_features=["category"])
    >>> emb = FeatureEmbedding(schema, dim=4)
    >>> batch = synthetic_batch(batch_size=3, max_len=5)
    >>> emb.history(batch).shape, emb.target(batch).shape      # [B, L, D], [B, D]
    (torch.Size([3, 5, 8]), torch.Size([3, 8]))
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import PAD, DatasetSchema


class FeatureEmbedding(nn.Module):
    """``[item ; side features...]`` embeddings. ``history(batch) -> [B, L, D]``, ``target(batch) -> [B, D]``.

    ``target`` also accepts per-position next-item targets (``[B, L]`` ids -> ``[B, L, D]``).
    """

    def __init__(self, schema: DatasetSchema, dim: int, init_std: float = 0.05) -> None:
        super().__init__()
        self.fields = ["item", *schema.side_features]
        missing = [f for f in self.fields if f not in schema.vocab_sizes]
        if missing:
            raise ValueError(f"schema has no vocabulary size for {missing}")
        self.tables = nn.ModuleDict(
            {f: nn.Embedding(schema.vocab_sizes[f], dim, padding_idx=PAD) for f in self.fields}
        )
        for t in self.tables.values():
            nn.init.normal_(t.weight, std=init_std)
            with torch.no_grad():
                t.weight[PAD].zero_()
        self.dim = dim
        self.out_dim = dim * len(self.fields)

    def embed(self, item: Tensor, side: dict[str, Tensor]) -> Tensor:
        """Ids of any shape ``[*S]`` (item plus every side feature) -> ``[*S, D]``."""
        parts = [self.tables["item"](item)]
        parts += [self.tables[f](side[f]) for f in self.fields[1:]]
        return torch.cat(parts, dim=-1)  # [*S, D]

    def history(self, batch: Batch) -> Tensor:
        """Behavior embeddings, exactly zero at padded positions. ``-> [B, L, D]``"""
        e = self.embed(batch.hist_item, batch.hist_side)  # [B, L, D]
        return e * batch.mask.unsqueeze(-1).to(e.dtype)

    def target(self, batch: Batch) -> Tensor:
        """Target embedding. ``-> [B, D]`` (or ``[B, L, D]`` for per-position targets)."""
        return self.embed(batch.target_item, batch.target_side)

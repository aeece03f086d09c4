"""Semantic embedding of behaviors and targets: ``e = [item_emb(x) ; side_emb_1(x) ; ...]``.

One table per field (item, then every ``schema.side_features`` entry), each ``dim`` wide, shared by
the history and the target, so ``out_dim = dim * (1 + len(side_features))`` (64 per part with a
category gives the paper's D = 128). Id 0 is padding: a zero row that receives no gradient.

For speed the per-field tables are stored as one ``[sum(vocab), dim]`` parameter with per-field row
offsets, so ``[item ; side...]`` is a single gather of ``[B, L, F]`` ids viewed as ``[B, L, F*dim]``
(no concat copy, one backward scatter). :meth:`FeatureEmbedding.field_weight` returns one field's
table as a view. Padded history positions are handled on the *ids* (``where(mask, id, 0)``,
``[B, L]``) rather than by multiplying ``[B, L, D]`` outputs by the mask, which saves a full pass
over the behavior tensor in both directions and makes junk ids in the padded tail irrelevant.
The padding rows are zero at init and get no gradient; models still never rely on that (every
pooling and attention masks), so re-initialising all weights cannot leak padding into outputs.

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

import math

import torch
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import PAD, DatasetSchema
from chronorec.layers.fused import gather_rows


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
        sizes = [schema.vocab_sizes[f] for f in self.fields]
        offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0)  # [F] first row of each field
        self.register_buffer("offsets", offsets, persistent=False)
        self.sizes = sizes
        # row 0 is the item field's padding id and doubles as the shared zero row for every field
        self.weight = nn.Parameter(torch.randn(sum(sizes), dim) * init_std)
        with torch.no_grad():
            self.weight[offsets] = 0.0  # every field's id 0
        self.dim = dim
        self.out_dim = dim * len(self.fields)
        # mixed-radix key of an id tuple (item, side...), for distinct_history's torch.unique;
        # None when the product of vocabulary sizes does not fit in int64
        radix = [math.prod(sizes[k + 1 :]) for k in range(len(sizes))]
        self.radix = radix if math.prod(sizes) < 2**62 else None

    def field_weight(self, name: str) -> Tensor:
        """The ``[vocab, dim]`` table of one field (a view of the shared parameter)."""
        k = self.fields.index(name)
        return self.weight[int(self.offsets[k]) : int(self.offsets[k]) + self.sizes[k]]

    def embed(self, item: Tensor, side: dict[str, Tensor], mask: Tensor | None = None) -> Tensor:
        """Ids of any shape ``[*S]`` (item plus every side feature) -> ``[*S, D]``; ``mask`` zeroes rows."""
        ids = torch.stack([item, *(side[f] for f in self.fields[1:])], dim=-1)  # [*S, F]
        keep = ids != PAD if mask is None else (ids != PAD) & mask.unsqueeze(-1)  # [*S, F]
        rows = torch.where(keep, ids + self.offsets, 0)  # [*S, F]; 0 = the zero row
        out = gather_rows(self.weight, rows)  # [*S, F, dim]
        return out.flatten(-2)  # [*S, D]

    def distinct_history(self, batch: Batch) -> tuple[Tensor, Tensor] | None:
        """``(emb [U, D], inverse [B, L])`` with ``history(batch) == emb[inverse]``: each distinct id
        tuple of the batch embedded once (padded positions map to the zero tuple's row, which is
        zero). None when the ids cannot be packed into one integer key.

        A batch repeats items a lot (about 4 positions per distinct (item, category) on Amazon
        Grocery), so anything linear in the history (DIN's key part ``history @ W.T``) can be
        computed on the ``U`` distinct rows and gathered, instead of on all ``B*L`` positions."""
        if self.radix is None:
            return None
        ids = torch.stack([batch.hist_item, *(batch.hist_side[f] for f in self.fields[1:])], dim=-1)  # [B, L, F]
        ids = torch.where(batch.mask.unsqueeze(-1), ids, 0)
        key = (ids * torch.tensor(self.radix, device=ids.device)).sum(-1)  # [B, L]
        uniq, inverse = torch.unique(key, return_inverse=True)  # [U], [B, L]
        sizes = torch.tensor(self.sizes, device=ids.device)
        parts = (uniq.unsqueeze(-1) // torch.tensor(self.radix, device=ids.device)) % sizes  # [U, F]
        rows = torch.where(parts != PAD, parts + self.offsets, 0)  # [U, F]
        return gather_rows(self.weight, rows).flatten(-2), inverse  # [U, D], [B, L]

    def history(self, batch: Batch) -> Tensor:
        """Behavior embeddings; padded positions read the zero row whatever their ids. ``-> [B, L, D]``"""
        return self.embed(batch.hist_item, batch.hist_side, batch.mask)

    def target(self, batch: Batch) -> Tensor:
        """Target embedding. ``-> [B, D]`` (or ``[B, L, D]`` for per-position targets)."""
        return self.embed(batch.target_item, batch.target_side)

"""The typed batch every model consumes.

Histories are **right-padded**: a row's real behaviors sit at positions ``0 .. len-1`` in
chronological order (oldest first, most recent at ``len-1``) and padding (id 0) fills the rest.
Time stays raw (seconds) in the batch; temporal layers bucket it with the bin edges saved in the
dataset schema, so training, evaluation and serving share one code path.

CTR and next-item evaluation batches carry one target per row (``target_item: [B]``). Next-item
*training* batches carry one target per position (``target_item: [B, L]``: the item that follows
position j, 0 where there is none), so one pass over a sequence trains every prefix at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor


@dataclass
class Batch:
    hist_item: Tensor  # [B, L] int64, 0 = padding
    hist_side: dict[str, Tensor]  # name -> [B, L] int64 ids of side features (e.g. "category")
    hist_ts: Tensor  # [B, L] int64 seconds, 0 at padding
    hist_gap: Tensor  # [B, L] int64 seconds since the user's previous event; -1 first event / padding
    hist_calendar: Tensor  # [B, L, 3] int64: hour+1, weekday+1 (Mon=1), month (1-12); 0 at padding
    mask: Tensor  # [B, L] bool, True at real behaviors
    lengths: Tensor  # [B] int64, number of real behaviors (may be 0)
    target_item: Tensor  # [B] int64, or [B, L] for next-item training
    target_side: dict[str, Tensor]  # name -> same shape as target_item
    target_ts: Tensor  # same shape as target_item, int64 seconds
    label: Tensor  # [B] float32 click label (CTR); ones for next-item
    user: Tensor  # [B] int64 user ids
    group: Tensor  # [B] int64 activity group (0 = head, ..., last = tail)
    index: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))  # [B] row in split

    def __len__(self) -> int:
        return int(self.hist_item.shape[0])

    @property
    def max_len(self) -> int:
        return int(self.hist_item.shape[1])

    @property
    def per_position_targets(self) -> bool:
        return self.target_item.dim() == 2

    def positions_from_recent(self) -> Tensor:
        """[B, L] int64: TTE-P index H - i + 1 (most recent real behavior = 1), 0 at padding."""
        L = self.max_len
        ar = torch.arange(L, device=self.hist_item.device)
        pos = self.lengths[:, None] - ar[None, :]  # [B, L]
        return torch.where(self.mask, pos, torch.zeros_like(pos))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict):
                out[f.name] = {k: t.to(device, non_blocking=non_blocking) for k, t in v.items()}
            else:
                out[f.name] = v.to(device, non_blocking=non_blocking)
        return Batch(**out)

    def select(self, rows: Tensor) -> Batch:
        """A sub-batch of the given row indices (used for PIN's stratified groups)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict):
                out[f.name] = {k: t[rows] for k, t in v.items()}
            elif v.numel() == 0:
                out[f.name] = v
            else:
                out[f.name] = v[rows]
        return Batch(**out)


def synthetic_batch(
    batch_size: int = 8,
    max_len: int = 12,
    n_items: int = 50,
    side_vocab: dict[str, int] | None = None,
    next_item: bool = False,
    seed: int = 0,
    min_len: int = 1,
) -> Batch:
    """A random but well-formed batch, for model unit tests (ids in [2, vocab), right-padded)."""
    g = torch.Generator().manual_seed(seed)
    side_vocab = {"category": 7} if side_vocab is None else side_vocab
    B, L = batch_size, max_len
    lengths = torch.randint(min_len, L + 1, (B,), generator=g)
    lengths[0] = L  # at least one full row
    ar = torch.arange(L)
    mask = ar[None, :] < lengths[:, None]
    hist_item = torch.randint(2, n_items, (B, L), generator=g) * mask
    hist_side = {k: torch.randint(2, v, (B, L), generator=g) * mask for k, v in side_vocab.items()}
    start = 1_300_000_000
    steps = torch.randint(0, 5 * 86_400, (B, L), generator=g)
    hist_ts = (start + torch.cumsum(steps, dim=1)) * mask
    gap = torch.where(ar[None, :] == 0, torch.full_like(steps, -1), steps)
    hist_gap = torch.where(mask, gap, torch.full_like(gap, -1))
    last_ts = hist_ts.max(dim=1).values
    cal = torch.stack(
        [torch.randint(1, 25, (B, L), generator=g), torch.randint(1, 8, (B, L), generator=g),
         torch.randint(1, 13, (B, L), generator=g)], dim=-1,
    ) * mask[..., None]
    if next_item:
        tgt = torch.zeros(B, L, dtype=torch.long)
        tgt[mask] = torch.randint(2, n_items, (int(mask.sum()),), generator=g)
        tside = {k: torch.randint(2, v, (B, L), generator=g) * mask for k, v in side_vocab.items()}
        tts = hist_ts + 3600 * mask
    else:
        tgt = torch.randint(2, n_items, (B,), generator=g)
        tside = {k: torch.randint(2, v, (B,), generator=g) for k, v in side_vocab.items()}
        tts = last_ts + torch.randint(0, 86_400, (B,), generator=g)
    return Batch(
        hist_item=hist_item, hist_side=hist_side, hist_ts=hist_ts, hist_gap=hist_gap,
        hist_calendar=cal, mask=mask, lengths=lengths, target_item=tgt, target_side=tside,
        target_ts=tts, label=torch.randint(0, 2, (B,), generator=g).float(),
        user=torch.arange(B) + 2, group=torch.randint(0, 2, (B,), generator=g),
        index=torch.arange(B),
    )

"""Batches by index gathers: :class:`BatchLoader` over a prepared split, and
:func:`batch_from_histories` for serving. No per-sample Python anywhere.

A loader row is an event slice ``[start, end)`` (the history) plus its target. In **sample mode**
(CTR splits, next-item valid/test) the row is a sample; its history keeps the most recent
``max_len`` events. In **sequence mode** (next-item train) a train sequence ``[s, e)`` has inputs
``events[s : e-1]`` and per-position targets ``events[s+1 : e]``; a sequence with more than
``max_len`` targets is cut, from its end, into windows of ``max_len`` inputs that advance by
``window_stride`` (default ``max_len``: disjoint windows; a smaller stride gives later windows
``max_len - stride`` positions of context whose targets are 0, so every target is trained once);
``max_windows`` caps a sequence's windows by growing its own stride (few windows for long histories,
one per target for short ones). Windows are computed vectorised at init.

One batch: ``lengths = min(end - start, max_len)``, ``L`` = the batch's own longest row, a 2-D
index ``start + arange(L)`` gathered from the flat arrays with a mask (right padding).

Epoch order (deterministic per ``(seed, epoch)``): a permutation when ``shuffle``; then the DDP
share of this rank, ``order[rank::world_size]`` after padding the order to a multiple of
``world_size`` by wrapping (``drop_last=False``: every row is covered, at most ``world_size - 1``
rows repeat, detectable by ``Batch.index``) or truncating it (``drop_last=True``: shares are
disjoint); then optional length bucketing (stable sort by length within chunks of
``bucket_chunk`` batches, then batch order shuffled). Without ``shuffle`` (evaluation) bucketing
sorts the whole share by length: batches come shortest first, each padded only to its own longest
history, and ``Batch.index`` still names every row. ``iter_epoch(epoch, start_batch=k)`` resumes
at batch ``k`` with exactly the batches an uninterrupted epoch would have produced.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch

from chronorec.data.batch import Batch
from chronorec.data.dataset import EventStore, PreparedDataset
from chronorec.data.schema import UNK
from chronorec.data.timefeatures import calendar_fields, ragged_arange
from chronorec.errors import ChronorecError


def _t(x: np.ndarray) -> torch.Tensor:
    # dtype conversion in numpy: torch's own int32/int8 -> int64 casts are several times slower here
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))


def _rows(
    ev: EventStore, x: np.ndarray, first: np.ndarray, L: int, mask: np.ndarray, fill: int = 0
) -> np.ndarray:
    """[B, L] int64: the L events from each ``first`` (a row copy per sample), ``fill`` outside ``mask``."""
    out = ev.window(x)[first, :L].astype(np.int64)
    if fill == 0:
        out *= mask
    else:
        np.copyto(out, fill, where=~mask)
    return out


def gather_batch(
    ev: EventStore,
    start: np.ndarray,
    end: np.ndarray,
    max_len: int,
    *,
    target_item: np.ndarray | None = None,
    target_side: Mapping[str, np.ndarray] | None = None,
    target_ts: np.ndarray | None = None,
    target_from: np.ndarray | None = None,
    label: np.ndarray | None = None,
    user: np.ndarray | None = None,
    group: np.ndarray | None = None,
    index: np.ndarray | None = None,
) -> Batch:
    """A Batch of histories ``[start, end)`` (most recent ``max_len`` kept) from flat event arrays.

    With ``target_from`` (sequence mode) targets are per position: position p of a row predicts
    event ``first + p + 1`` when that row is ``>= target_from`` and inside the row, else 0.
    Otherwise ``target_item`` / ``target_side`` / ``target_ts`` give one target per row.
    """
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    B = start.size
    lengths = np.minimum(end - start, min(max_len, ev.width))
    first = end - lengths
    L = max(1, int(lengths.max()) if B else 1)
    mask = np.arange(L) < lengths[:, None]  # [B, L]
    cal = ev.window(ev.calendar)[first, :, :L]  # [B, 3, L] int8
    cal = np.ascontiguousarray((cal * mask[:, None, :]).transpose(0, 2, 1), dtype=np.int64)  # [B, L, 3]
    if target_from is not None:
        nxt = first + 1
        tmask = mask & (nxt[:, None] + np.arange(L) >= np.asarray(target_from, dtype=np.int64)[:, None])
        t_item = torch.from_numpy(_rows(ev, ev.item, nxt, L, tmask))
        t_side = {s: torch.from_numpy(_rows(ev, v, nxt, L, tmask)) for s, v in ev.side.items()}
        t_ts = torch.from_numpy(_rows(ev, ev.ts, nxt, L, tmask))
    else:
        assert target_item is not None and target_ts is not None
        t_item = _t(target_item)
        t_side = {s: _t(v) for s, v in (target_side or {}).items()}
        t_ts = _t(target_ts)
    return Batch(
        hist_item=torch.from_numpy(_rows(ev, ev.item, first, L, mask)),
        hist_side={s: torch.from_numpy(_rows(ev, v, first, L, mask)) for s, v in ev.side.items()},
        hist_ts=torch.from_numpy(_rows(ev, ev.ts, first, L, mask)),
        hist_gap=torch.from_numpy(_rows(ev, ev.gap, first, L, mask, fill=-1)),
        hist_calendar=torch.from_numpy(cal),
        mask=torch.from_numpy(mask),
        lengths=_t(lengths),
        target_item=t_item,
        target_side=t_side,
        target_ts=t_ts,
        label=torch.from_numpy(
            np.ascontiguousarray(label if label is not None else np.ones(B), dtype=np.float32)
        ),
        user=_t(user if user is not None else np.full(B, UNK)),
        group=_t(group if group is not None else np.zeros(B)),
        index=_t(index if index is not None else np.arange(B)),
    )


def sequence_windows(
    start: np.ndarray, end: np.ndarray, max_len: int, stride: int | None = None, max_windows: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows of train sequences: (sequence row, input start, input end, first target row).

    Sequence ``[s, e)`` has targets at rows ``s+1 .. e-1``; window k (from the end) has inputs
    ``[max(s, b - max_len), b)`` with ``b = e - 1 - k * stride`` and trains targets ``>= b - stride + 1``.
    ``max_windows``: a sequence's own stride grows to ``ceil(targets / max_windows)`` (at most
    ``max_len``), so none has more than ``max_windows`` windows unless it has more than
    ``max_windows * max_len`` targets.
    """
    stride = max_len if stride is None else stride
    if not 1 <= stride <= max_len:
        raise ChronorecError(f"window stride must be in 1..max_len ({max_len}), got {stride}")
    if max_windows is not None and max_windows < 1:
        raise ChronorecError(f"max_windows must be >= 1, got {max_windows}")
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    n_targets = np.maximum(end - start - 1, 0)
    own = np.full(start.size, stride, dtype=np.int64)  # each sequence's stride
    if max_windows is not None:
        own = np.clip(-(-n_targets // max_windows), stride, max_len)
    k_per = -(-n_targets // own)  # ceil
    seq = np.repeat(np.arange(start.size, dtype=np.int64), k_per)
    k = ragged_arange(np.zeros(start.size, dtype=np.int64), k_per)
    step = own[seq]
    b = end[seq] - 1 - k * step
    a = np.maximum(start[seq], b - max_len)
    c = np.maximum(a + 1, b - step + 1)
    return seq, a, b, c


class BatchLoader:
    """Deterministic, resumable, shardable batches of one split of a :class:`PreparedDataset`.

    ``max_len`` caps history length (None = the longest stored history); ``sequence`` selects
    sequence mode (None = automatically for the train split of a next-item dataset).
    """

    def __init__(
        self,
        ds: PreparedDataset,
        split: str,
        *,
        batch_size: int = 1024,
        max_len: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        bucket: bool = False,
        bucket_chunk: int = 50,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        sequence: bool | None = None,
        window_stride: int | None = None,
        groups: Sequence[int] | None = None,
        max_windows: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ChronorecError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ChronorecError(f"rank {rank} is outside world size {world_size}")
        self.ds, self.split = ds, split
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.bucket, self.bucket_chunk, self.drop_last = bucket, max(1, bucket_chunk), drop_last
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self.max_len = min(int(max_len or ds.schema.max_history_len), ds.events.width - 1) or 1
        s = ds.samples(split)
        self.samples = s
        if sequence is None:
            sequence = ds.schema.task == "next_item" and split == "train"
        self.sequence = sequence
        if sequence:
            seq, a, b, c = sequence_windows(s["hist_start"], s["hist_end"], self.max_len, window_stride, max_windows)
            self.row_sample, self.start, self.end, self.target_from = seq, a, b, c
        else:
            self.row_sample = np.arange(s["user"].size, dtype=np.int64)
            self.start, self.end, self.target_from = s["hist_start"], s["hist_end"], None
        if groups is not None:  # only the rows of these activity groups (head-only / tail-only training)
            keep = np.isin(self.row_groups(), np.asarray(list(groups), dtype=np.int64))
            if not keep.any():
                raise ChronorecError(f"split {split!r} has no rows of activity group(s) {list(groups)}")
            self.row_sample, self.start, self.end = self.row_sample[keep], self.start[keep], self.end[keep]
            if self.target_from is not None:
                self.target_from = self.target_from[keep]
        self.lengths = np.minimum(self.end - self.start, self.max_len)

    def row_terms(self) -> np.ndarray:
        """``[n_rows]`` target positions each row trains: in sequence mode its window's targets from
        ``target_from`` to its end (the whole window with disjoint windows, at most ``window_stride``
        with overlapping ones), else one."""
        if self.target_from is None:
            return np.ones(self.n_rows, dtype=np.int64)
        return np.asarray(self.end) - np.asarray(self.target_from) + 1

    def row_groups(self) -> np.ndarray:
        """``[n_rows]`` activity group of each loader row (its user's, ``ds.group_of_user``)."""
        return self.ds.group_of_user[self.samples["user"][self.row_sample]]

    @property
    def n_rows(self) -> int:
        """Loader rows per epoch over all ranks (samples, or windows in sequence mode)."""
        return int(self.start.size)

    def _share(self) -> int:
        n, w = self.n_rows, self.world_size
        return n // w if self.drop_last else -(-n // w)

    def __len__(self) -> int:
        per = self._share()
        return per // self.batch_size if self.drop_last else -(-per // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batch_rows(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of loader rows for ``epoch`` (what :meth:`iter_epoch` gathers)."""
        n, w = self.n_rows, self.world_size
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        total = self._share() * w
        order = np.resize(order, total) if total > n else order[:total]  # resize wraps around
        mine = order[self.rank :: w]
        B = self.batch_size
        if self.bucket:
            # chunks keep training batches random; an unshuffled (evaluation) order has nothing
            # to keep, so one chunk sorts it all and no batch pads beyond its own neighbours
            chunk = B * self.bucket_chunk if self.shuffle else max(mine.size, 1)
            keys = np.repeat(np.arange(-(-mine.size // chunk)), chunk)[: mine.size]
            mine = mine[np.lexsort((self.lengths[mine], keys))]  # by chunk, then length (stable)
        batches = [mine[i : i + B] for i in range(0, mine.size, B)]
        if self.drop_last and batches and batches[-1].size < B:
            batches.pop()
        if self.bucket and self.shuffle:
            perm = np.random.default_rng([self.seed, epoch, self.rank, 1]).permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def make_batch(self, rows: np.ndarray) -> Batch:
        """Gather the Batch of the given loader rows."""
        s, smp = self.ds.samples(self.split), self.row_sample[rows]
        user = s["user"][smp]
        common = {
            "label": s["label"][smp],
            "user": user,
            "group": self.ds.group_of_user[user],
            "index": smp,
        }
        if self.sequence:
            return gather_batch(
                self.ds.events, self.start[rows], self.end[rows], self.max_len,
                target_from=self.target_from[rows], **common,
            )  # fmt: skip
        return gather_batch(
            self.ds.events, self.start[rows], self.end[rows], self.max_len,
            target_item=s["item"][smp], target_side={k: s[k][smp] for k in self.ds.side_features},
            target_ts=s["ts"][smp], **common,
        )  # fmt: skip

    def iter_epoch(self, epoch: int | None = None, start_batch: int = 0) -> Iterator[Batch]:
        """The batches of ``epoch`` (default: the current one), skipping the first ``start_batch``."""
        for rows in self.batch_rows(self.epoch if epoch is None else epoch)[start_batch:]:
            yield self.make_batch(rows)

    def __iter__(self) -> Iterator[Batch]:
        return self.iter_epoch(self.epoch)


def batch_from_histories(
    hist_items: Sequence[Sequence[int]],
    hist_ts: Sequence[Sequence[int]],
    target_item: Sequence[int],
    target_ts: Sequence[int],
    *,
    item_side: Mapping[str, np.ndarray],
    max_len: int,
    user: Sequence[int] | None = None,
    group: Sequence[int] | None = None,
    label: Sequence[float] | None = None,
) -> Batch:
    """A CTR/eval-style Batch from raw encoded histories (serving): one row per target.

    ``hist_items`` / ``hist_ts`` are per-row lists of item ids (already encoded; unknown -> UNK)
    and epoch seconds, oldest first. Gaps and calendar fields are computed from the full given
    history (the first given event gets gap -1), then the most recent ``max_len`` are kept, exactly
    as the training loader does. Side features come from ``item_side`` (e.g. ``ds.item_side``);
    ids outside a table map to UNK. ``group`` defaults to 0 for every row, so pass
    ``ds.group_of_user[user]`` (unseen users -> the tail group).
    """
    lens = np.array([len(h) for h in hist_items], dtype=np.int64)
    if lens.size != len(hist_ts) or any(len(t) != n for t, n in zip(hist_ts, lens, strict=True)):
        raise ChronorecError("each history needs as many timestamps as items")
    items = np.fromiter((i for h in hist_items for i in h), dtype=np.int64, count=int(lens.sum()))
    ts = np.fromiter((t for h in hist_ts for t in h), dtype=np.int64, count=int(lens.sum()))
    start = np.cumsum(lens) - lens
    row = np.repeat(np.arange(lens.size), lens)
    gap = np.full(ts.size, -1, dtype=np.int64)
    if ts.size > 1:
        same = row[1:] == row[:-1]
        gap[1:] = np.where(same, ts[1:] - ts[:-1], -1)
    hour, wday, month = calendar_fields(ts)
    cal = np.stack([hour + 1, wday + 1, month], axis=1).astype(np.int8)

    def side_of(ids: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for s, table in item_side.items():
            ok = (ids >= 0) & (ids < table.size)
            out[s] = np.where(ok, table[np.clip(ids, 0, table.size - 1)], UNK).astype(np.int32)
        return out

    ev = EventStore.from_arrays(
        item=items,
        side=side_of(items),
        ts=ts,
        gap=gap,
        calendar=cal,
        width=min(max_len, int(lens.max(initial=0))) + 1,
    )
    t_item = np.asarray(target_item, dtype=np.int64)
    return gather_batch(
        ev, start, start + lens, max_len,
        target_item=t_item, target_side=side_of(t_item), target_ts=np.asarray(target_ts, dtype=np.int64),
        label=None if label is None else np.asarray(label, dtype=np.float32),
        user=None if user is None else np.asarray(user), group=None if group is None else np.asarray(group),
    )  # fmt: skip

"""The evaluation protocols: encoded, sorted events -> samples per split (vectorised numpy).

Every protocol works on :class:`EventArrays` (events sorted by (user, ts, source order), so a
user's events are one contiguous block ``[offset, offset + length)``) and returns samples that
reference histories as global event rows ``[hist_start, hist_end)``; no history is materialised.

* ``ctr-leave-one-out`` (TIN's Amazon protocol): for every user position i >= 2 (1-based) a
  positive (history = events 1..i-1, target = event i) and one negative with the same history and
  timestamp whose item the user never interacted with (uniform over the item vocabulary, drawn
  once with the seed by vectorised rejection sampling; its side features are that item's own).
  Position n -> test, n-1 -> valid, the rest -> train. ``max_history`` keeps the most recent N.
  Rows are stored positive, negative, positive, negative, ... in chronological order per user.
* ``ctr-time-split`` (TIN's Taobao protocol): labelled impressions split at two boundaries
  (train: ts < b1, valid: b1 <= ts < b2, test: ts >= b2); history = the user's last N behaviors
  strictly before the impression (a searchsorted over (user, ts) keys).
* ``next-item-last-out`` (INTERPOS): per user the last event -> test, the second last -> valid,
  the rest form one train row holding the train sequence (item = 0). Valid history = train
  events, test history = train + valid event, both capped to the most recent ``max_history``;
  train sequences are never cut here (the loader windows them), so no training target is lost.

``n_train`` (per user, the training behaviors that define activity groups) is n - 2 for the
leave-out protocols and the number of behaviors before b1 for the time split.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from chronorec.data.schema import FIRST_ID, GroupSpec
from chronorec.errors import ChronorecError

TS_BITS = 34  # (user << TS_BITS) | ts orders events by (user, ts); ts must be < 2**34 s (year 2514)


@dataclass
class EventArrays:
    """Encoded events sorted by (user, ts, source order) plus per-user blocks (row u - FIRST_ID)."""

    user: np.ndarray  # [N] int32
    item: np.ndarray  # [N] int32
    ts: np.ndarray  # [N] int64
    side: dict[str, np.ndarray]  # name -> [N] int32
    offset: np.ndarray  # [U] int64 first row of user FIRST_ID + k
    length: np.ndarray  # [U] int64
    item_side: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [item vocab] int32
    n_item_vocab: int = 0  # item vocabulary size incl. PAD and UNK

    @property
    def n_users(self) -> int:
        return int(self.offset.size)


@dataclass
class ProtocolOutput:
    splits: dict[str, pl.DataFrame]
    n_train: np.ndarray  # [U] training behaviors per user
    # train (hist_start, hist_end, target_ts) triples whose intervals fit the "interval" bin edges
    fit_hist_start: np.ndarray
    fit_hist_end: np.ndarray
    fit_target_ts: np.ndarray

    def release_fit(self) -> None:
        """Drop the fit triples once the interval bin edges are computed (prepare's memory peak)."""
        self.fit_hist_start = self.fit_hist_end = self.fit_target_ts = np.zeros(0, dtype=np.int64)


def _frame(
    user: np.ndarray,
    hist_start: np.ndarray,
    hist_end: np.ndarray,
    item: np.ndarray,
    side: dict[str, np.ndarray],
    ts: np.ndarray,
    label: np.ndarray,
) -> pl.DataFrame:
    cols: dict[str, pl.Series] = {
        "user": pl.Series(user, dtype=pl.Int32),
        "hist_start": pl.Series(hist_start, dtype=pl.Int64),
        "hist_end": pl.Series(hist_end, dtype=pl.Int64),
        "item": pl.Series(item, dtype=pl.Int32),
    }
    for name, values in side.items():
        cols[name] = pl.Series(values, dtype=pl.Int32)
    cols["ts"] = pl.Series(ts, dtype=pl.Int64)
    cols["label"] = pl.Series(label, dtype=pl.Float32)
    return pl.DataFrame(cols)


def sample_negatives(
    user: np.ndarray, ev: EventArrays, rng: np.random.Generator, max_rounds: int = 1000
) -> np.ndarray:
    """One item per entry of ``user`` that this user never interacted with (vectorised rejection)."""
    n_real = ev.n_item_vocab - FIRST_ID
    width = np.int64(ev.n_item_vocab)
    seen = np.unique(ev.user.astype(np.int64) * width + ev.item)
    distinct = np.bincount(seen // width - FIRST_ID, minlength=ev.n_users)
    full = np.flatnonzero(distinct >= n_real)
    if full.size and np.isin(full + FIRST_ID, user).any():
        raise ChronorecError(f"cannot draw negatives: {full.size} user(s) interacted with all {n_real} items")
    user = user.astype(np.int64)
    out = rng.integers(FIRST_ID, FIRST_ID + n_real, size=user.size)
    todo = np.arange(user.size)
    for _ in range(max_rounds):
        keys = user[todo] * width + out[todo]
        pos = np.minimum(np.searchsorted(seen, keys), seen.size - 1)
        todo = todo[seen[pos] == keys]
        if todo.size == 0:
            return out.astype(np.int32)
        out[todo] = rng.integers(FIRST_ID, FIRST_ID + n_real, size=todo.size)
    raise ChronorecError("negative sampling did not converge: users interact with almost every item")


def _positions(ev: EventArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per event: its user's row, the user's first event row, and its 0-based position in the block."""
    urow = ev.user.astype(np.int64) - FIRST_ID
    first = ev.offset[urow]
    return urow, first, np.arange(ev.user.size, dtype=np.int64) - first


def _capped_start(first: np.ndarray, end: np.ndarray, cap: int | None) -> np.ndarray:
    return first if cap is None else np.maximum(first, end - cap)


def ctr_leave_one_out(ev: EventArrays, *, max_history: int | None, seed: int) -> ProtocolOutput:
    urow, first, pos = _positions(ev)
    n = ev.length[urow]
    rows = np.flatnonzero(pos >= 1)  # every target event (position i >= 2, 1-based)
    hist_end = rows.astype(np.int64)
    hist_start = _capped_start(first[rows], hist_end, max_history)
    users = ev.user[rows]
    negatives = sample_negatives(users, ev, np.random.default_rng(seed))
    tpos, tn = pos[rows], n[rows]
    which = np.where(tpos == tn - 1, 2, np.where(tpos == tn - 2, 1, 0))  # 0 train, 1 valid, 2 test

    def pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.stack([a, b], axis=1).reshape(-1)

    splits: dict[str, pl.DataFrame] = {}
    for k, name in enumerate(("train", "valid", "test")):
        sel = np.flatnonzero(which == k)
        r = rows[sel]
        side = {s: pairs(v[r], ev.item_side[s][negatives[sel]]) for s, v in ev.side.items()}
        splits[name] = _frame(
            user=np.repeat(users[sel], 2),
            hist_start=np.repeat(hist_start[sel], 2),
            hist_end=np.repeat(hist_end[sel], 2),
            item=pairs(ev.item[r], negatives[sel]),
            side=side,
            ts=np.repeat(ev.ts[r], 2),
            label=np.tile(np.array([1.0, 0.0], dtype=np.float32), sel.size),
        )
    train = np.flatnonzero(which == 0)
    return ProtocolOutput(
        splits=splits,
        n_train=np.maximum(ev.length - 2, 0),
        fit_hist_start=hist_start[train],
        fit_hist_end=hist_end[train],
        fit_target_ts=ev.ts[rows[train]],
    )


def next_item_last_out(ev: EventArrays, *, max_history: int | None) -> ProtocolOutput:
    o, n = ev.offset, ev.length
    keep = n >= 3
    o, n = o[keep], n[keep]
    users = (np.flatnonzero(keep) + FIRST_ID).astype(np.int32)
    zeros = np.zeros(users.size, dtype=np.int32)
    ones = np.ones(users.size, dtype=np.float32)
    train_end = o + n - 2
    splits = {
        "train": _frame(users, o, train_end, zeros, {s: zeros for s in ev.side}, ev.ts[train_end - 1], ones)
    }
    for name, end in (("valid", train_end), ("test", train_end + 1)):
        splits[name] = _frame(
            users,
            _capped_start(o, end, max_history),
            end,
            ev.item[end],
            {s: v[end] for s, v in ev.side.items()},
            ev.ts[end],
            ones,
        )
    # every training target: row r of a train sequence with r > its first row
    _, first, pos = _positions(ev)
    in_train = (pos >= 1) & (pos < ev.length[ev.user.astype(np.int64) - FIRST_ID] - 2)
    rows = np.flatnonzero(in_train)
    return ProtocolOutput(
        splits=splits,
        n_train=np.maximum(ev.length - 2, 0),
        fit_hist_start=_capped_start(first[rows], rows, max_history),
        fit_hist_end=rows.astype(np.int64),
        fit_target_ts=ev.ts[rows],
    )


def ctr_time_split(
    ev: EventArrays,
    impressions: pl.DataFrame,
    *,
    boundaries: tuple[int, int],
    history: int,
) -> ProtocolOutput:
    """``impressions``: encoded user, item, ts, label (0/1) sorted by (user, ts, source order)."""
    b1, b2 = boundaries
    keys = (ev.user.astype(np.int64) << TS_BITS) | ev.ts
    iu = impressions["user"].to_numpy().astype(np.int64)
    its = impressions["ts"].to_numpy().astype(np.int64)
    hist_end = np.searchsorted(keys, (iu << TS_BITS) | its, side="left")
    first = ev.offset[iu - FIRST_ID]
    hist_start = np.maximum(first, hist_end - history)
    items = impressions["item"].to_numpy().astype(np.int32)
    labels = impressions["label"].to_numpy().astype(np.float32)
    which = np.where(its < b1, 0, np.where(its < b2, 1, 2))
    splits: dict[str, pl.DataFrame] = {}
    for k, name in enumerate(("train", "valid", "test")):
        sel = np.flatnonzero(which == k)
        splits[name] = _frame(
            iu[sel].astype(np.int32),
            hist_start[sel],
            hist_end[sel],
            items[sel],
            {s: v[items[sel]] for s, v in ev.item_side.items()},
            its[sel],
            labels[sel],
        )
    ev_train = ev.ts < b1
    n_train = np.bincount(ev.user[ev_train].astype(np.int64) - FIRST_ID, minlength=ev.n_users)
    train = np.flatnonzero(which == 0)
    return ProtocolOutput(
        splits=splits,
        n_train=n_train,
        fit_hist_start=hist_start[train],
        fit_hist_end=hist_end[train],
        fit_target_ts=its[train],
    )


def activity_groups(
    n_train: np.ndarray,
    *,
    head_share: float,
    thresholds: list[int] | None = None,
    names: list[str] | None = None,
) -> tuple[np.ndarray, GroupSpec]:
    """PIN's activity groups from training behaviors per user.

    Default: head = users with ``n_train >= thr`` where ``thr`` is the n_train of the user ranked
    ``ceil(head_share * U)`` by activity (ties at the threshold all go to head, so head can hold a
    little more than ``head_share``); tail = the rest. With explicit ``thresholds`` (strictly
    decreasing), group k holds users with ``n_train >= thresholds[k]`` (first match), the last
    group the rest. Returns int8 groups per user and the spec with each group's user share.
    """
    if thresholds:
        if any(a <= b for a, b in itertools.pairwise(thresholds)):
            raise ChronorecError(f"group thresholds must be strictly decreasing, got {thresholds}")
        thr = [int(t) for t in thresholds]
        names = names or [f"g{k}" for k in range(len(thr) + 1)]
    else:
        k = max(1, int(np.ceil(head_share * n_train.size))) if n_train.size else 1
        top = np.sort(n_train)[::-1]
        thr = [max(1, int(top[min(k, top.size) - 1])) if top.size else 1]
        names = names or ["head", "tail"]
    if len(names) != len(thr) + 1:
        raise ChronorecError(f"{len(thr)} group threshold(s) need {len(thr) + 1} group names, got {names}")
    group = np.full(n_train.size, len(thr), dtype=np.int8)
    for k in range(len(thr) - 1, -1, -1):  # first match wins: assign the loosest threshold first
        group[n_train >= thr[k]] = k
    share = np.bincount(group, minlength=len(names)) / max(1, n_train.size)
    spec = GroupSpec(
        names=list(names), thresholds=thr, head_share=head_share, user_share=[float(s) for s in share]
    )
    return group, spec

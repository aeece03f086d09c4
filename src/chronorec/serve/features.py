"""Request → :class:`Batch`: the training preprocessing replayed with lookups only.

Everything here is read once from the prepared data at start-up and never re-derived from traffic:

- id vocabularies (``vocab/<field>.parquet``): raw string → Int32 id, unknown raw ids → UNK = 1;
- an item → side-feature table (``items.parquet``, the one value per item that prepare assigned;
  else the most frequent value in the prepared events), used when a request omits a side feature;
- the activity group of every known user, ``schema.groups.group_of(n_train)``; unseen users fall
  in the last (tail) group.

Time features mirror the loader: ``gap`` = ts − previous ts in the request history (−1 for the
first event), calendar fields in UTC as ``(hour+1, weekday+1 with Mon = 1, month)``; the history is
capped to its most recent ``cap`` events *after* the gaps are computed (as the prepared events carry
the gap to the user's previous event even when it falls outside the kept window).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from chronorec.data.batch import Batch
from chronorec.data.schema import PAD, UNK, DatasetSchema
from chronorec.errors import ChronorecError

_SECONDS_PER_DAY = 86_400
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Mon = 0)


def _read_vocab(data_dir: Path, field: str) -> dict[str, int]:
    path = data_dir / "vocab" / f"{field}.parquet"
    if not path.is_file():
        raise ChronorecError(f"vocabulary for {field!r} not found", file=path)
    df = pl.read_parquet(path, columns=["raw", "idx"])
    return dict(zip(df["raw"].to_list(), df["idx"].to_list(), strict=True))


@dataclass
class Encoded:
    """One request's history (and optional targets) as id/time arrays, before batching."""

    item: np.ndarray  # [H] int64
    side: dict[str, np.ndarray]  # name -> [H] int64
    ts: np.ndarray  # [H] int64
    unknown_items: int
    unknown_side: dict[str, int]


class FeatureTables:
    """Lookup tables of one prepared dataset (vocabularies, item → side, user → group)."""

    def __init__(self, data_dir: str | Path, schema: DatasetSchema) -> None:
        data_dir = Path(data_dir)
        self.schema = schema
        self.side_features = list(schema.side_features)
        self.item_index = _read_vocab(data_dir, "item")
        self.item_raw = np.empty(schema.item_vocab, dtype=object)
        self.item_raw[PAD], self.item_raw[UNK] = "", ""
        for raw, idx in self.item_index.items():
            self.item_raw[idx] = raw
        self.side_index = {f: _read_vocab(data_dir, f) for f in self.side_features}
        self.item_side = self._item_side_table(data_dir)
        self.user_index = _read_vocab(data_dir, "user") if (data_dir / "vocab" / "user.parquet").is_file() else {}
        self.tail_group = max(len(schema.groups.names) - 1, 0)
        self.user_group = self._user_groups(data_dir)

    def _item_side_table(self, data_dir: Path) -> dict[str, np.ndarray]:
        """item id -> its side value: ``items.parquet`` (the table prepare used), else the most
        frequent value per item in the prepared events; UNK for items without one."""
        if not self.side_features:
            return {}
        items_path = data_dir / "items.parquet"
        if items_path.is_file():
            frame = pl.read_parquet(items_path)
            if all(f in frame.columns for f in ["item", *self.side_features]):
                return {f: self._table(frame["item"].to_numpy(), frame[f].to_numpy()) for f in self.side_features}
        events = pl.scan_parquet(data_dir / "events.parquet").select(["item", *self.side_features])
        tables: dict[str, np.ndarray] = {}
        for f in self.side_features:
            top = (
                events.group_by(["item", f]).len()
                .sort(["item", "len", f], descending=[False, True, False])
                .unique(subset="item", keep="first", maintain_order=True)
                .collect()
            )
            tables[f] = self._table(top["item"].to_numpy(), top[f].to_numpy())
        return tables

    def _table(self, items: np.ndarray, values: np.ndarray) -> np.ndarray:
        table = np.full(self.schema.item_vocab, UNK, dtype=np.int64)
        ok = (items >= 0) & (items < len(table))
        table[items[ok]] = values[ok]
        table[PAD] = PAD
        return table

    def _user_groups(self, data_dir: Path) -> np.ndarray:
        """user id -> activity group from the prepared users' ``n_train`` (unknown -> tail)."""
        size = max(self.schema.vocab_sizes.get("user", 0), max(self.user_index.values(), default=0) + 1)
        groups = np.full(size, self.tail_group, dtype=np.int64)
        path = data_dir / "users.parquet"
        if path.is_file():
            users = pl.read_parquet(path, columns=["user", "n_train"])
            n_train = users["n_train"].to_numpy()
            # thresholds are checked first-match, as GroupSpec.group_of does, vectorised
            g = np.full(len(n_train), self.tail_group, dtype=np.int64)
            undecided = np.ones(len(n_train), dtype=bool)
            for k, thr in enumerate(self.schema.groups.thresholds):
                hit = undecided & (n_train >= thr)
                g[hit] = k
                undecided &= ~hit
            groups[users["user"].to_numpy()] = g
        return groups

    # ------------------------------------------------------------------ lookups
    def user_id(self, user: str | None) -> int:
        return self.user_index.get(user, UNK) if user is not None else UNK

    def group_of_user(self, user: str | None) -> int:
        """Activity group of a raw user id; unseen (or absent) users are in the tail group."""
        uid = self.user_id(user)
        return int(self.user_group[uid]) if uid >= 2 else self.tail_group

    def items(self, raw: Sequence[str]) -> tuple[np.ndarray, int]:
        """Raw item ids -> int64 ids and the number of unknown ones."""
        get = self.item_index.get
        ids = np.fromiter((get(r, UNK) for r in raw), dtype=np.int64, count=len(raw))
        return ids, int(np.count_nonzero(ids == UNK))

    def side(self, field: str, raw: Sequence[str | None], item_ids: np.ndarray) -> tuple[np.ndarray, int]:
        """Side ids of ``field``: given values through the vocabulary, omitted ones from the item."""
        get = self.side_index[field].get
        ids = np.fromiter((get(r, UNK) if r is not None else -1 for r in raw), dtype=np.int64, count=len(raw))
        given_unknown = int(np.count_nonzero(ids == UNK))
        missing = ids < 0
        if missing.any():
            ids[missing] = self.item_side[field][item_ids[missing]]
        return ids, given_unknown

    def encode(self, items: Sequence[str], sides: dict[str, Sequence[str | None]],
               ts: Sequence[int] | None = None) -> Encoded:
        """Encode parallel lists of raw item ids, side values (None = look up) and timestamps."""
        item_ids, unknown = self.items(items)
        side_ids: dict[str, np.ndarray] = {}
        unknown_side: dict[str, int] = {}
        for f in self.side_features:
            side_ids[f], unknown_side[f] = self.side(f, sides.get(f, [None] * len(items)), item_ids)
        ts_arr = np.asarray(ts if ts is not None else [], dtype=np.int64)
        return Encoded(item_ids, side_ids, ts_arr, unknown, unknown_side)


def calendar(ts: np.ndarray) -> np.ndarray:
    """``[H, 3]`` int64 UTC calendar fields ``(hour+1, weekday+1 (Mon = 1), month 1-12)``."""
    days = np.floor_divide(ts, _SECONDS_PER_DAY)
    hour = np.floor_divide(ts - days * _SECONDS_PER_DAY, 3600) + 1
    wday = np.mod(days + _EPOCH_WEEKDAY, 7) + 1
    month = np.mod(ts.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64), 12) + 1
    return np.stack([hour, wday, month], axis=-1).astype(np.int64)


def gaps(ts: np.ndarray) -> np.ndarray:
    """``[H]`` seconds since the previous event, −1 for the first."""
    out = np.empty_like(ts)
    if len(ts):
        out[0] = -1
        out[1:] = ts[1:] - ts[:-1]
    return out


def make_batch(hist: Encoded, target: Encoded | None, target_ts: int, user: int, group: int,
               cap: int | None, side_features: Sequence[str]) -> Batch:
    """One :class:`Batch` whose rows share one history, expanded (not copied): one row per target
    (CTR), or a single row with target id PAD when ``target`` is None (next-item scoring).

    Gaps are taken over the whole request history, then the most recent ``cap`` events are kept.
    Padding follows :class:`Batch`; a history of length 0 becomes one padded position.
    """
    rows = len(target.item) if target is not None else 1
    gap = gaps(hist.ts)
    keep = slice(max(len(hist.ts) - cap, 0), None) if cap else slice(None)
    n = len(hist.item[keep])
    width = max(n, 1)

    def shared(values: np.ndarray, fill: int) -> torch.Tensor:  # [rows, width], stride 0 over rows
        out = torch.full((1, width), fill, dtype=torch.long)
        out[0, :n] = torch.from_numpy(np.ascontiguousarray(values[keep], dtype=np.int64))
        return out.expand(rows, width)

    def per_row(value: float, dtype: torch.dtype = torch.long) -> torch.Tensor:  # [rows], stride 0
        return torch.full((1,), value, dtype=dtype).expand(rows)

    cal = torch.zeros(1, width, 3, dtype=torch.long)
    if n:
        cal[0, :n] = torch.from_numpy(calendar(hist.ts[keep]))
    mask = torch.zeros(1, width, dtype=torch.bool)
    mask[0, :n] = True
    if target is not None:
        t_item = torch.from_numpy(target.item)
        t_side = {f: torch.from_numpy(target.side[f]) for f in side_features}
    else:
        t_item = torch.zeros(1, dtype=torch.long)
        t_side = {f: torch.zeros(1, dtype=torch.long) for f in side_features}
    return Batch(
        hist_item=shared(hist.item, PAD),
        hist_side={f: shared(hist.side[f], PAD) for f in side_features},
        hist_ts=shared(hist.ts, 0),
        hist_gap=shared(gap, -1),
        hist_calendar=cal.expand(rows, width, 3),
        mask=mask.expand(rows, width),
        lengths=per_row(n),
        target_item=t_item,
        target_side=t_side,
        target_ts=per_row(target_ts),
        label=per_row(0.0, torch.float32),
        user=per_row(user),
        group=per_row(group),
        index=torch.arange(rows),
    )

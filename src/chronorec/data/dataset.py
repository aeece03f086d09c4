"""Reading a prepared folder: :class:`PreparedDataset` validates it and loads flat numpy arrays.

``PreparedDataset.open(dir)`` refuses a folder without a valid manifest (interrupted or foreign),
then loads every events column as one contiguous numpy array (ids int32, ts and gap int64,
calendar int8 ``[N, 3]`` already shifted to the Batch convention: hour + 1, weekday + 1, month),
the per-user table, the per-item side-feature tables, and (lazily) each split's samples. All
batch building is index gathers into these arrays (see :mod:`chronorec.data.loader`).

Example::

    ds = PreparedDataset.open("prepared/grocery")
    ds.schema.n_items, ds.n_samples("train")
    rows = ds.user_events(user_id)        # slice of global event rows, chronological
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from chronorec.data import store
from chronorec.data.schema import FIRST_ID, PAD, SPLITS, DatasetSchema
from chronorec.data.vocab import load_vocab
from chronorec.errors import ChronorecError


def _read(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    try:
        return pl.read_parquet(path, columns=columns, memory_map=True)
    except Exception as err:  # corrupt or unreadable parquet: a user-fixable problem
        raise ChronorecError(
            f"cannot read prepared file ({type(err).__name__}); re-run prepare --force", file=path
        ) from None


def _np(df: pl.DataFrame, col: str, dtype: Any) -> np.ndarray:
    return np.ascontiguousarray(df[col].to_numpy(), dtype=dtype)


@dataclass
class EventStore:
    """Flat event arrays a batch is gathered from (global event rows).

    Every array ends with ``width`` **padding rows** (item/side 0, ts 0, gap -1, calendar 0), so
    the window of any row ``r <= n`` of up to ``width`` events is a valid slice; a batch is then a
    row gather from a sliding-window view (``window(name)[first, :L]``, a memcpy per row) instead
    of an element gather with a 2-D index. ``width`` >= the longest history anyone gathers.
    """

    item: np.ndarray  # [N + width] int32
    side: dict[str, np.ndarray]  # name -> [N + width] int32
    ts: np.ndarray  # [N + width] int64 seconds
    gap: np.ndarray  # [N + width] int64 seconds, -1 at a user's first event
    calendar: np.ndarray  # [N + width, 3] int8: hour + 1, weekday + 1 (Mon = 1), month (1-12)
    width: int

    @classmethod
    def from_arrays(
        cls,
        item: np.ndarray,
        side: dict[str, np.ndarray],
        ts: np.ndarray,
        gap: np.ndarray,
        calendar: np.ndarray,
        width: int,
    ) -> EventStore:
        """Append ``width`` padding rows to ``N``-long arrays (calendar in the Batch convention)."""
        width = max(1, int(width))

        def pad(x: np.ndarray, value: int, dtype: Any) -> np.ndarray:
            out = np.empty((x.shape[0] + width, *x.shape[1:]), dtype=dtype)
            out[: x.shape[0]] = x
            out[x.shape[0] :] = value
            return out

        return cls(
            item=pad(item, PAD, np.int32),
            side={s: pad(v, PAD, np.int32) for s, v in side.items()},
            ts=pad(ts, 0, np.int64),
            gap=pad(gap, -1, np.int64),
            calendar=pad(calendar, 0, np.int8),
            width=width,
        )

    @property
    def n(self) -> int:
        """Number of real events (the first padding row's index)."""
        return int(self.ts.size) - self.width

    def window(self, x: np.ndarray) -> np.ndarray:
        """``[n + 1, width]`` (or ``[n + 1, 3, width]`` for the calendar) read-only view of ``x``."""
        return sliding_window_view(x, self.width, axis=0)


@dataclass
class PreparedDataset:
    root: Path
    schema: DatasetSchema
    manifest: dict[str, Any]
    events: EventStore
    users: dict[str, np.ndarray]  # user, offset, length, n_train, group: one row per real user
    item_side: dict[str, np.ndarray]  # name -> [item vocab] int32 side id of each item id
    group_of_user: np.ndarray  # [user vocab] int64; PAD / UNK / unseen users -> the last (tail) group
    _samples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, root: str | Path) -> PreparedDataset:
        """Validate the manifest and schema, then load the event, user and item arrays."""
        root = Path(root)
        manifest = store.validate_prepared(root)
        schema = DatasetSchema.load(root / store.SCHEMA)  # a bad file is a one-line ChronorecError
        side = schema.side_features
        ev = _read(root / "events.parquet")
        missing = [c for c in ("item", "ts", "gap", "hour", "wday", "month", *side) if c not in ev.columns]
        if missing:
            raise ChronorecError(f"events.parquet lacks column(s) {missing}", file=root / "events.parquet")
        calendar = np.stack(
            [_np(ev, "hour", np.int8) + 1, _np(ev, "wday", np.int8) + 1, _np(ev, "month", np.int8)], axis=1
        )
        events = EventStore.from_arrays(
            item=ev["item"].to_numpy(),
            side={s: ev[s].to_numpy() for s in side},
            ts=ev["ts"].to_numpy(),
            gap=ev["gap"].to_numpy(),
            calendar=calendar,
            width=schema.max_history_len + 1,
        )
        u = _read(root / "users.parquet")
        users = {
            "user": _np(u, "user", np.int64),
            "offset": _np(u, "offset", np.int64),
            "length": _np(u, "length", np.int64),
            "n_train": _np(u, "n_train", np.int64),
            "group": _np(u, "group", np.int64),
        }
        tail = len(schema.groups.names) - 1
        group_of_user = np.full(schema.vocab_sizes["user"], tail, dtype=np.int64)
        group_of_user[users["user"]] = users["group"]
        items = _read(root / "items.parquet")
        item_side = {s: _np(items, s, np.int32) for s in side}
        return cls(root, schema, manifest, events, users, item_side, group_of_user)

    @property
    def side_features(self) -> list[str]:
        return list(self.schema.side_features)

    def samples(self, split: str) -> dict[str, np.ndarray]:
        """A split's sample columns as numpy arrays (user, hist_start, hist_end, item, side..., ts, label)."""
        if split not in SPLITS:
            raise ChronorecError(f"unknown split '{split}' (choose from {', '.join(SPLITS)})")
        if split not in self._samples:
            df = _read(self.root / "samples" / f"{split}.parquet")
            cols = {c: _np(df, c, np.int64) for c in ("user", "hist_start", "hist_end", "item", "ts")}
            cols.update({s: _np(df, s, np.int64) for s in self.side_features})
            cols["label"] = _np(df, "label", np.float32)
            self._samples[split] = cols
        return self._samples[split]

    def n_samples(self, split: str) -> int:
        return int(self.schema.counts.get(split, self.samples(split)["user"].size))

    def vocab(self, field_name: str) -> pl.DataFrame:
        """raw (Utf8) -> idx (Int32) of ``user``, ``item`` or a side feature."""
        path = self.root / "vocab" / f"{field_name}.parquet"
        if not path.is_file():
            raise ChronorecError(f"no vocabulary for '{field_name}'", file=path)
        return load_vocab(path)

    def user_events(self, user: int) -> slice:
        """The user's global event rows (chronological); empty for PAD/UNK/unknown ids."""
        k = int(user) - FIRST_ID
        if k < 0 or k >= self.users["offset"].size:
            return slice(0, 0)
        o = int(self.users["offset"][k])
        return slice(o, o + int(self.users["length"][k]))

"""Read-only, array-level access to a prepared dataset folder for the analyses.

The analyses need whole columns (every event's category, every sample's history bounds), not
training batches, so this module reads the Parquet files of the layout documented in
:mod:`chronorec.data.schema` straight into numpy arrays (one read per column) and builds
:class:`~chronorec.data.batch.Batch` objects for model inference by index gathers: a batch's
``[B, L]`` history matrix is ``offsets = start[:, None] + arange(L)`` gathered from the event
columns, so no Python loop ever touches a sample.

Histories longer than ``max_len`` keep their most recent ``max_len`` behaviors (the window a
model with a bounded position table sees), so position ``p`` (1 = most recent) is always column
``len - p`` of the right-padded batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from chronorec.data.batch import Batch
from chronorec.data.schema import SPLITS, DatasetSchema
from chronorec.errors import ChronorecError

_EVENT_TIME_COLUMNS = ("ts", "gap", "hour", "wday", "month")


@dataclass
class Samples:
    """The labelled samples of one or more splits, as flat arrays (one entry per sample)."""

    split: np.ndarray  # [N] int8: index into SPLITS
    row: np.ndarray  # [N] int64: row within its split file
    user: np.ndarray  # [N] int64
    hist_start: np.ndarray  # [N] int64 global event row (inclusive)
    hist_end: np.ndarray  # [N] int64 global event row (exclusive)
    item: np.ndarray  # [N] int64
    side: dict[str, np.ndarray]  # name -> [N] int64 target side feature ids
    ts: np.ndarray  # [N] int64 seconds
    label: np.ndarray  # [N] float32

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def hist_len(self) -> np.ndarray:
        return self.hist_end - self.hist_start

    def take(self, idx: np.ndarray) -> Samples:
        return Samples(
            split=self.split[idx], row=self.row[idx], user=self.user[idx],
            hist_start=self.hist_start[idx], hist_end=self.hist_end[idx], item=self.item[idx],
            side={k: v[idx] for k, v in self.side.items()}, ts=self.ts[idx], label=self.label[idx],
        )


class PreparedArrays:
    """Columns of a prepared dataset as numpy arrays, loaded lazily and cached."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        schema_path = self.path / "schema.json"
        if not schema_path.is_file():
            raise ChronorecError("not a prepared dataset folder (no schema.json)", file=self.path)
        self.schema = DatasetSchema.load(schema_path)
        self._events: dict[str, np.ndarray] = {}
        self._group_of_user: np.ndarray | None = None

    # ---- events ---------------------------------------------------------------------------------
    def event_column(self, name: str) -> np.ndarray:
        """One column of events.parquet as int64 (global row order)."""
        if name not in self._events:
            path = self.path / "events.parquet"
            cols = pl.read_parquet_schema(path)
            if name not in cols:
                if name in ("hour", "wday", "month"):  # day-granular data may omit calendar fields
                    n = pl.scan_parquet(path).select(pl.len()).collect().item()
                    self._events[name] = np.zeros(n, dtype=np.int64)
                    return self._events[name]
                raise ChronorecError(f"events.parquet has no column {name!r}", file=path)
            col = pl.read_parquet(path, columns=[name]).to_series()
            self._events[name] = col.fill_null(0).to_numpy().astype(np.int64, copy=False)
        return self._events[name]

    def category_field(self) -> str:
        """The side feature the analysis groups by: ``category`` if present, else the first one."""
        side = self.schema.side_features
        if "category" in side:
            return "category"
        if not side:
            raise ChronorecError(
                "the semantic-temporal correlation needs an item category (a side feature); "
                f"dataset {self.schema.name!r} has none"
            )
        return side[0]

    def vocab(self, field: str) -> dict[int, str]:
        """idx -> raw value of one vocabulary (for labels on plots)."""
        path = self.path / "vocab" / f"{field}.parquet"
        if not path.is_file():
            return {}
        df = pl.read_parquet(path)
        return dict(zip(df["idx"].to_list(), [str(v) for v in df["raw"].to_list()], strict=True))

    # ---- samples --------------------------------------------------------------------------------
    def samples(self, splits: Sequence[str]) -> Samples:
        """Concatenated samples of ``splits`` with every labelled row (positives and negatives)."""
        parts = []
        side_names = list(self.schema.side_features)
        for split in splits:
            if split not in SPLITS:
                raise ChronorecError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
            path = self.path / "samples" / f"{split}.parquet"
            if not path.is_file():
                raise ChronorecError("missing samples file", file=path)
            cols = ["user", "hist_start", "hist_end", "item", *side_names, "ts", "label"]
            df = pl.read_parquet(path, columns=cols).with_columns(
                pl.lit(SPLITS.index(split), dtype=pl.Int8).alias("_split"),
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
            )
            parts.append(df)
        df = pl.concat(parts)
        if self.schema.task != "ctr":
            raise ChronorecError(
                f"the correlation analysis needs labelled CTR samples; dataset {self.schema.name!r} "
                f"was prepared for {self.schema.task}"
            )

        def col(name: str, dtype: type = np.int64) -> np.ndarray:
            return df[name].to_numpy().astype(dtype, copy=False)

        return Samples(
            split=col("_split", np.int8), row=col("_row"), user=col("user"),
            hist_start=col("hist_start"), hist_end=col("hist_end"), item=col("item"),
            side={k: col(k) for k in side_names}, ts=col("ts"), label=col("label", np.float32),
        )

    def group_of(self, users: np.ndarray) -> np.ndarray:
        """Activity group of each user id (0 when users.parquet is absent)."""
        if self._group_of_user is None:
            path = self.path / "users.parquet"
            if path.is_file():
                df = pl.read_parquet(path, columns=["user", "group"])
                u = df["user"].to_numpy().astype(np.int64)
                table = np.zeros(int(u.max(initial=0)) + 1, dtype=np.int64)
                table[u] = df["group"].to_numpy()
                self._group_of_user = table
            else:
                self._group_of_user = np.zeros(1, dtype=np.int64)
        table = self._group_of_user
        inside = users < table.shape[0]
        return np.where(inside, table[np.where(inside, users, 0)], 0)

    # ---- batches --------------------------------------------------------------------------------
    def make_batch(self, s: Samples, max_len: int | None = None) -> Batch:
        """A right-padded :class:`Batch` of the given samples (most recent ``max_len`` behaviors)."""
        full = s.hist_len
        lengths = full if max_len is None else np.minimum(full, max_len)
        start = s.hist_end - lengths
        L = max(int(lengths.max(initial=0)), 1)
        ar = np.arange(L)
        mask = ar[None, :] < lengths[:, None]  # [B, L]
        rows = np.where(mask, start[:, None] + ar[None, :], 0)  # [B, L] global event rows

        def gather(name: str, pad: int = 0) -> torch.Tensor:
            return torch.from_numpy(np.where(mask, self.event_column(name)[rows], pad))

        cal = np.stack(
            [self.event_column("hour")[rows] + 1, self.event_column("wday")[rows] + 1,
             self.event_column("month")[rows]], axis=-1,
        ) * mask[..., None]  # [B, L, 3]
        t = torch.from_numpy
        return Batch(
            hist_item=gather("item"),
            hist_side={k: gather(k) for k in self.schema.side_features},
            hist_ts=gather("ts"),
            hist_gap=gather("gap", pad=-1),
            hist_calendar=t(np.ascontiguousarray(cal)),
            mask=t(mask),
            lengths=t(lengths.astype(np.int64)),
            target_item=t(s.item.copy()),
            target_side={k: t(v.copy()) for k, v in s.side.items()},
            target_ts=t(s.ts.copy()),
            label=t(s.label.copy()),
            user=t(s.user.copy()),
            group=t(self.group_of(s.user)),
            index=t(s.row.copy()),
        )

    def iter_batches(
        self, s: Samples, batch_size: int = 1024, max_len: int | None = None
    ) -> Iterator[tuple[np.ndarray, Batch]]:
        """Yield ``(sample_indices, batch)``, grouping samples of similar length to limit padding."""
        order = np.argsort(s.hist_len, kind="stable")
        for lo in range(0, order.shape[0], batch_size):
            idx = order[lo : lo + batch_size]
            yield idx, self.make_batch(s.take(idx), max_len=max_len)

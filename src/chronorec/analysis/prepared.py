"""Array-level access to a prepared dataset for the analyses, on top of
:class:`~chronorec.data.dataset.PreparedDataset`.

The analyses need whole columns (every event's category, every sample's history bounds) and
batches over arbitrary subsets of samples (the selected target categories, several splits at
once), so this module exposes the dataset's flat arrays and builds batches with the loader's own
:func:`~chronorec.data.loader.gather_batch` — the exact tensors the trainer fed the model, with the
same history cap (most recent ``max_len`` behaviors, default the longest stored history). Position
``p`` (1 = most recent) of a sample is therefore column ``len - p`` of its right-padded row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chronorec.data.batch import Batch
from chronorec.data.dataset import PreparedDataset
from chronorec.data.loader import gather_batch
from chronorec.data.schema import SPLITS
from chronorec.errors import ChronorecError


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
    """A prepared dataset's columns as numpy arrays, and batches over any subset of samples."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.ds = PreparedDataset.open(self.path)
        self.schema = self.ds.schema
        if self.schema.task != "ctr":
            raise ChronorecError(
                f"the correlation analysis needs labelled CTR samples; dataset {self.schema.name!r} "
                f"was prepared for {self.schema.task} ({self.schema.protocol})"
            )

    def event_column(self, name: str) -> np.ndarray:
        """``[n_events]`` column of the events (``item``, a side feature, ``ts`` or ``gap``)."""
        ev = self.ds.events
        arr = ev.side[name] if name in ev.side else getattr(ev, name, None)
        if not isinstance(arr, np.ndarray):
            raise ChronorecError(f"the events have no column {name!r}", file=self.path)
        return arr[: ev.n]

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
        """idx -> raw value of one vocabulary (labels on plots)."""
        df = self.ds.vocab(field)
        return dict(zip(df["idx"].to_list(), [str(v) for v in df["raw"].to_list()], strict=True))

    def samples(self, splits: Sequence[str]) -> Samples:
        """Concatenated samples of ``splits``: every labelled row, positives and negatives."""
        parts = []
        for split in splits:
            if split not in SPLITS:
                raise ChronorecError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
            s = self.ds.samples(split)
            n = s["label"].shape[0]
            parts.append((SPLITS.index(split), np.arange(n, dtype=np.int64), s))
        side = self.schema.side_features

        def cat(name: str) -> np.ndarray:
            return np.concatenate([p[2][name] for p in parts]) if parts else np.empty(0, np.int64)

        return Samples(
            split=np.concatenate([np.full(p[1].shape[0], p[0], np.int8) for p in parts]),
            row=np.concatenate([p[1] for p in parts]), user=cat("user"), hist_start=cat("hist_start"),
            hist_end=cat("hist_end"), item=cat("item"), side={k: cat(k) for k in side}, ts=cat("ts"),
            label=cat("label").astype(np.float32),
        )

    def make_batch(self, s: Samples, max_len: int | None = None) -> Batch:
        """The loader's :class:`Batch` of the given samples (``index`` = row in its split file)."""
        cap = self.ds.events.width - 1 if max_len is None else max_len
        return gather_batch(
            self.ds.events, s.hist_start, s.hist_end, max(cap, 1), target_item=s.item, target_side=s.side,
            target_ts=s.ts, label=s.label, user=s.user, group=self.ds.group_of_user[s.user], index=s.row,
        )

    def iter_batches(
        self, s: Samples, batch_size: int = 1024, max_len: int | None = None
    ) -> Iterator[tuple[np.ndarray, Batch]]:
        """Yield ``(sample_indices, batch)``, grouping samples of similar length to limit padding."""
        order = np.argsort(s.hist_len, kind="stable")
        for lo in range(0, order.shape[0], batch_size):
            idx = order[lo : lo + batch_size]
            yield idx, self.make_batch(s.take(idx), max_len=max_len)

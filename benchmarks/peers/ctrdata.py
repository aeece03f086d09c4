"""Read a materialised CTR export into padded numpy arrays (numpy + pyarrow only).

The export is three files ``train``, ``valid``, ``test`` (``.parquet`` or ``.csv``) with columns
user, item, category, label, hist_item (list), hist_category (list); ids use 0 as padding.
In CSV files a list is written as space- or comma-separated ids, optionally in brackets.
Histories are kept oldest first; the most recent ``max_len`` are kept and right-padded with 0,
so the real behaviors of a row are its first ``hist_len`` positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

COLUMNS = ("user", "item", "category", "label", "hist_item", "hist_category")
SPLITS = ("train", "valid", "test")


@dataclass
class CtrSplit:
    """One split as dense arrays: ids int64, histories [N, max_len] right-padded with 0."""

    user: np.ndarray
    item: np.ndarray
    category: np.ndarray
    label: np.ndarray
    hist_item: np.ndarray
    hist_category: np.ndarray
    hist_len: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


def find_split_file(folder: Path, split: str) -> Path:
    """``folder/<split>.parquet``, else ``folder/<split>.csv``."""
    for ext in (".parquet", ".csv"):
        path = folder / f"{split}{ext}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no {split}.parquet or {split}.csv in {folder}")


def _read_table(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path, columns=list(COLUMNS))
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        include_columns=list(COLUMNS),
        column_types={"hist_item": pa.string(), "hist_category": pa.string()}))
    for name in ("hist_item", "hist_category"):
        table = table.set_column(table.schema.get_field_index(name), name, _csv_lists(table[name]))
    return table


def _csv_lists(column: pa.ChunkedArray) -> pa.ListArray:
    """Parse a string column of id lists into a list<int64> array (empty string = empty list)."""
    rows = column.to_pylist()
    values: list[int] = []
    offsets = [0]
    for text in rows:
        for token in (text or "").replace("[", " ").replace("]", " ").replace(",", " ").split():
            values.append(int(token))
        offsets.append(len(values))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.int64()))


def pad_lists(column: pa.ChunkedArray | pa.Array, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Most recent ``max_len`` ids of each list, right-padded with 0, and the kept lengths."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    # offsets index into .values (the unsliced child array), also for a sliced array
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy().astype(np.int64)
    lengths = np.diff(offsets)
    keep = np.minimum(lengths, max_len)
    first = offsets[1:] - keep
    out = np.zeros((len(lengths), max_len), dtype=np.int64)
    for j in range(max_len):
        valid = j < keep
        out[valid, j] = values[first[valid] + j]
    return out, keep


def load_split(path: Path, max_len: int) -> CtrSplit:
    """Read one split file into padded arrays."""
    table = _read_table(path)
    hist_item, hist_len = pad_lists(table["hist_item"], max_len)
    hist_category, _ = pad_lists(table["hist_category"], max_len)

    def col(name: str) -> np.ndarray:
        return table[name].to_numpy().astype(np.int64)

    return CtrSplit(user=col("user"), item=col("item"), category=col("category"),
                    label=table["label"].to_numpy().astype(np.float32),
                    hist_item=hist_item, hist_category=hist_category, hist_len=hist_len)


def load_export(folder: Path, max_len: int) -> dict[str, CtrSplit]:
    """All three splits of an export folder."""
    return {split: load_split(find_split_file(folder, split), max_len) for split in SPLITS}


def vocab_sizes(splits: dict[str, CtrSplit]) -> tuple[int, int]:
    """Embedding table sizes (max id + 1) for items and categories over all splits."""
    n_item = max(int(max(s.item.max(), s.hist_item.max())) for s in splits.values()) + 1
    n_cat = max(int(max(s.category.max(), s.hist_category.max())) for s in splits.values()) + 1
    return n_item, n_cat

"""Id vocabularies: raw string ids -> contiguous Int32 ids.

Choice: ids are assigned in **lexicographic order of the raw id string** (so "10" < "9"), which
makes a vocabulary a pure function of the set of raw values, independent of row order, loader
or chunking. Id 0 is padding, 1 is unknown (unseen at serving time, or a null side value), and
real values take 2, 3, ... (:data:`~chronorec.data.schema.FIRST_ID`). A vocabulary is stored as
``vocab/<field>.parquet`` with columns ``raw`` (Utf8) and ``idx`` (Int32), sorted by ``idx``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from chronorec.data import store
from chronorec.data.schema import FIRST_ID, UNK


def build_vocab(values: Iterable[pl.Series]) -> pl.DataFrame:
    """The vocabulary of the non-null values of one or more Utf8 series (``raw``, ``idx``)."""
    parts = [s.cast(pl.Utf8) for s in values]
    raw = pl.concat(parts).drop_nulls().unique().sort() if parts else pl.Series("raw", [], dtype=pl.Utf8)
    return pl.DataFrame(
        {
            "raw": raw.rename("raw"),
            "idx": pl.int_range(FIRST_ID, FIRST_ID + raw.len(), dtype=pl.Int32, eager=True),
        }
    )


def encode_frame(df: pl.DataFrame, vocabs: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Replace every column named in ``vocabs`` by its Int32 ids (values not in a vocabulary -> UNK).

    A value's physical code under ``pl.Enum(raw)`` is its row in the vocabulary, so its id is
    ``idx[code]``: one hash lookup and one gather per value, no join (3x faster than a join on
    amazon-beauty). Nothing is assumed about how ``idx`` is ordered.
    """
    cols = []
    for field, vocab in vocabs.items():
        if field not in df.columns:
            continue
        code = pl.col(field).cast(pl.Utf8).cast(pl.Enum(vocab["raw"]), strict=False).to_physical()
        ids = pl.lit(vocab["idx"].cast(pl.Int32)).gather(code)  # null code (unseen, null) -> null
        cols.append(ids.fill_null(UNK).alias(field))
    return df.with_columns(cols) if cols else df


def lookup(vocab: pl.DataFrame, raw: Sequence[str] | np.ndarray) -> np.ndarray:
    """Raw ids -> int64 ids (UNK for unseen values); used by serving."""
    frame = pl.DataFrame({"raw": pl.Series("raw", list(raw), dtype=pl.Utf8)})
    ids = frame.join(vocab, on="raw", how="left", maintain_order="left")["idx"].fill_null(UNK)
    return ids.to_numpy().astype(np.int64)


def save_vocab(vocab: pl.DataFrame, path: Path) -> None:
    store.write_parquet(vocab.select(pl.col("raw").cast(pl.Utf8), pl.col("idx").cast(pl.Int32)), path)


def load_vocab(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)

"""Write a small materialised CTR export from ml-100k for the DIN peer runners.

Stand-in until chronorec's own exporter writes the same columns from its prepared data. Protocol
(the TIN paper's Amazon one): per user, events in time order (stable: file order breaks ties);
every event with at least one earlier event is a positive sample whose history is the earlier
items (most recent ``--max-hist`` kept, oldest first); each positive gets one negative that
replaces the target with a uniformly drawn item the user never interacted with, same history.
The user's last sample pair is test, the one before valid, the rest train.

Columns: user, item, category, label, hist_item (list), hist_category (list). Ids follow
chronorec's convention: 0 = padding, 1 = unknown, real ids from 2. Category = first genre of
the movie in ml-100k.item.

    /work/main/.venv/bin/python benchmarks/peers/make_ctr_export.py
    # -> benchmarks/results/ctr/ml-100k/{train,valid,test}.parquet + meta.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[2]


def load_ml100k(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Interactions (user, item, ts) in file order, and item -> first-genre table."""
    inter = pl.read_csv(folder / "ml-100k.inter", separator="\t").select(
        pl.col("user_id:token").alias("user"),
        pl.col("item_id:token").alias("item"),
        pl.col("timestamp:float").cast(pl.Int64).alias("ts"),
    )
    items = pl.read_csv(folder / "ml-100k.item", separator="\t", quote_char=None,
                        infer_schema=False).select(
        pl.col("item_id:token").cast(pl.Int64).alias("item"),
        pl.col("class:token_seq").str.split(" ").list.first().fill_null("unknown").alias("genre"),
    )
    return inter, items


def build(inter: pl.DataFrame, items: pl.DataFrame, max_hist: int, seed: int) -> dict[str, pl.DataFrame]:
    """The train / valid / test frames of the export."""
    # Dense ids from 2 (0 = padding, 1 = unknown).
    item_ids = items.select("item").unique().sort("item").with_row_index("item_id", offset=2)
    genres = items.select("genre").unique().sort("genre").with_row_index("cat_id", offset=2)
    item_cat = (items.join(item_ids, on="item").join(genres, on="genre")
                .select("item_id", "cat_id").sort("item_id"))
    cat_of = np.zeros(int(item_cat["item_id"].max()) + 1, dtype=np.int64)
    cat_of[item_cat["item_id"].to_numpy()] = item_cat["cat_id"].to_numpy()
    n_item_ids = len(cat_of)

    user_ids = inter.select("user").unique().sort("user").with_row_index("user_id", offset=2)
    ev = (inter.with_row_index("row")
          .join(user_ids, on="user").join(item_ids, on="item")
          .sort(["user_id", "ts", "row"])
          .select("user_id", "item_id"))
    users = ev["user_id"].to_numpy().astype(np.int64)
    seq = ev["item_id"].to_numpy().astype(np.int64)
    n = len(seq)
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    lengths = np.diff(np.r_[starts, n])
    user_start = np.repeat(starts, lengths)
    user_end = np.repeat(starts + lengths, lengths)
    pos = np.arange(n)

    keep = pos > user_start  # at least one earlier event
    rows = pos[keep]
    hist_begin = np.maximum(user_start[keep], rows - max_hist)
    hist_len = rows - hist_begin
    split = np.where(rows == user_end[keep] - 1, 2, np.where(rows == user_end[keep] - 2, 1, 0))

    # One negative per positive: an item the user never interacted with.
    rng = np.random.default_rng(seed)
    seen = np.unique(users * n_item_ids + seq)
    neg = rng.integers(2, n_item_ids, size=len(rows))
    bad = np.isin(users[rows] * n_item_ids + neg, seen)
    while bad.any():
        neg[bad] = rng.integers(2, n_item_ids, size=int(bad.sum()))
        bad = np.isin(users[rows] * n_item_ids + neg, seen)

    # Interleave positive / negative samples; both share the history.
    m = len(rows)
    target = np.empty(2 * m, dtype=np.int64)
    target[0::2], target[1::2] = seq[rows], neg
    label = np.tile(np.array([1, 0], dtype=np.int8), m)
    sample_user = np.repeat(users[rows], 2)
    sample_split = np.repeat(split, 2)
    h_begin, h_len = np.repeat(hist_begin, 2), np.repeat(hist_len, 2)
    offsets = np.r_[0, np.cumsum(h_len)].astype(np.int32)
    gather = np.repeat(h_begin - offsets[:-1], h_len) + np.arange(offsets[-1])
    hist_items = seq[gather]

    def lists(values: np.ndarray) -> pa.ListArray:
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))

    df = pl.from_arrow(pa.table({
        "user": sample_user,
        "item": target,
        "category": cat_of[target],
        "label": label,
        "hist_item": lists(hist_items),
        "hist_category": lists(cat_of[hist_items]),
        "split": sample_split,
    }))
    return {name: df.filter(pl.col("split") == k).drop("split")
            for k, name in enumerate(("train", "valid", "test"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("CHRONOREC_DATA", ROOT.parent / "shared" / "data")) / "ml-100k",
                    help="ml-100k atomic-file folder")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ctr" / "ml-100k")
    ap.add_argument("--max-hist", type=int, default=50, help="history cap (most recent kept)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--users", type=int, default=0, help="keep only the first N user ids (smoke tests)")
    args = ap.parse_args()
    if not (args.data / "ml-100k.inter").is_file():
        sys.exit(f"{args.data}/ml-100k.inter not found; set CHRONOREC_DATA or --data")
    inter, items = load_ml100k(args.data)
    if args.users:
        inter = inter.filter(pl.col("user").is_in(inter["user"].unique().sort().head(args.users).implode()))
    frames = build(inter, items, args.max_hist, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, object] = {"source": "ml-100k", "max_hist": args.max_hist, "seed": args.seed,
                               "users": args.users or "all"}
    for name, df in frames.items():
        df.write_parquet(args.out / f"{name}.parquet")
        meta[f"{name}_rows"] = df.height
    all_df = pl.concat(frames.values())
    meta["item_vocab"] = int(all_df["item"].max()) + 1
    meta["category_vocab"] = int(all_df["category"].max()) + 1
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()

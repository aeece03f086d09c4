"""Export a chronorec CTR dataset's samples, histories materialised, for the peer DIN runners.

chronorec itself trains from offsets into one flat event array (``hist_start``/``hist_end`` per
sample); DeepCTR-Torch and torch-rechub need every row's history as a list. This writes exactly
chronorec's prepared samples (same rows, same order, same histories, same internal ids; 0 =
padding) as ``train/valid/test.parquet`` with columns ``user, item, category, label, hist_item,
hist_category`` (lists oldest first), the format ``benchmarks/peers/ctrdata.py`` reads.

Vectorised: one flat gather ``events[repeat(start) + ramp]`` per split and the sample offsets
become the Arrow list offsets; no per-row Python.

    /work/main/.venv/bin/python benchmarks/export_ctr.py PREPARED_DIR OUT_DIR [--side category]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chronorec.data.dataset import PreparedDataset

SPLITS = ("train", "valid", "test")


def flat_history_index(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arrow list offsets ``[n + 1]`` and the flat event rows of every history, concatenated."""
    lengths = (end - start).astype(np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # event row of the j-th history element = start of its sample + (j - offset of its sample)
    rows = np.repeat(start - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
    return offsets, rows


def split_table(data: PreparedDataset, split: str, side: str, rows_subset: np.ndarray | None = None
                ) -> pa.Table:
    """One split as an Arrow table in the peers' column layout."""
    s = data.samples(split)
    keep = slice(None) if rows_subset is None else rows_subset
    start, end = s["hist_start"][keep], s["hist_end"][keep]
    offsets, rows = flat_history_index(start, end)
    offsets32 = pa.array(offsets.astype(np.int32))
    hist_item = pa.ListArray.from_arrays(offsets32, pa.array(data.events.item[rows].astype(np.int64)))
    hist_side = pa.ListArray.from_arrays(
        offsets32, pa.array(data.events.side[side][rows].astype(np.int64)))
    return pa.table({
        "user": pa.array(s["user"][keep]),
        "item": pa.array(s["item"][keep]),
        "category": pa.array(s[side][keep]),
        "label": pa.array(s["label"][keep].astype(np.float32)),
        "hist_item": hist_item,
        "hist_category": hist_side,
    })


def export(prepared: Path, out: Path, side: str = "category", train_rows: int = 0,
           seed: int = 0) -> dict:
    """Write ``out/{train,valid,test}.parquet`` + ``meta.json``; return the meta dict.

    ``train_rows`` > 0 keeps a seeded random subset of that many training rows (in their original
    order) for throughput-only peer runs; valid and test are always complete.
    """
    data = PreparedDataset.open(prepared)
    if side not in data.side_features:
        raise SystemExit(f"{prepared} has no side feature {side!r} (has {data.side_features})")
    out.mkdir(parents=True, exist_ok=True)
    meta: dict = {"prepared": str(prepared), "side": side, "train_rows_subset": train_rows,
                  "rows": {}, "mean_hist_len": {}}
    for split in SPLITS:
        subset = None
        n = data.samples(split)["user"].size
        if split == "train" and 0 < train_rows < n:
            rng = np.random.default_rng(seed)
            subset = np.sort(rng.choice(n, size=train_rows, replace=False))
        table = split_table(data, split, side, subset)
        pq.write_table(table, out / f"{split}.parquet")
        lengths = np.diff(table.column("hist_item").combine_chunks().offsets.to_numpy())
        meta["rows"][split] = table.num_rows
        meta["mean_hist_len"][split] = float(lengths.mean()) if lengths.size else 0.0
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prepared", type=Path, help="folder written by `chronorec prepare`")
    ap.add_argument("out", type=Path, help="output folder for the Parquet files")
    ap.add_argument("--side", default="category", help="side feature exported as `category`")
    ap.add_argument("--train-rows", type=int, default=0,
                    help="random subset of training rows (0 = all) for throughput-only runs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(export(args.prepared, args.out, args.side, args.train_rows, args.seed)))


if __name__ == "__main__":
    main()

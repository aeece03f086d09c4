"""prepare on the shared real data (skips when CHRONOREC_DATA / ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from chronorec.data.dataset import PreparedDataset
from chronorec.data.loader import BatchLoader
from chronorec.data.schema import FIRST_ID


def test_grocery_ctr_leave_one_out_counts(grocery_ctr_dataset: Path, data_root: Path) -> None:
    ds = PreparedDataset.open(grocery_ctr_dataset)
    s = ds.schema
    assert (s.n_users, s.n_items, s.n_events) == (14_681, 8_713, 151_254)
    n_u = ds.users["length"]
    assert s.counts["train"] == 2 * int((n_u - 3).sum())
    assert s.counts["valid"] == s.counts["test"] == 2 * 14_681
    assert s.task == "ctr" and s.side_features == ["category"]
    assert s.bin_edges["gap"][0] == 0.0  # day-granular: many zero gaps collapse into one bin
    # our test positives are exactly ReChorus' leave-one-out test file (ties broken by source order)
    ref = pl.read_csv(data_root / "amazon-grocery" / "test.csv", schema_overrides={"user_id": pl.Utf8, "item_id": pl.Utf8})
    te = ds.samples("test")
    pos = te["label"] > 0
    raw_user = ds.vocab("user")["raw"].to_numpy()[te["user"][pos] - FIRST_ID]
    raw_item = ds.vocab("item")["raw"].to_numpy()[te["item"][pos] - FIRST_ID]
    ours = pl.DataFrame({"user_id": raw_user, "item_id": raw_item}).sort("user_id")
    assert ours.equals(ref.select("user_id", "item_id").sort("user_id"))


def test_grocery_loader_epoch(grocery_ctr_dataset: Path) -> None:
    ds = PreparedDataset.open(grocery_ctr_dataset)
    ld = BatchLoader(ds, "train", batch_size=1024, shuffle=True, seed=0, bucket=True)
    rows = ld.batch_rows(0)
    assert np.array_equal(np.sort(np.concatenate(rows)), np.arange(ds.n_samples("train")))
    for k, batch in enumerate(ld.iter_epoch(0)):
        assert len(batch) == rows[k].size
        assert bool((batch.hist_ts.max(dim=1).values <= batch.target_ts).all())
        if k == 20:
            break


def test_cli_prepare_ml_latest_csv(tmp_path: Path, data_root: Path, capsys) -> None:
    from chronorec.cli import main

    ratings = data_root / "ml-latest-small" / "ratings.csv"
    if not ratings.is_file():
        pytest.skip(f"{ratings} not found")
    out = tmp_path / "ml"
    argv = ["prepare", "--source", "csv", "--path", str(ratings), "--map", "user=userId,item=movieId,time=timestamp",
            "--protocol", "next-item-last-out", "--out", str(out), "--max-history", "50"]
    main(argv)
    first = capsys.readouterr().out
    assert "prepared" in first and "671 users" in first and "100,004 events" in first
    ds = PreparedDataset.open(out)
    assert (ds.schema.n_users, ds.schema.n_items, ds.schema.n_events) == (671, 9_066, 100_004)
    assert np.array_equal(ds.samples("test")["hist_end"] - ds.samples("test")["hist_start"],
                          np.minimum(ds.users["length"] - 1, 50))
    main(argv)  # same inputs and options: no work
    assert "up to date" in capsys.readouterr().out
    main([*argv[:-1], "20"])  # an option changed: rebuilt
    assert "prepared" in capsys.readouterr().out and PreparedDataset.open(out).schema.max_history == 20

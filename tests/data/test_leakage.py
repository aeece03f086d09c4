"""No information from a sample's future: checked over every split of every protocol.

* every history lies inside its own user's events and ends at or before its target's time
  (strictly before for ctr-time-split);
* a valid/test target is never in its own history, nor in any history of an earlier split;
* negatives are never items of the user;
* bin edges are fitted on training data only (moving test-split timestamps leaves them unchanged).
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from chronorec.data.dataset import PreparedDataset
from chronorec.data.prepare import PrepareOptions, prepare
from chronorec.data.schema import FIRST_ID, SPLITS
from chronorec.data.sources import SourceData
from chronorec.data.timefeatures import ragged_arange


def _split_dates(source: SourceData) -> tuple[str, str]:
    q = np.quantile(source.impressions["ts"].to_numpy(), [0.7, 0.85]).astype(int)
    return tuple(dt.datetime.fromtimestamp(int(x), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") for x in q)  # type: ignore[return-value]


def _options(protocol: str, source: SourceData) -> PrepareOptions:
    extra = {"split_dates": _split_dates(source), "history_n": 15} if protocol == "ctr-time-split" else {}
    return PrepareOptions(protocol=protocol, **extra)


def _prepare(source: SourceData, out: Path, opts: PrepareOptions) -> PreparedDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare(source, out, opts)
    return PreparedDataset.open(out)


PROTOCOLS = ["ctr-leave-one-out", "next-item-last-out", "ctr-time-split"]


@pytest.fixture(scope="module", params=PROTOCOLS)
def prepared(request, synthetic_data: SourceData, tmp_path_factory) -> tuple[str, PreparedDataset]:
    protocol = request.param
    out = tmp_path_factory.mktemp("leak") / protocol
    return protocol, _prepare(synthetic_data, out, _options(protocol, synthetic_data))


def check_no_leakage(ds: PreparedDataset, protocol: str) -> None:
    ev = ds.events
    ts, item = ev.ts[: ev.n], ev.item[: ev.n]
    offs, lens = ds.users["offset"], ds.users["length"]
    width = np.int64(ds.schema.vocab_sizes["item"])
    user_items = np.unique(item.astype(np.int64) + width * np.repeat(np.arange(offs.size), lens))
    for split in SPLITS:
        s = ds.samples(split)
        u = s["user"] - FIRST_ID
        lo, hi = s["hist_start"], s["hist_end"]
        assert (lo >= offs[u]).all() and (hi <= offs[u] + lens[u]).all() and (lo <= hi).all(), split
        nonempty = hi > lo
        last_ts = ts[hi[nonempty] - 1]  # events are chronological within a user: the last is the latest
        if protocol == "ctr-time-split":
            assert (last_ts < s["ts"][nonempty]).all(), split
        elif not (protocol == "next-item-last-out" and split == "train"):
            assert (last_ts <= s["ts"][nonempty]).all(), split
        pos = s["label"] > 0
        if protocol != "ctr-time-split":
            test_row = offs[u] + lens[u] - 1  # the user's last event is the test target
            if split == "train":  # no train history or sequence reaches the valid/test events
                assert (hi <= test_row - (1 if protocol == "next-item-last-out" else 2)).all()
            else:
                assert np.array_equal(hi, test_row - (split == "valid"))
            if not (protocol == "next-item-last-out" and split == "train"):
                # the positive's target is the event right after its history, so never inside it
                k = np.flatnonzero(pos)
                assert np.array_equal(item[hi[k]], s["item"][k]) and np.array_equal(ts[hi[k]], s["ts"][k])
        # and no history event of a positive equals its target (item, ts)
        k = np.flatnonzero(pos)
        rows = ragged_arange(lo[k], hi[k] - lo[k])
        owner = np.repeat(k, hi[k] - lo[k])
        assert not ((item[rows] == s["item"][owner]) & (ts[rows] == s["ts"][owner])).any(), split
        if protocol == "ctr-leave-one-out":  # negatives are items the user never interacted with
            neg = ~pos
            assert neg.sum() == pos.sum()
            assert not np.isin(s["item"][neg] + width * u[neg], user_items).any()


def test_no_leakage(prepared: tuple[str, PreparedDataset]) -> None:
    protocol, ds = prepared
    check_no_leakage(ds, protocol)


def test_no_leakage_grocery(grocery_ctr_dataset: Path) -> None:
    check_no_leakage(PreparedDataset.open(grocery_ctr_dataset), "ctr-leave-one-out")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bin_edges_ignore_test_split(protocol: str, synthetic_data: SourceData, tmp_path: Path) -> None:
    opts = _options(protocol, synthetic_data)
    base = _prepare(synthetic_data, tmp_path / "a", opts).schema
    ev = synthetic_data.events.with_row_index("r")
    if protocol == "ctr-time-split":
        b2 = int(dt.datetime.fromisoformat(opts.split_dates[1]).replace(tzinfo=dt.UTC).timestamp())
        shift = lambda df: df.with_columns(  # noqa: E731
            pl.when(pl.col("ts") >= b2).then(pl.col("ts") + 3600).otherwise(pl.col("ts"))
        )
        moved = SourceData(
            "t", shift(synthetic_data.events), ["category"], [], shift(synthetic_data.impressions)
        )
    else:
        # move every user's last (test) event 400 days later: it stays last
        last = ev.sort("ts", "r").group_by("user").agg(pl.col("r").last())["r"]
        events = ev.with_columns(
            pl.when(pl.col("r").is_in(last.implode()))
            .then(pl.col("ts") + 400 * 86_400)
            .otherwise(pl.col("ts"))
        ).drop("r")
        moved = SourceData("t", events, ["category"], [], synthetic_data.impressions)
    changed = _prepare(moved, tmp_path / "b", opts).schema
    assert changed.time_span != base.time_span or protocol == "ctr-time-split"
    assert changed.bin_edges == base.bin_edges
    assert changed.groups.thresholds == base.groups.thresholds

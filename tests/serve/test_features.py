"""Request preprocessing mirrors prepare/loader: calendar, gaps, cap, vocabularies, side lookup, groups."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from serve_synth import PreparedView

from chronorec.data.schema import PAD, UNK
from chronorec.data.timefeatures import calendar_fields, event_gaps
from chronorec.serve.features import calendar, gaps, make_batch
from chronorec.serve.schemas import TimeOrderError, check_times
from chronorec.serve.service import ServedModel


def test_calendar_and_gaps_match_prepare(ctr_view: PreparedView) -> None:
    ev = ctr_view.events
    ts = ev["ts"].to_numpy()
    cal = calendar(ts)
    np.testing.assert_array_equal(cal[:, 0], ev["hour"].to_numpy() + 1)
    np.testing.assert_array_equal(cal[:, 1], ev["wday"].to_numpy() + 1)
    np.testing.assert_array_equal(cal[:, 2], ev["month"].to_numpy())
    # an independent implementation over dates far from the data (leap days, year ends, pre-1970 free)
    probe = np.array([0, 951_782_400, 951_868_799, 1_704_067_199, 4_102_444_800, 253_402_300_799])
    hour, wday, month = calendar_fields(probe)
    np.testing.assert_array_equal(calendar(probe), np.stack([hour + 1, wday + 1, month], axis=-1))
    for start, length in ctr_view.users.select("offset", "length").iter_rows():
        seg = ts[start : start + length]
        np.testing.assert_array_equal(gaps(seg), ev["gap"].to_numpy()[start : start + length])
    np.testing.assert_array_equal(gaps(ts[:5]), event_gaps(ts[:5], np.zeros(5)))


def test_history_cap_keeps_most_recent_and_gaps_of_full_history(ctr_served: ServedModel) -> None:
    t = ctr_served.tables
    items = list(t.item_index)[:6]
    ts = [100, 200, 400, 700, 1100, 1600]
    hist = t.encode(items, {}, ts)
    b = make_batch(hist, t.encode(items[:3], {}), 2000, UNK, 1, cap=4, side_features=t.side_features)
    assert b.hist_item.shape == (3, 4)
    assert b.hist_item.stride(0) == 0  # the history is shared across candidates (expanded, not copied)
    np.testing.assert_array_equal(b.hist_item[0].numpy(), hist.item[2:])
    np.testing.assert_array_equal(b.hist_gap[0].numpy(), [200, 300, 400, 500])  # first kept gap is real, not -1
    assert b.lengths.tolist() == [4, 4, 4]
    empty = make_batch(t.encode([], {}, []), t.encode(items[:2], {}), 2000, UNK, 1, None, t.side_features)
    assert empty.hist_item.shape == (2, 1) and not empty.mask.any() and empty.lengths.tolist() == [0, 0]
    assert empty.hist_gap[0, 0] == -1 and empty.hist_item[0, 0] == PAD


def test_unknown_ids_and_side_lookup(ctr_served: ServedModel, ctr_view: PreparedView) -> None:
    t = ctr_served.tables
    items_table = pl.read_parquet(ctr_view.dir / "items.parquet")
    known = items_table.filter(pl.col("item") >= 2).row(0, named=True)
    raw_item = ctr_view.raw["item"][known["item"]]
    enc = t.encode([raw_item, "never-seen", raw_item], {"category": [None, None, "no-such-category"]})
    assert enc.item.tolist() == [known["item"], UNK, known["item"]]
    assert enc.unknown_items == 1
    # omitted side value -> the item's known value; unknown item -> UNK; unknown given value -> UNK, counted
    assert enc.side["category"].tolist() == [known["category"], UNK, UNK]
    assert enc.unknown_side == {"category": 1}


def test_group_routing_matches_prepared_groups(ctr_served: ServedModel, ctr_view: PreparedView) -> None:
    users = ctr_view.users
    raw = ctr_view.raw["user"]
    got = [ctr_served.group_of(raw[u]) for u in users["user"].to_list()]
    assert got == users["group"].cast(pl.Int64).to_list()
    tail = len(ctr_served.schema.groups.names) - 1
    assert ctr_served.group_of("a-user-never-seen") == tail
    assert ctr_served.group_of(None) == tail


def test_check_times_names_field_and_index() -> None:
    check_times(np.array([1, 1, 5]), 5)  # ties and ts == request ts are fine
    with pytest.raises(TimeOrderError, match=r"history\[2\]\.ts = 3 is earlier than history\[1\]\.ts = 4") as err:
        check_times(np.array([1, 4, 3, 9]), 10)
    assert err.value.loc == ("body", "history", 2, "ts")
    with pytest.raises(TimeOrderError, match=r"history\[1\]\.ts = 11 is later than the request ts = 10") as err:
        check_times(np.array([1, 11, 12]), 10)
    assert err.value.loc == ("body", "history", 1, "ts")


def test_served_model_scores_in_process(ctr_served: ServedModel, ctr_view: PreparedView) -> None:
    req = ctr_served.models.score.model_validate(
        {"history": [{"item": ctr_view.raw["item"][2], "ts": 10}], "candidates": [{"item": "x"}, {"item": 7}],
         "ts": 20})
    out = ctr_served.score(req)
    assert len(out["scores"]) == 2 and all(0.0 < s < 1.0 for s in out["scores"])
    assert out["unknown_items"] == 2  # "x" and "7" (an int id is read as its decimal text)
    assert torch.is_grad_enabled()  # inference mode was scoped to the call

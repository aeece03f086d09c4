"""Temporal encodings: the indices each one looks up, bucketing vs numpy, calendar math, padding."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from chronorec.data.batch import synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.data.timefeatures import bucketize as np_bucketize
from chronorec.layers.temporal import (
    COE,
    TTEP,
    TTET,
    bucketize,
    build_temporal,
    calendar_fields,
    integer_edges,
)

EDGES = [0.0, 3600.0, 86_400.0, 86_400.0 * 7, 86_400.0 * 30]


def schema(max_len: int = 8) -> DatasetSchema:
    return DatasetSchema(
        name="t", protocol="ctr-leave-one-out", task="ctr", n_users=5, n_items=48, n_events=10,
        vocab_sizes={"item": 50, "category": 7}, side_features=["category"], max_history_len=max_len,
        bin_edges={"interval": EDGES},
    )


def test_ttep_indices_count_back_from_the_target() -> None:
    b = synthetic_batch(batch_size=4, max_len=6, seed=3)
    b.lengths[:] = torch.tensor([6, 3, 1, 0])
    b.mask = torch.arange(6)[None, :] < b.lengths[:, None]
    idx = TTEP(schema(max_len=4), dim=2).indices(b)
    # most recent = 1, oldest = H; padding 0; H - i + 1 above max_len=4 clamps to the last row (4)
    expected = torch.tensor([[4, 4, 4, 3, 2, 1], [3, 2, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0] * 6])
    assert torch.equal(idx, expected)


def test_coe_indices_are_chronological_and_target_agnostic() -> None:
    b = synthetic_batch(batch_size=3, max_len=5)
    idx = COE(schema(max_len=3), dim=2).indices(b)
    assert torch.equal(idx, torch.tensor([1, 2, 3, 3, 3]).expand(3, 5))  # clamped at max_len=3


def test_target_is_the_origin_row_and_padding_is_zero() -> None:
    b = synthetic_batch(batch_size=5, max_len=7, min_len=0)
    for kind in ("ttep", "ttet", "coe"):
        enc = build_temporal(kind, schema(), dim=4)
        hist, tgt = enc(b)
        assert hist.shape == (5, 7, 4) and tgt.shape == (5, 4)
        torch.testing.assert_close(tgt, enc.p[0].expand(5, 4))
        assert (hist[~b.mask] == 0).all()
        torch.testing.assert_close(hist[b.mask], enc.p[enc.indices(b)][b.mask])
    hist, tgt = build_temporal("none", schema(), dim=4)(b)
    assert (hist == 0).all() and (tgt == 0).all()


@pytest.mark.parametrize("edges", [EDGES, [0.5, 10.2, 99.9], [5.0]])
def test_bucketize_matches_data_layer_and_numpy(edges: list[float]) -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.integers(-10, 3_000_000, 500), np.floor(edges).astype(np.int64),
                             np.ceil(edges).astype(np.int64)])
    expected = np.searchsorted(np.asarray(edges), values, side="left") + 1
    np.testing.assert_array_equal(np_bucketize(values, edges), expected)
    got = bucketize(torch.from_numpy(values), integer_edges(edges))
    np.testing.assert_array_equal(got.numpy(), expected)


def test_ttet_buckets_target_minus_behavior_time() -> None:
    b = synthetic_batch(batch_size=6, max_len=9, seed=2)
    enc = TTET(schema(), dim=3)
    assert enc.edges.dtype == torch.long and "edges" in enc.state_dict()  # saved with the model
    tau = (b.target_ts[:, None] - b.hist_ts).numpy()
    expected = np.searchsorted(np.asarray(EDGES), tau, side="left") + 1
    np.testing.assert_array_equal(enc.indices(b)[b.mask].numpy(), expected[b.mask.numpy()])
    assert enc.p.shape[0] == len(EDGES) + 2


def test_calendar_fields_match_datetime() -> None:
    ts = torch.tensor([0, 951_782_400, 1_300_000_000, 1_709_251_199, 1_709_251_200, 4_102_444_799, -86_400])
    got = calendar_fields(ts)
    for t, (h, w, m) in zip(ts.tolist(), got.tolist(), strict=True):
        d = dt.datetime.fromtimestamp(t, tz=dt.UTC)
        assert (h, w, m) == (d.hour + 1, d.weekday() + 1, d.month), t


def test_calendar_encoding_sums_field_embeddings() -> None:
    b = synthetic_batch(batch_size=3, max_len=4, min_len=0)
    enc = build_temporal("calendar", schema(), dim=5)
    hist, tgt = enc(b)
    cal = b.hist_calendar[0, 0]
    manual = sum(enc.field_weight(k)[cal[k]] for k in range(3))
    torch.testing.assert_close(hist[0, 0], manual)
    assert (hist[~b.mask] == 0).all()
    tf = calendar_fields(b.target_ts)
    torch.testing.assert_close(tgt[1], sum(enc.field_weight(k)[tf[1, k]] for k in range(3)))
    b.hist_calendar[~b.mask] = 5  # junk in the padding
    torch.testing.assert_close(enc(b)[0], hist)


def test_ttet_without_edges_fails_clearly() -> None:
    s = schema().model_copy(update={"bin_edges": {}})
    with pytest.raises(ValueError, match="interval"):
        build_temporal("ttet", s, dim=2)

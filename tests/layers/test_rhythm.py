"""INTERPOS rhythm ids and position–rhythm fusions."""

from __future__ import annotations

import pytest
import torch

from chronorec.errors import ChronorecError
from chronorec.layers.rhythm import RHYTHM_FIRST, RHYTHM_PAD, PositionRhythmFusion, RhythmEmbedding

DAY = 86_400


def _ids(rule: RhythmEmbedding, gaps: list[int]) -> list[int]:
    g = torch.tensor([gaps])
    return rule(g, torch.ones_like(g, dtype=torch.bool))[0].tolist()


def test_scaled_days_hand_values() -> None:
    rh = RhythmEmbedding("scaled_days")  # scale 0.2/day: one bucket per 5 days, cap 640
    assert rh.n_buckets == 641 and rh.n_ids == 643
    # first behavior (-1) counts as gap 0; 5 days is exactly bucket 1; ~100 years clips at 640
    gaps = [-1, 0, 5 * DAY - 1, 5 * DAY, 10 * DAY + 7, 3199 * DAY, 3200 * DAY, 100 * 365 * DAY]
    assert _ids(rh, gaps) == [2, 2, 2, 3, 4, 2 + 639, 2 + 640, 2 + 640]


def test_scaled_days_other_scale() -> None:
    rh = RhythmEmbedding("scaled_days", scale=1.0, cap=3)  # one bucket per day, 4 buckets
    assert _ids(rh, [0, DAY - 1, DAY, 2 * DAY, 30 * DAY]) == [2, 2, 3, 4, 5]
    assert rh.n_ids == 6


def test_equal_freq_hand_values() -> None:
    rh = RhythmEmbedding("equal_freq", edges=[60.0, 3600.0, 86400.0, 3600.0])  # duplicate edge dropped
    assert rh.n_buckets == 4
    # bucket = number of edges <= gap
    assert _ids(rh, [-1, 0, 59, 60, 3599, 3600, 86399, 86400, 10**9]) == [2, 2, 2, 3, 3, 4, 4, 5, 5]


def test_equal_freq_needs_edges() -> None:
    with pytest.raises(ChronorecError, match="bin edges"):
        RhythmEmbedding("equal_freq", edges=[])


def test_log_hand_values() -> None:
    rh = RhythmEmbedding("log", log_cap=20)
    # 0 -> bucket 0; otherwise floor(log2(gap)) + 1; 86400 s: log2 = 16.4 -> 17
    assert _ids(rh, [0, 1, 2, 3, 4, 7, 8, 86_400, 2**40]) == [2, 3, 4, 4, 5, 5, 6, 2 + 17, 2 + 20]


@pytest.mark.parametrize("rule", ["scaled_days", "log", "equal_freq"])
def test_padding_id_distinct_from_zero_gap(rule: str) -> None:
    rh = RhythmEmbedding(rule, edges=[10.0, 100.0])  # type: ignore[arg-type]
    gap = torch.tensor([[-1, 0, 0, -1]])
    mask = torch.tensor([[True, True, False, False]])
    ids = rh(gap, mask)[0].tolist()
    assert ids == [RHYTHM_FIRST, RHYTHM_FIRST, RHYTHM_PAD, RHYTHM_PAD]
    assert RHYTHM_PAD != RHYTHM_FIRST


def _fusion(kind: str) -> tuple[PositionRhythmFusion, torch.Tensor]:
    torch.manual_seed(0)
    f = PositionRhythmFusion(kind, dim=8, max_len=6, n_rhythm=10)  # type: ignore[arg-type]
    ids = torch.tensor([[2, 5, 9, 0, 0], [3, 3, 3, 3, 4]])  # [B=2, L=5]
    return f, ids


def test_none_is_plain_positions() -> None:
    f, _ = _fusion("none")
    out = f(None, 5)
    assert out.shape == (1, 5, 8)
    assert torch.equal(out[0], f.pos.weight[:5])


def test_bf_is_exact_sum() -> None:
    f, ids = _fusion("bf")
    out = f(ids, 5)  # [2, 5, 8]
    expected = f.pos.weight[:5][None] + f.rhythm.weight[ids]
    assert torch.equal(out, expected)
    # the padding rhythm row is zero: a padded slot is the bare position
    assert torch.equal(out[0, 3], f.pos.weight[3])


def test_mf_formula() -> None:
    f, ids = _fusion("mf")
    out = f(ids, 5)
    p = f.pos.weight[:5][None].expand(2, 5, 8)
    r = f.rhythm.weight[ids]
    expected = torch.relu(torch.cat([p, r], -1) @ f.mlp.weight.T + f.mlp.bias)
    torch.testing.assert_close(out, expected)
    assert (out >= 0).all()


def test_gf_formula() -> None:
    f, ids = _fusion("gf")
    out = f(ids, 5)
    p = f.pos.weight[:5][None].expand(2, 5, 8)
    r = f.rhythm.weight[ids]
    g = torch.sigmoid(torch.cat([p, r], -1) @ f.gate.weight.T + f.gate.bias)
    expected = g * torch.tanh(p @ f.proj_p.weight.T + f.proj_p.bias) + (1 - g) * torch.tanh(
        r @ f.proj_r.weight.T + f.proj_r.bias
    )
    torch.testing.assert_close(out, expected)
    assert out.abs().max() <= 1.0  # a convex mix of two tanh terms


def test_fusion_rejects_long_sequences_and_missing_ids() -> None:
    f, ids = _fusion("bf")
    with pytest.raises(ValueError, match="max_len"):
        f(ids, 7)
    with pytest.raises(ValueError, match="rhythm ids"):
        f(None, 5)
    with pytest.raises(ChronorecError):
        PositionRhythmFusion("xf", 8, 6, 10)  # type: ignore[arg-type]

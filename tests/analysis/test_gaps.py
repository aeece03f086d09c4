"""`chronorec analyze gaps`: the gap distribution and what each rhythm bucketing rule makes of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from chronorec.analysis.gaps import DAY, HOUR, dataset_gaps, gap_summary, human
from chronorec.cli import main
from chronorec.data.dataset import PreparedDataset
from chronorec.errors import ChronorecError
from chronorec.layers.rhythm import RhythmEmbedding

RULES = {"scaled_days": RhythmEmbedding("scaled_days"), "log": RhythmEmbedding("log")}


def test_shares_quantiles_and_the_resolution_each_rule_keeps() -> None:
    # 4 gaps of 10 s, 2 of 30 min, 2 of 2 days, 2 of 60 days
    gaps = np.array([10] * 4 + [1_800] * 2 + [2 * DAY] * 2 + [60 * DAY] * 2)
    s = gap_summary(gaps, RULES)
    assert s["n_gaps"] == 10 and s["share"]["zero"] == 0.0
    assert s["share"]["under_1min"] == pytest.approx(0.4) and s["share"]["under_1h"] == pytest.approx(0.6)
    assert s["share"]["under_1d"] == pytest.approx(0.6) and s["share"]["under_1w"] == pytest.approx(0.8)
    assert s["quantiles_s"]["0.5"] == pytest.approx(np.median(gaps))
    sd, lg = s["rules"]["scaled_days"], s["rules"]["log"]
    # scaled_days (5-day buckets): 10 s, 30 min and 2 days share bucket 0; 60 days is bucket 12
    assert sd["used"] == 2 and sd["top_bucket"] == 0 and sd["top_share"] == pytest.approx(0.8)
    assert sd["top_range_s"] == [10, 2 * DAY] and sd["sub_hour_mixed_with_days"] == 1.0
    assert sd["entropy_bits"] == pytest.approx(-(0.8 * np.log2(0.8) + 0.2 * np.log2(0.2)))
    # log2 buckets: four distinct scales, none mixing seconds with days
    assert lg["used"] == 4 and lg["sub_hour_mixed_with_days"] == 0.0
    assert lg["effective_buckets"] == pytest.approx(2 ** lg["entropy_bits"])
    # the counts are the models' own bucketing
    ids = RULES["log"].bucket(torch.from_numpy(gaps)).numpy()
    assert lg["top_share"] == pytest.approx(np.bincount(ids).max() / gaps.size)


def test_uniform_occupancy_has_log2_k_bits() -> None:
    gaps = np.repeat([1, 2, 4, 8], 5)  # log buckets 1, 2, 3, 4
    assert gap_summary(gaps, {"log": RULES["log"]})["rules"]["log"]["entropy_bits"] == pytest.approx(2.0)


@pytest.mark.parametrize("gaps, message", [(np.array([], dtype=np.int64), "no gaps"),
                                           (np.array([5, -3]), "negative gap at position 1")])
def test_bad_gaps_are_clear_errors(gaps: np.ndarray, message: str) -> None:
    with pytest.raises(ChronorecError, match=message):
        gap_summary(gaps, RULES)


def test_human_units() -> None:
    assert [human(v) for v in (0, 42, 90, 2 * HOUR, 3.8 * DAY)] == ["0 s", "42 s", "1.5 min", "2 h", "3.8 d"]


def test_dataset_gaps_leave_out_each_users_first_event(tiny_nextitem_dataset: Path) -> None:
    ds = PreparedDataset.open(tiny_nextitem_dataset)
    g = dataset_gaps(ds)
    assert g.size == ds.events.n - ds.users["user"].size and (g >= 0).all()
    ts = ds.events.ts[: ds.events.n]
    assert g.sum() == sum(int(ts[o + n - 1] - ts[o]) for o, n in zip(ds.users["offset"], ds.users["length"], strict=True))


def test_cli_writes_json_markdown_and_figure(tiny_nextitem_dataset: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    main(["analyze", "gaps", "--data", str(tiny_nextitem_dataset), "--out", str(tmp_path), "--scale", "1"])
    s = json.loads((tmp_path / "gaps.json").read_text())
    assert s["scaled_days"] == {"scale": 1.0, "cap": 640} and {"scaled_days", "log"} <= set(s["rules"])
    assert s["n_gaps"] == dataset_gaps(PreparedDataset.open(tiny_nextitem_dataset)).size
    assert (tmp_path / "gaps.png").stat().st_size > 5_000
    md = (tmp_path / "gaps.md").read_text()
    assert "| scaled_days |" in md and md in capsys.readouterr().out

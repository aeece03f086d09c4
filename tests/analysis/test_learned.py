from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from chronorec.analysis.learned import behavior_scores, by_position
from chronorec.analysis.prepared import PreparedArrays
from chronorec.data.batch import synthetic_batch

from .oracle_models import Oracle, OracleConfig
from .planted import planted_weights


def test_by_position_gathers_from_the_right_end() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 5.0, 0.0, 0.0]], dtype=torch.float64)
    out = by_position(values, torch.tensor([3, 2]), 3)
    assert out[0].tolist() == [3.0, 2.0, 1.0]
    assert out[1, :2].tolist() == [5.0, 4.0] and np.isnan(out[1, 2])


def test_behavior_scores_multiply_present_terms_only() -> None:
    batch = synthetic_batch(batch_size=6, max_len=9, side_vocab={"category": 4}, seed=3)
    with_rep = behavior_scores(Oracle(cfg=OracleConfig(with_rep=True)), batch)
    attn_only = behavior_scores(Oracle(), batch)
    z = Oracle()._z(batch)
    m = batch.mask
    assert torch.allclose(attn_only[m], torch.exp(z[m]))
    assert torch.allclose(with_rep[m], 2.0 * torch.exp(z[m]))
    assert torch.isnan(attn_only[~m]).all()


def test_make_batch_is_right_padded_and_keeps_the_most_recent(planted_dir: Path) -> None:
    data = PreparedArrays(planted_dir)
    s = data.samples(["test"]).take(np.arange(5))
    items = data.event_column("item")
    b = data.make_batch(s, max_len=6)
    for k in range(5):  # five rows, checked one by one against the events
        n = min(int(s.hist_len[k]), 6)
        want = items[s.hist_end[k] - n : s.hist_end[k]]
        assert b.lengths[k].item() == n
        assert b.hist_item[k, :n].tolist() == want.tolist()
        assert (b.hist_item[k, n:] == 0).all() and not b.mask[k, n:].any()
    assert b.target_side["category"].tolist() == s.side["category"].tolist()


def test_learned_table_has_the_closed_form_values(analysis: tuple[Path, dict]) -> None:
    out, _ = analysis
    learned = pl.read_parquet(out / "learned_oracle.parquet")
    same = learned.filter(pl.col("category") == pl.col("target_category")).sort("target_category", "position")
    w = planted_weights(10)
    got = same["learned"].to_numpy().reshape(6, 10)
    assert got == pytest.approx(np.tile(np.exp(w), (6, 1)))
    other = learned.filter(pl.col("category") != pl.col("target_category"))["learned"].to_numpy()
    assert other == pytest.approx(np.ones_like(other))
    # n = behaviors of the cell; identical to the ground truth's X=1 counts (same samples)
    ctc = pl.read_parquet(out / "ctc.parquet")
    j = learned.join(ctc, on=["target_category", "category", "position"])
    assert j.height == ctc.height == learned.height
    assert (j["n"] == j["n_x1_pos"] + j["n_x1_neg"]).all()
    assert {"target_category_raw", "category_raw"} <= set(ctc.columns)


def test_agreement_strong_for_oracle_undefined_for_position_blind(analysis: tuple[Path, dict]) -> None:
    out, _ = analysis
    js = json.loads((out / "agreement.json").read_text())
    assert js["models"]["oracle"]["share"]["strong"] == 1.0
    blind = js["models"]["blind"]
    assert blind["counts"]["undefined"] == 6 and blind["undefined_reasons"] == {"constant curve": 6}
    md = (out / "agreement.md").read_text()
    assert "| oracle | 6 | 100.0% |" in md and "6 (6 constant curve)" in md
    targets = pl.read_parquet(out / "agreement_targets.parquet")
    assert targets.height == 12 and set(targets["bin"]) == {"strong", "undefined"}


def test_figures_and_gauc_by_length_are_written(analysis: tuple[Path, dict]) -> None:
    out, _ = analysis
    for f in ("fig1_heatmaps.png", "fig4_intervals.png", "fig6_pearson_bins.png", "fig7_sequences.png",
              "table3_gauc_by_length.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
    g = json.loads((out / "gauc_by_length.json").read_text())
    assert list(g["oracle"]) == ["[1, 5)", "[5, 10)", "[10, 15)", "[15, 20)", "[20, 30]"]
    assert sum(v["n"] for v in g["oracle"].values()) == 3000  # every test sample (2 per user) bucketed
    # the oracle scores with the planted weights: clearly better than chance on long histories
    assert g["oracle"]["[20, 30]"]["gauc"] > 0.6
    assert g["blind"]["[20, 30]"]["gauc"] > 0.5

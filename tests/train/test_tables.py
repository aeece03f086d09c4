"""Paper-layout tables from fake per-seed metrics (hand-computed means, stds and deltas)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chronorec.train import tables


def test_mean_std_and_formatting() -> None:
    assert tables.mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert tables.mean_std([0.5]) == (0.5, 0.0)
    assert all(math.isnan(x) for x in tables.mean_std([]))
    assert tables.mean_std([1.0, float("nan"), 3.0])[0] == 2.0
    assert tables.fmt_ms([0.8, 0.9]) == "0.8500 ± 7.1e-02"
    assert tables.fmt_ms([]) == "–"
    assert tables.fmt_ms([0.03594, float("nan")]) == "0.0359"  # one seed: no std to show
    assert tables.delta_pct(0.8523, 0.8445) == "+0.92"  # the TIN paper's Avg Pooling & Product GAUC
    assert tables.delta_pct(0.4824, 0.4908) == "-1.71"
    assert tables.delta_pct(1.0, 0.0) == "–"


def test_table1_rows_codes_and_deltas() -> None:
    results = {
        "Avg Pooling & Concat": [{"logloss": 0.50, "gauc": 0.80}, {"logloss": 0.52, "gauc": 0.82}],
        "TIN": [{"logloss": 0.459, "gauc": 0.8526}, {"logloss": 0.459, "gauc": 0.8526}],
    }
    text = tables.table1(results, {"Avg Pooling & Concat": "×××", "TIN": "✓✓✓"}, "Avg Pooling & Concat")
    lines = text.splitlines()
    assert lines[0] == "| Model | Code (TI TA TR) | Logloss | Δ% | GAUC | Δ% | seeds |"
    assert lines[2] == "| Avg Pooling & Concat | ××× | 0.5100 ± 1.4e-02 | – | 0.8100 ± 1.4e-02 | – | 2 |"
    # logloss (0.459 - 0.51) / 0.51 = -10.00 %, GAUC (0.8526 - 0.81) / 0.81 = +5.26 %
    assert lines[3] == "| TIN | ✓✓✓ | 0.4590 ± 0.0e+00 | -10.00 | 0.8526 ± 0.0e+00 | +5.26 | 2 |"


def test_gauc_by_length_buckets() -> None:
    idx, names = tables.length_buckets(np.array([1, 4, 5, 19, 20, 430]))
    assert names == ["[1, 5)", "[5, 10)", "[10, 15)", "[15, 20)", "[20, 430]"]
    assert idx.tolist() == [0, 0, 1, 3, 4, 4]
    labels = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.5, 0.5])
    users = np.array([1, 1, 2, 2, 3, 3])
    lengths = np.array([2, 2, 7, 7, 30, 30])
    got = tables.gauc_by_length(labels, scores, users, lengths)
    assert got["[1, 5)"] == 1.0 and got["[5, 10)"] == 0.0 and got["[20, 30]"] == 0.5
    assert math.isnan(got["[10, 15)"])


def test_table3_and_table4() -> None:
    by_len = {"TTE-P": [{"[1, 5)": 0.8571, "[5, 10)": 0.8630}], "COE": [{"[1, 5)": 0.8564, "[5, 10)": 0.8615}]}
    t3 = tables.table3(by_len).splitlines()
    assert t3[0] == "| Range of sequence lengths | [1, 5) | [5, 10) |"
    assert t3[-1] == "| Δ% (GAUC, COE vs TTE-P) | -0.08 | -0.17 |"
    t4 = tables.table4({"TTE-P": [{"logloss": 0.4636, "gauc": 0.8629}],
                        "TTE-T": [{"logloss": 0.4484, "gauc": 0.8703}]}).splitlines()
    assert t4[2].startswith("| TTE-P | 0.4636 | – |")  # one seed: the mean alone
    assert t4[3] == "| TTE-T | 0.4484 | -3.28 | 0.8703 | +0.86 |"  # the paper's Table 4


def test_ranking_table_delta_vs_base() -> None:
    m = {"ndcg@10": 0.1, "ndcg@20": 0.2, "hit@10": 0.3, "hit@20": 0.4, "mrr@10": 0.05}
    results = {"SASRec": [m, m], "SASRec + rhythm (BF)": [{**m, "ndcg@20": 0.3}] * 2}
    lines = tables.ranking_table(results, {"SASRec + rhythm (BF)": "SASRec"}).splitlines()
    assert lines[0].startswith("| Model | NDCG@10 | NDCG@20 | HIT@10 | HIT@20 | MRR@10 |")
    assert lines[2].endswith("| – | 2 |")
    assert lines[3].endswith("| +50.00 | 2 |")


def test_gauc_by_time_span_and_its_table() -> None:
    """The by-span table: day spans bucketed by DEFAULT_SPAN_EDGES_DAYS, rendered TTE-P vs TTE-T."""
    days = np.array([0, 89, 90, 400, 800, 2000])
    idx, names = tables.length_buckets(days, tables.DEFAULT_SPAN_EDGES_DAYS)
    assert names == ["[0, 90)", "[90, 365)", "[365, 730)", "[730, 1460)", "[1460, 2000]"]
    assert idx.tolist() == [0, 0, 1, 2, 3, 4]
    by_span = {"TTE-P": [{"[0, 90)": 0.60, "[1460, 2000]": 0.70}], "TTE-T": [{"[0, 90)": 0.60, "[1460, 2000]": 0.77}]}
    t = tables.table3(by_span, other="TTE-T", header="History time span (days)").splitlines()
    assert t[0] == "| History time span (days) | [0, 90) | [1460, 2000] |"
    assert t[-1] == "| Δ% (GAUC, TTE-T vs TTE-P) | +0.00 | +10.00 |"

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import mutual_info_score

from chronorec.analysis import ctc
from chronorec.analysis.prepared import PreparedArrays
from chronorec.data.schema import PAD, UNK


def test_position_matrix_reads_backwards_from_hist_end() -> None:
    cats = np.array([2, 3, 4, 5, 6, 7])
    out = ctc.position_matrix(cats, np.array([1, 0, 3]), np.array([4, 6, 3]), 4)
    assert out.tolist() == [[5, 4, 3, 0], [7, 6, 5, 4], [0, 0, 0, 0]]


def _random_case(seed: int = 0, n: int = 400, P: int = 4) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    tcat = rng.choice([2, 3, 4], n, p=[0.5, 0.3, 0.2])
    pos_cat = rng.integers(2, 7, (n, P))
    pos_cat[rng.random((n, P)) < 0.2] = 0  # short histories
    label = (rng.random(n) < 0.3 + 0.4 * (pos_cat[:, 0] == tcat)).astype(np.float32)
    return tcat, pos_cat, label


def test_mi_matches_sklearn_per_cell() -> None:
    tcat, pos_cat, label = _random_case()
    targets = ctc.select_targets(tcat, None, 1)
    table = ctc.ctc_table(tcat, label, pos_cat, targets, n_categories=8)
    got = {(r["target_category"], r["category"], r["position"]): r["mi"] for r in table.iter_rows(named=True)}
    checked = 0
    for t in targets.tolist():
        rows = tcat == t
        for c in range(2, 8):
            for p in range(1, pos_cat.shape[1] + 1):
                x = (pos_cat[rows, p - 1] == c).astype(int)
                want = mutual_info_score(x, label[rows].astype(int))
                assert got.get((t, c, p), 0.0) == pytest.approx(want, abs=1e-12)
                checked += want > 0
    assert checked > 20  # most cells carry information


def test_counts_are_the_contingency_table() -> None:
    tcat, pos_cat, label = _random_case(seed=1)
    targets = ctc.select_targets(tcat, None, 1)
    table = ctc.ctc_table(tcat, label, pos_cat, targets, n_categories=8)
    r = table.filter((pl.col("target_category") == 3) & (pl.col("category") == 5) & (pl.col("position") == 2))
    sel = tcat == 3
    x = pos_cat[sel, 1] == 5
    y = label[sel] == 1
    assert r["n_x1_pos"].item() == int((x & y).sum())
    assert r["n_x1_neg"].item() == int((x & ~y).sum())
    assert r["n_target_pos"].item() == int(y.sum())
    assert r["n_target_neg"].item() == int((~y).sum())


def test_sparse_counting_path_equals_bincount(monkeypatch: pytest.MonkeyPatch) -> None:
    tcat, pos_cat, label = _random_case(seed=2)
    targets = ctc.select_targets(tcat, None, 1)
    dense = ctc.ctc_table(tcat, label, pos_cat, targets, 8)
    monkeypatch.setattr(ctc, "_DENSE_KEY_LIMIT", 0)
    sparse = ctc.ctc_table(tcat, label, pos_cat, targets, 8)
    assert dense.equals(sparse)


def test_select_targets_orders_by_frequency_and_filters() -> None:
    tcat = np.array([5] * 4 + [3] * 6 + [9] * 2 + [7] * 4 + [0])
    assert ctc.select_targets(tcat, None, 1).tolist() == [3, 5, 7, 9]
    assert ctc.select_targets(tcat, 2, 1).tolist() == [3, 5]
    assert ctc.select_targets(tcat, None, 3).tolist() == [3, 5, 7]


def test_binary_mi_edge_cases() -> None:
    # X independent of Y, X constant, and X == Y
    mi = ctc.binary_mi(np.array([25, 0, 50]), np.array([25, 0, 0]), np.array([50, 50, 50]), np.array([50, 50, 50]))
    assert mi[0] == pytest.approx(0.0, abs=1e-15)
    assert mi[1] == 0.0
    assert mi[2] == pytest.approx(np.log(2))


def test_planted_pattern_is_recovered(planted_dir: Path) -> None:
    data = PreparedArrays(planted_dir)
    s = data.samples(["train"])
    tcat = s.side["category"]
    pos_cat = ctc.position_matrix(data.event_column("category"), s.hist_start, s.hist_end, 10)
    targets = ctc.select_targets(tcat, 200, 50)
    assert targets.size == 6
    table = ctc.ctc_table(tcat, s.label, pos_cat, targets, data.schema.vocab_sizes["category"])
    same = ctc.same_category_curves(table, "mi", targets, 10)  # [K, 10]
    # temporal decay: the planted weight shrinks with the position, so does the MI
    assert np.all(np.diff(same[:, :3], axis=1) < 0)
    assert np.all(np.diff(same.mean(axis=0)[:6]) < 0)
    rank_r = [np.corrcoef(np.argsort(np.argsort(-row)), np.arange(10))[0, 1] for row in same]
    assert min(rank_r) > 0.8  # Spearman: larger MI at more recent positions
    assert np.all(same[:, 0] > 3 * same[:, 7:].max(axis=1))
    # semantic pattern: the target's own category beats every other category at positions 1..3
    other = table.filter(pl.col("target_category") != pl.col("category"))
    for k, t in enumerate(targets.tolist()):
        top_other = other.filter((pl.col("target_category") == t) & (pl.col("position") <= 3))["mi"].max()
        assert same[k, :3].min() > top_other


def test_unknown_category_is_neither_a_target_nor_a_history_category() -> None:
    tcat, pos_cat, label = _random_case(seed=3)
    rng = np.random.default_rng(3)
    tcat = np.where(rng.random(tcat.shape) < 0.3, UNK, tcat)
    unk_hist = np.where(rng.random(pos_cat.shape) < 0.3, UNK, pos_cat)
    targets = ctc.select_targets(tcat, None, 1)
    assert UNK not in targets.tolist() and targets.size == 3
    with_unk = ctc.ctc_table(tcat, label, unk_hist, targets, 8)
    as_padding = ctc.ctc_table(tcat, label, np.where(unk_hist == UNK, PAD, unk_hist), targets, 8)
    assert with_unk.equals(as_padding)
    assert UNK not in with_unk["category"].to_list()

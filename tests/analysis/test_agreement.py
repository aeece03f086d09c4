from __future__ import annotations

import numpy as np
import pytest

from chronorec.analysis import agreement


def test_bins_follow_the_paper_edges() -> None:
    r = np.array([-1.0, 0.0, 0.2, np.nextafter(0.2, 1), 0.5, 0.8, np.nextafter(0.8, 1), 1.0, np.nan])
    assert agreement.pearson_bin(r).tolist() == [
        "poor", "poor", "poor", "medium", "medium", "medium", "strong", "strong", "undefined"]


def test_pearson_rows_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((20, 10)), rng.random((20, 10))
    r, reason = agreement.pearson_rows(a, b)
    want = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)]
    assert r == pytest.approx(want, abs=1e-12)
    assert (reason == "").all()


def test_pearson_rows_skips_undefined_positions() -> None:
    a = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    b = np.array([[10.0, np.nan, 6.0, 4.0, np.nan]])
    r, _ = agreement.pearson_rows(a, b)
    assert r[0] == pytest.approx(np.corrcoef([5, 3, 2], [10, 6, 4])[0, 1])


def test_undefined_r_is_reported_with_its_reason() -> None:
    a = np.array([[3.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    b = np.array([[7.0, 7.0, 7.0, 7.0], [1.0, np.nan, np.nan, np.nan], [1.0, 2.0, 3.0, 4.0],
                  [2.0, 4.0, 6.0, 8.0 + 1e-9]])
    r, reason = agreement.pearson_rows(a, b)
    assert reason.tolist() == ["constant curve", "too few positions", "constant curve", ""]
    assert np.isnan(r[:3]).all() and r[3] == pytest.approx(1.0)
    s = agreement.summarize(r, reason)
    assert s["counts"] == {"strong": 1, "medium": 0, "poor": 0, "undefined": 3}
    assert s["undefined_reasons"] == {"constant curve": 2, "too few positions": 1}
    assert sum(s["share"].values()) == pytest.approx(1.0)
    assert s["share"]["strong"] == 0.25 and s["share_of_defined"]["strong"] == 1.0


def test_nearly_constant_but_real_variation_is_kept() -> None:
    a = np.array([[1e-9, 2e-9, 3e-9]])  # tiny MI values still define a curve
    b = np.array([[1.0, 2.0, 3.0]])
    r, reason = agreement.pearson_rows(a, b)
    assert reason[0] == "" and r[0] == pytest.approx(1.0)


def test_markdown_table_lists_every_model() -> None:
    s = {"tin": agreement.summarize(np.array([0.9, 0.5, np.nan]), np.array(["", "", "constant curve"], dtype=object)),
         "din": agreement.summarize(np.array([0.1, 0.0, 0.95]), np.array(["", "", ""], dtype=object))}
    md = agreement.markdown_table(s)
    assert "| tin | 3 | 33.3% | 33.3% | 0.0% | 1 (1 constant curve) |" in md
    assert "| din | 3 | 33.3% | 0.0% | 66.7% | 0 |" in md


def test_settings_table_averages_seeds() -> None:
    """Seeds of one setting become one row: mean ± sample std of each bin share and of mean r."""
    ok = np.array(["", ""], dtype=object)
    s = {"tin-s0": agreement.summarize(np.array([0.9, 0.1]), ok),   # strong 50%, poor 50%, r 0.5
         "tin-s1": agreement.summarize(np.array([0.9, 0.95]), ok),  # strong 100%, r 0.925
         "din-s0": agreement.summarize(np.array([0.5, 0.1]), ok)}   # medium 50%, poor 50%, r 0.3
    md = agreement.settings_table(s, {"tin": ["tin-s0", "tin-s1"], "din": ["din-s0"]})
    assert "| tin | 2 | 75.0 ± 35.4% | 0.0 ± 0.0% | 25.0 ± 35.4% | 0.713 ± 0.301 |" in md
    assert "| din | 1 | 0.0% | 50.0% | 50.0% | 0.300 |" in md

"""benchmarks/compare_ranks.py: per-run metrics, seed means and the paired bootstrap over users."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from rankfiles import load_script, ndcg10, write_ranks

cr = load_script("compare_ranks")


def test_group_means_and_paired_difference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = [list(rng.integers(1, 40, 200)) for _ in range(2)]
    better = [[max(1, r - 3) for r in b] for b in base]  # every user's target moved up
    files_a = [write_ranks(tmp_path / f"a{i}.csv", b) for i, b in enumerate(base)]
    files_b = [write_ranks(tmp_path / f"b{i}.parquet", b) for i, b in enumerate(better)]
    res = cr.compare({"a": files_a, "b": files_b}, ["ndcg@10", "hit@10"], resamples=2000, seed=1)
    a = res["groups"]["a"]["ndcg@10"]
    assert a["runs"] == [round(ndcg10(b), 5) for b in base]
    assert a["mean"] == pytest.approx(np.mean([ndcg10(b) for b in base]))
    assert a["std"] == pytest.approx(np.std([ndcg10(b) for b in base], ddof=1))
    d = next(x for x in res["differences"] if x["metric"] == "ndcg@10")
    assert d["diff"] == pytest.approx(res["groups"]["b"]["ndcg@10"]["mean"] - a["mean"])
    lo, hi = d["ci95"]
    assert 0 < lo <= d["diff"] <= hi  # never worse for any user: the whole interval is above 0
    assert d["p_not_ahead"] == 0.0


def test_identical_groups_have_a_zero_interval(tmp_path: Path) -> None:
    f = write_ranks(tmp_path / "r.csv", [1, 5, 12, 3, 50])
    res = cr.compare({"x": [f], "y": [f]}, ["mrr@10"], resamples=500, seed=0)
    d = res["differences"][0]
    assert d["diff"] == 0 and d["ci95"] == [0.0, 0.0] and d["p_not_ahead"] == 1.0
    assert "| mrr@10 | y − x | +0.0000 |" in cr.render(res, ["mrr@10"])


def test_row_order_does_not_matter(tmp_path: Path) -> None:
    a = write_ranks(tmp_path / "a.csv", [1, 2, 30], users=["u1", "u2", "u3"])
    b = write_ranks(tmp_path / "b.csv", [30, 2, 1], users=["u3", "u2", "u1"])
    res = cr.compare({"a": [a], "b": [b]}, ["ndcg@10"], resamples=100, seed=0)
    assert res["differences"][0]["diff"] == 0


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"user": ["1"], "rank": [1]}), "missing column(s) item"),
        (pl.DataFrame({"user": ["1", "2"], "item": ["a", "b"], "rank": [1, 0]}), "row 1: rank must be an integer >= 1"),
        (pl.DataFrame({"user": ["1", "1"], "item": ["a", "a"], "rank": [1, 2]}), "(user 1, item a) appears twice"),
    ],
)
def test_bad_files_name_file_and_row(tmp_path: Path, frame: pl.DataFrame, message: str) -> None:
    f = tmp_path / "bad.csv"
    frame.write_csv(f)
    with pytest.raises(SystemExit, match=f"bad.csv: .*{message.replace('(', '.').replace(')', '.')}"):
        cr.read_ranks(f)


def test_runs_must_rank_the_same_targets(tmp_path: Path) -> None:
    a = write_ranks(tmp_path / "a.csv", [1, 2, 3])
    b = write_ranks(tmp_path / "b.csv", [1, 2], users=["0", "7"])
    with pytest.raises(SystemExit, match=r"b.csv: ranks other targets than .*a.csv \(2 rows, 2 of 3"):
        cr.compare({"a": [a], "b": [b]}, ["ndcg@10"], resamples=10, seed=0)


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "trunc.parquet"
    f.write_bytes(b"PAR1\x00\x01")
    with pytest.raises(SystemExit, match=r"trunc\.parquet: cannot read ranks"):
        cr.read_ranks(f)


def test_common_targets_keeps_what_every_run_ranks(tmp_path: Path) -> None:
    a = write_ranks(tmp_path / "a.csv", [1, 2, 3], users=["u1", "u2", "u3"])
    b = write_ranks(tmp_path / "b.csv", [1, 20, 3], users=["u1", "u2", "u9"])
    res = cr.compare({"a": [a], "b": [b]}, ["hit@10"], resamples=100, seed=0, common_targets=True)
    assert res["n_targets"] == 2 and res["dropped"] == {str(a): 1, str(b): 1}
    assert res["groups"]["a"]["hit@10"]["mean"] == 1.0 and res["groups"]["b"]["hit@10"]["mean"] == 0.5
    assert "left out" in cr.render(res, ["hit@10"])


def test_strata_split_users_and_recompute_within_each(tmp_path: Path) -> None:
    users = ["a", "b", "c", "d"]
    x = write_ranks(tmp_path / "x.csv", [1, 1, 20, 20], users=users)
    y = write_ranks(tmp_path / "y.csv", [1, 1, 1, 1], users=users)
    strata = pl.DataFrame({"user": users, "stratum": ["<=30", "<=30", "101-200", "101-200"]})
    res = cr.compare({"x": [x], "y": [y]}, ["hit@10"], resamples=200, seed=0, strata=strata)
    rows = {r["stratum"]: r for r in res["by_stratum"]}
    assert [r["stratum"] for r in res["by_stratum"]] == ["<=30", "101-200"]  # numeric order
    assert rows["<=30"]["means"]["hit@10"] == {"x": 1.0, "y": 1.0}
    assert rows["101-200"]["means"]["hit@10"] == {"x": 0.0, "y": 1.0}
    assert rows["101-200"]["differences"]["hit@10"]["y"]["ci95"] == [1.0, 1.0]
    assert "| 101-200 | 2 | 0.0000 | 1.0000 (+1.0000 [+1.0000, +1.0000]) |" in cr.render(res, ["hit@10"])


def test_bootstrap_blocks_match_one_draw_and_group_needs_files() -> None:
    d = np.random.default_rng(3).normal(size=5000)
    res = cr._bootstrap(d, resamples=1000, seed=7)  # blocks of 838 resamples: two blocks
    assert res["diff"] == pytest.approx(d.mean())
    assert res["ci95"][0] < d.mean() < res["ci95"][1]
    assert cr._bootstrap(d, resamples=1000, seed=7) == res  # same seed, same resamples
    with pytest.raises(SystemExit, match="expected NAME=FILE"):
        cr.parse_group("a=,")

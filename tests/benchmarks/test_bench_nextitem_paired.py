"""benchmarks/bench_nextitem.py --paired: which rank files it compares, and what it puts on chronorec's row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rankfiles import load_script, ndcg10, write_ranks

bench = load_script("bench_nextitem")


def _result(path: Path, **extra: object) -> Path:
    """A recbole_train.py output file: progress lines, then the JSON result line."""
    res = {"runner": "recbole_train", "dataset": "ml-100k", "model": "SASRec", "seed": 2020,
           "test_ndcg10": 0.05, "train_s_epochs": [1.0, 1.0], **extra}
    path.write_text('{"progress": {"epoch": 0}}\n' + json.dumps(res) + "\n")
    return path


def test_reference_ranks_found_by_key_or_beside_the_result(tmp_path: Path) -> None:
    named = write_ranks(tmp_path / "elsewhere.csv", [1, 2])
    a = _result(tmp_path / "a.json", ranks_out=str(named))
    b = _result(tmp_path / "b.json")
    write_ranks(tmp_path / "b-ranks.csv", [1, 2])
    c = _result(tmp_path / "c.json")  # no ranks anywhere
    rows = bench.reference_rows("ml-100k", "sasrec", [a, b, c])
    assert [r.get("ranks") for r in rows[:3]] == [str(named), str(tmp_path / "b-ranks.csv"), None]
    assert "ranks" not in rows[3]  # the pooled row


def test_paired_against_references_on_common_targets(tmp_path: Path) -> None:
    users = [str(u) for u in range(60)]
    rng = np.random.default_rng(3)
    peer = [list(rng.integers(1, 30, 60)) for _ in range(2)]
    ours = [[max(1, r - 2) for r in peer[0]], [max(1, r - 1) for r in peer[1]], list(peer[0])]
    refs = [{"ranks": str(write_ranks(tmp_path / f"rb{i}.csv", p, users))} for i, p in enumerate(peer)]
    refs.append({"note": "a reference without ranks"})
    # one more target on chronorec's side only (RecBole's float32 timestamps): dropped, not an error
    files = [write_ranks(tmp_path / f"cr{i}.parquet", [*o, 1], [*users, "extra"]) for i, o in enumerate(ours)]
    row = {"ranks": str(files[0]), "seed_ranks": [str(f) for f in files[1:]]}
    same_run = {"ranks": str(write_ranks(tmp_path / "same.csv", [50] * 60, users))}
    bench.paired_comparison(row, same_run, refs)

    want = np.mean([ndcg10(o) for o in ours]) - np.mean([ndcg10(p) for p in peer])
    assert row["paired_ndcg10_diff"] == pytest.approx(want, abs=1e-5)
    lo, hi = row["paired_ndcg10_ci95"]
    assert lo <= row["paired_ndcg10_diff"] <= hi
    assert 0 <= row["paired_ndcg10_p_not_ahead"] <= 1
    assert {"paired_hit10_diff", "paired_mrr10_diff"} <= set(row)
    assert row["paired_vs"]["recbole"] == "reference runs"
    assert (row["paired_vs"]["recbole_runs"], row["paired_vs"]["chronorec_runs"]) == (2, 3)
    assert row["paired_vs"]["n_targets"] == 60
    assert row["paired_ndcg10"].startswith(f"{row['paired_ndcg10_diff']:+.4f} [")


def test_paired_falls_back_to_the_same_run_model_then_says_why_not(tmp_path: Path) -> None:
    ours = {"ranks": str(write_ranks(tmp_path / "cr.parquet", [1, 1, 1]))}
    peer = {"ranks": str(write_ranks(tmp_path / "same.csv", [20, 20, 20]))}
    bench.paired_comparison(ours, peer, [])
    assert ours["paired_vs"]["recbole"] == "same-run model"
    assert ours["paired_ndcg10_diff"] == pytest.approx(1.0)  # rank 1 everywhere against outside the top 10
    assert ours["paired_ndcg10_ci95"] == [1.0, 1.0]
    lonely = {"ranks": str(tmp_path / "cr.parquet")}
    bench.paired_comparison(lonely, None, [{"note": "no ranks"}])
    assert lonely["paired_note"] == "no RecBole ranks to compare with"
    assert "paired_ndcg10" not in lonely
    failed = {"paired_note": "chronorec predict failed: ..."}  # the reason chronorec_run recorded stays
    bench.paired_comparison(failed, peer, [])
    assert failed["paired_note"] == "chronorec predict failed: ..."


def test_one_chronorec_run_beside_recbole_at_each_peer_batch_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--peer-batch-size 64 2048``: RecBole once per value, each row with its own ratios to the one chronorec run."""
    asked: list[int] = []

    def fake_recbole(dataset: str, data_path: Path, model: str, args: object, batch_size: int) -> dict:
        asked.append(batch_size)
        return {"dataset": dataset, "model": model, "library": "RecBole 1.2.1", "s_per_epoch": 2.0 * batch_size,
                "peak_rss_mb": float(batch_size), "epochs_run": 1, "note": f"batch {batch_size}"}

    ours = {"dataset": "ml-100k", "model": "sasrec", "library": "chronorec", "s_per_epoch": 4.0, "peak_rss_mb": 32.0}
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "sources", lambda name, root: ([], tmp_path))
    monkeypatch.setattr(bench, "prepare", lambda *a: None)
    monkeypatch.setattr(bench, "recbole_run", fake_recbole)
    monkeypatch.setattr(bench, "chronorec_run", lambda *a: dict(ours))
    monkeypatch.setattr("sys.argv", ["bench_nextitem.py", "--models", "sasrec", "--peer-epochs", "1",
                                     "--peer-batch-size", "64", "2048"])
    bench.main()
    assert asked == [64, 2048]
    (out,) = tmp_path.glob("nextitem-*.json")
    rows = json.loads(out.read_text())["rows"]
    assert [r["library"] for r in rows] == ["chronorec", "RecBole 1.2.1", "RecBole 1.2.1"]
    assert [r["s_per_epoch_x"] for r in rows[1:]] == [32.0, 1024.0]  # 128 / 4, 4096 / 4
    assert [r["peak_rss_mb_x"] for r in rows[1:]] == [2.0, 64.0]

"""`chronorec reproduce` on tiny data: tables in the papers' layouts, resumable, refuses changed configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chronorec.cli import main
from chronorec.train.reproduce import PLANS, select

SMALL = ["--seeds", "2", "--epochs", "1", "--set", "model.dim=8", "--set", "train.threads=1",
         "--set", "train.batch_size=256", "--quiet"]


def test_plans_cover_the_papers_rows() -> None:
    tin_models = {s.model for s in PLANS["tin"]}
    assert {"tin", "tin_wo_tte", "tin_wo_ta", "tin_wo_tr", "tin_ttet", "tin_calendar", "tin_coe", "avgpool_concat",
            "avgpool_product", "din_prime", "din", "gru4rec_ctr", "sasrec_ctr", "bert4rec_ctr", "dien", "dsin",
            "bst"} == tin_models
    assert [s.label for s in PLANS["interpos"]][:4] == ["SASRec", "SASRec + rhythm (BF)", "SASRec + rhythm (MF)",
                                                       "SASRec + rhythm (GF)"]
    assert len({s.slug for s in PLANS["tin"]}) == len(PLANS["tin"])
    assert [s.model for s in select(PLANS["tin"], ["tin", "DIN'"])] == ["din_prime", "tin"]


def test_reproduce_tin_tables_and_resume(tiny_ctr_dataset: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["reproduce", "tin", "--data", str(tiny_ctr_dataset), "--models", "avgpool_concat,tin,tin_coe",
            *SMALL, "--out", str(tmp_path), "--name", "rep"]
    main(argv)
    root = tmp_path / "rep"
    text = (root / "tables.md").read_text()
    assert "## Table 1" in text and "| Avg Pooling & Concat | ××× |" in text and "| TIN | ✓✓✓ |" in text
    assert "## Table 3" in text and "| TTE-P |" in text and "| COE |" in text
    assert "## Table 4" in text
    results = json.loads((root / "results.json").read_text())["rows"]
    assert set(results) == {"Avg Pooling & Concat", "TIN", "TIN (COE)"}
    assert results["TIN"]["seeds"] == [0, 1] and len(results["TIN"]["by_length"]) == 2
    # Table 3b: GAUC by history time span, one dict of buckets per seed
    assert len(results["TIN"]["by_span"]) == 2 and all(results["TIN"]["by_span"][0])
    metrics = root / "runs" / "tin" / "seed1" / "metrics.json"
    assert json.loads(metrics.read_text())["test"] == results["TIN"]["test"][1]
    assert json.loads((root / "runs" / "tin" / "seed1" / "config.json").read_text())["train"]["seed"] == 1

    # a second call trains nothing: finished runs are skipped; an unfinished one is resumed
    stamp = metrics.stat().st_mtime_ns
    (root / "runs" / "tin-coe" / "seed0" / "metrics.json").unlink()
    capsys.readouterr()
    main(argv)
    assert metrics.stat().st_mtime_ns == stamp
    assert (root / "runs" / "tin-coe" / "seed0" / "metrics.json").is_file()
    assert (root / "tables.md").read_text() == text

    with pytest.raises(SystemExit):  # same folder, different options
        main([*argv[:-4], "--set", "train.lr=0.1", "--out", str(tmp_path), "--name", "rep"])
    err = capsys.readouterr().err
    assert "different configuration (train.lr: 0.001 there, 0.1 now)" in err, err


def test_reproduce_interpos_subset(tiny_nextitem_dataset: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    def run(models: str, *extra: str) -> tuple[str, list[str]]:
        main(["reproduce", "interpos", "--data", str(tiny_nextitem_dataset), "--models", models,
              "--seeds", "1", "--epochs", "1", "--set", "model.dim=16", "--set", "model.n_layers=1",
              "--set", "train.threads=1", *extra, "--quiet", "--out", str(tmp_path), "--name", "ip"])
        text = (tmp_path / "ip" / "tables.md").read_text()
        return text, list(json.loads((tmp_path / "ip" / "results.json").read_text())["rows"])

    text, rows = run("SASRec,SASRec + rhythm (BF)")
    assert "| Model | NDCG@10 | NDCG@20 | HIT@10 | HIT@20 | MRR@10 |" in text
    assert "| SASRec + rhythm (BF) |" in text and rows == ["SASRec", "SASRec + rhythm (BF)"]
    cfg = json.loads((tmp_path / "ip" / "runs" / "sasrec-rhythm-bf" / "seed0" / "config.json").read_text())
    assert cfg["model_options"]["rhythm"] == "bf" and cfg["model_options"]["dim"] == 16
    assert cfg["task_options"]["select_metric"] == "ndcg@10" and cfg["train"]["patience"] == 10

    # another subset into the same folder: the finished rows stay in the tables, in the paper's order
    capsys.readouterr()
    text2, rows = run("gru4rec")
    assert rows == ["SASRec", "SASRec + rhythm (BF)", "GRU4Rec"], rows
    assert "kept in the tables (finished earlier, same options): SASRec, SASRec + rhythm (BF)" in capsys.readouterr().out
    assert text2.split("| SASRec + rhythm (BF) |")[1].splitlines()[0] == text.split("| SASRec + rhythm (BF) |")[1].splitlines()[0]
    # rows finished with other options are not mixed into a table of these options
    _, rows = run("SASRec + rhythm (MF)", "--set", "train.lr=0.002")
    assert rows == ["SASRec + rhythm (MF)"], rows


def test_reproduce_rejects_wrong_task(tiny_nextitem_dataset: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["reproduce", "tin", "--data", str(tiny_nextitem_dataset), "--out", str(tmp_path)])
    assert "needs a ctr dataset" in capsys.readouterr().err


def test_parallel_jobs_give_the_same_tables(tiny_ctr_dataset: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--jobs 2 trains the runs in two worker processes; every metric equals the one-process result."""
    common = ["reproduce", "tin", "--data", str(tiny_ctr_dataset), "--models", "avgpool_concat,tin", *SMALL,
              "--out", str(tmp_path)]
    main([*common, "--name", "serial"])
    capsys.readouterr()
    main([*common, "--name", "parallel", "--jobs", "2"])
    done = [line for line in capsys.readouterr().out.splitlines() if "] finished " in line]
    assert len(done) == 4 and all(" test gauc 0." in line and "best epoch" in line for line in done), done
    serial = json.loads((tmp_path / "serial" / "results.json").read_text())["rows"]
    parallel = json.loads((tmp_path / "parallel" / "results.json").read_text())["rows"]
    assert parallel == serial
    assert (tmp_path / "parallel" / "tables.md").read_text() == (tmp_path / "serial" / "tables.md").read_text()
    env = json.loads((tmp_path / "parallel" / "runs" / "tin" / "seed1" / "env.json").read_text())
    assert env["threads"] == 1 and env["world_size"] == 1


def test_parallel_order_starts_with_started_runs_then_keeps_seed_major_order(tmp_path: Path) -> None:
    """Finished runs drop out; a run with a checkpoint goes first; the rest keep their order."""
    from chronorec.train.reproduce import parallel_order
    from chronorec.train.runs import METRICS, checkpoint_path

    todo = [(None, tmp_path / f"{row}-seed{seed}", f"{row} {seed}") for seed in (0, 1) for row in ("a", "b")]
    (tmp_path / "a-seed0").mkdir()
    (tmp_path / "a-seed0" / METRICS).write_text("{}")
    checkpoint_path(tmp_path / "b-seed1", "last").parent.mkdir(parents=True)
    checkpoint_path(tmp_path / "b-seed1", "last").write_bytes(b"")
    assert [label for _, _, label in parallel_order(todo)] == ["b 1", "b 0", "a 1"]

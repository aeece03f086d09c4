"""`chronorec train / evaluate / predict / models` through the real CLI entry point on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from chronorec.cli import main
from chronorec.metrics.ctr import ctr_metrics

TINY = ["--set", "model.dim=8", "--set", "model.mlp=[16,8]", "--set", "train.threads=1",
        "--set", "train.batch_size=128", "--quiet"]


def _run_dir(out: Path) -> Path:
    (run,) = [p for p in out.glob("*/*") if p.is_dir()]
    return run


@pytest.fixture(scope="module")
def ctr_run(tiny_ctr_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-runs")
    main(["train", "--data", str(tiny_ctr_dataset), "--model", "tin", *TINY, "--epochs", "2", "--seed", "4",
          "--out", str(out), "--name", "cli-tin"])
    return _run_dir(out)


def test_train_writes_the_run_folder(ctr_run: Path, tiny_ctr_dataset: Path) -> None:
    assert ctr_run.parent.name == "cli-tin"
    cfg = json.loads((ctr_run / "config.json").read_text())
    assert cfg["data"] == str(tiny_ctr_dataset.resolve()) and cfg["cache_key"]
    assert cfg["model_options"]["dim"] == 8 and cfg["model_options"]["mlp"] == [16, 8]
    assert cfg["train"]["seed"] == 4 and cfg["train"]["epochs"] == 2 and cfg["task"] == "ctr"
    env = json.loads((ctr_run / "env.json").read_text())
    assert env["command"] and env["seed"] == 4
    m = json.loads((ctr_run / "metrics.json").read_text())
    assert {"valid", "test", "best_epoch", "train_seconds", "samples_per_second"} <= set(m)


def test_evaluate_reproduces_test_metrics(ctr_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["evaluate", "--run", str(ctr_run)])
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((ctr_run / "metrics.json").read_text())["test"]
    assert printed == saved
    written = json.loads((ctr_run / "eval" / "test-best.json").read_text())
    assert written["metrics"] == saved and written["checkpoint"] == "best"
    main(["evaluate", "--run", str(ctr_run), "--split", "valid", "--checkpoint", "last"])
    assert (ctr_run / "eval" / "valid-last.json").is_file()


def test_predict_raw_ids_recompute_the_metrics(ctr_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.parquet"
    main(["predict", "--run", str(ctr_run), "--split", "test", "--out", str(out)])
    df = pl.read_parquet(out)
    assert df.columns == ["index", "user", "item", "label", "score"]
    assert df.schema["user"] == pl.String and df["user"].null_count() == 0
    assert df["user"].str.starts_with("u").all() and df["item"].str.starts_with("i").all()
    m = ctr_metrics(df["label"].to_numpy(), df["score"].to_numpy(), df["user"].to_numpy())
    saved = json.loads((ctr_run / "metrics.json").read_text())["test"]
    for k in ("gauc", "auc", "logloss"):
        assert m[k] == pytest.approx(saved[k], abs=1e-12)


def test_resume_of_a_finished_run_changes_nothing(ctr_run: Path) -> None:
    before = (ctr_run / "metrics.json").read_text()
    main(["train", "--resume", str(ctr_run), "--quiet"])
    assert (ctr_run / "metrics.json").read_text() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "tin", "--set", "model.dim=big"], "model 'tin': option 'dim'"),
        (["--model", "tin", "--set", "train.optimizer=sgd"], "train.optimizer"),
        (["--model", "tin", "--set", "dim=8"], "SECTION.KEY=VALUE"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--model", "sasrec"], "next_item model"),
    ],
)
def test_bad_options_are_one_line_errors(tiny_ctr_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(tiny_ctr_dataset), "--out", str(tmp_path), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not any(tmp_path.iterdir())  # nothing was created


def test_missing_data_and_run_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["train", "--data", str(tmp_path), "--model", "tin"], ["evaluate", "--run", str(tmp_path)],
                 ["train", "--resume", str(tmp_path)]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert capsys.readouterr().err.count("error:") == 3


def test_models_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    main(["models", "--task", "ctr"])
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert "tin" in names and "din" in names and "sasrec" not in names
    assert all(line.split()[1] == "ctr" for line in lines)


def test_next_item_train_and_predict_ranks(tiny_nextitem_dataset: Path, tmp_path: Path) -> None:
    main(["train", "--data", str(tiny_nextitem_dataset), "--model", "sasrec", "--set", "model.dim=16",
          "--set", "model.n_layers=1", "--set", "train.threads=1", "--set", "train.batch_size=64",
          "--epochs", "1", "--out", str(tmp_path / "runs"), "--quiet"])
    run = _run_dir(tmp_path / "runs")
    m = json.loads((run / "metrics.json").read_text())
    assert m["select_metric"] == "ndcg@10" and "ndcg@10" in m["test"]
    out = tmp_path / "rank.parquet"
    main(["predict", "--run", str(run), "--out", str(out)])
    df = pl.read_parquet(out)
    assert {"user", "item", "rank"} <= set(df.columns) and df.schema["item"] == pl.String
    assert df.columns[0] == "index" and df["index"].to_list() == list(range(df.height))  # split order
    saved = pl.read_parquet(run / "predictions" / "test.parquet")
    assert saved["index"].to_list() == df["index"].to_list() and saved["rank"].to_list() == df["rank"].to_list()
    assert (df["rank"] <= 10).mean() == pytest.approx(m["test"]["hit@10"])


def test_demo_falls_back_to_labelled_synthetic_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from chronorec.cli import demo as demo_cli
    from chronorec.data.synthetic import synthetic_source

    monkeypatch.setenv("CHRONOREC_DATA", str(tmp_path / "no-data-here"))
    assert demo_cli._grocery_folder() is None
    small = synthetic_source(n_users=120, n_items=60, n_categories=5, mean_events=10, max_events=40, seed=1)
    monkeypatch.setattr(demo_cli, "_source", lambda: (small, "synthetic", False))
    main(["demo", "--out", str(tmp_path / "runs"), "--prepared", str(tmp_path / "prep"), "--epochs", "1",
          "--threads", "1"])
    out = capsys.readouterr().out
    assert "SYNTHETIC log with a planted pattern" in out
    table = out[out.index("model     GAUC"):].splitlines()
    assert table[1].startswith("TIN ") and table[2].startswith("DIN ")
    assert len(list((tmp_path / "runs").glob("demo-synthetic-*/*/metrics.json"))) == 2

"""The Python API (``import chronorec as cr``): the module docstring's example on real ml-100k, the
same prepared data as the CLI writes, and the API's own argument errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import chronorec as cr
from chronorec.cli import main
from chronorec.errors import ChronorecError


@pytest.fixture(scope="module")
def ml100k(data_root: Path) -> Path:
    folder = data_root / "ml-100k"
    if not folder.is_dir():
        pytest.skip(f"ml-100k not found under {data_root}")
    return folder


def test_lazy_exports_survive_importing_the_train_package() -> None:
    import chronorec.train.launch  # noqa: F401  (binds the subpackage as chronorec.train)

    assert callable(cr.fit) and cr.fit is cr.api.fit
    assert set(cr.__all__) <= set(dir(cr))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cr.nope  # noqa: B018


def test_prepare_matches_the_cli_and_is_cached(ml100k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = cr.prepare("atomic", ml100k, out=tmp_path / "api", protocol="next-item-last-out")
    assert first.rebuilt and first.schema.task == "next_item" and first.summary["events"] > 90_000
    again = cr.prepare("atomic", ml100k, out=tmp_path / "api", protocol="next-item-last-out")
    assert not again.rebuilt and again.key == first.key
    main(["prepare", "--source", "atomic", "--path", str(ml100k), "--protocol", "next-item-last-out",
          "--out", str(tmp_path / "cli"), "--name", "api"])
    capsys.readouterr()
    for table in ("events.parquet", "samples/train.parquet", "samples/test.parquet"):
        assert pl.read_parquet(tmp_path / "api" / table).equals(pl.read_parquet(tmp_path / "cli" / table)), table


def test_fit_load_evaluate_predict_on_ml100k(ml100k: Path, tmp_path: Path) -> None:
    prep = cr.prepare("atomic", ml100k, out=tmp_path / "ml100k-next", protocol="next-item-last-out")
    run = cr.fit(prep.out, "sasrec", seed=0, epochs=1, out=tmp_path / "runs", verbose=False,
                 model={"rhythm": "mf", "dim": 16}, train={"batch_size": 256, "threads": 1})
    assert run.parent.name == "ml100k-next-sasrec"
    config = json.loads((run / "config.json").read_text())
    assert config["model_options"]["rhythm"] == "mf" and config["train"]["batch_size"] == 256
    saved = json.loads((run / "metrics.json").read_text())["test"]
    loaded = cr.load_run(run)
    again = loaded.evaluate("test")
    assert again["ndcg@10"] == pytest.approx(saved["ndcg@10"], abs=1e-9)
    preds = loaded.predict("test", raw_ids=True)
    assert preds.height == prep.summary["users"] and {"user", "rank"} <= set(preds.columns)
    before = (run / "metrics.json").read_bytes()
    assert cr.resume(run, verbose=False) == run  # finished: left as it is
    assert (run / "metrics.json").read_bytes() == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: cr.fit(d, "sasrec", modle={"dim": 8}), "unknown option section modle"),
        (lambda d: cr.fit(d, "sasrec", model=8), "model= must be a dict"),
        (lambda d: cr.fit(d, "sasrec", model={"dimm": 8}), "dimm"),
        (lambda d: cr.fit(d, "tin"), "is a ctr model"),
        (lambda d: cr.load_run(d, "newest"), "checkpoint must be 'best' or 'last'"),
    ],
)
def test_fit_and_load_refuse_bad_arguments(tiny_nextitem_dataset: Path, call, message: str) -> None:
    with pytest.raises(ChronorecError, match=message):
        call(tiny_nextitem_dataset)


def test_prepare_and_list_models_refuse_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ChronorecError, match="needs a path"):
        cr.prepare("csv", out=tmp_path / "x", protocol="next-item-last-out")
    with pytest.raises(ChronorecError, match="input path not found"):
        cr.prepare("csv", tmp_path / "missing.csv", out=tmp_path / "x", protocol="next-item-last-out")
    with pytest.raises(ChronorecError, match="invalid prepare option kcore"):
        cr.prepare("synthetic", out=tmp_path / "x", protocol="next-item-last-out", kcore="many")
    with pytest.raises(ChronorecError, match="task must be"):
        cr.list_models("ranking")
    assert "tin" in cr.list_models("ctr") and "sasrec" not in cr.list_models("ctr")


def test_reproduce_and_report_from_python(tiny_nextitem_dataset: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    result = cr.reproduce("interpos", tiny_nextitem_dataset, seeds=1, epochs=1, models=["SASRec + rhythm (MF)"],
                          out=tmp_path, name="t", verbose=False, echo=lines.append,
                          model={"dim": 8}, train={"batch_size": 32}, longtail={"strategy": "reweight"})
    assert result["folder"] == tmp_path / "t" and "SASRec + rhythm (MF)" in result["tables"]
    config = json.loads(next((tmp_path / "t").rglob("config.json")).read_text())
    assert config["model_options"]["rhythm"] == "mf" and config["model_options"]["dim"] == 8
    assert config["longtail"]["strategy"] == "reweight"  # every section reaches every run
    html, md = cr.report([result["folder"]], out=tmp_path / "r.html")
    assert html.is_file() and "| synthetic-sasrec-rhythm-mf | sasrec | 1 (0) |" in md.read_text()
    with pytest.raises(ChronorecError, match="unknown plan 'tim'"):
        cr.reproduce("tim", tiny_nextitem_dataset)
    with pytest.raises(ChronorecError, match="needs a ctr dataset"):
        cr.reproduce("tin", tiny_nextitem_dataset)
    with pytest.raises(ChronorecError, match="is a folder"):
        cr.report([result["folder"]], out=tmp_path)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d, t: cr.prepare(None, out=t / "x", protocol="next-item-last-out"), "source must be a source name"),
        (lambda d, t: cr.prepare("synthetic", out=None, protocol="next-item-last-out"), "out must be a path"),
        (lambda d, t: cr.prepare("csv", 5, out=t / "x", protocol="next-item-last-out"), "path must be a path"),
        (lambda d, t: cr.prepare("csv", t, out=t / "x", protocol="next-item-last-out", mapping="user=u"),
         "mapping= must be a dict"),
        (lambda d, t: cr.prepare("csv", t, out=t / "x", protocol="next-item-last-out", sep=5), "sep must be"),
        (lambda d, t: cr.prepare("synthetic", out=t / "x", protocol="ctr-time-split",
                                 split_dates="2018-01-01,2018-06-01"), "split_dates= must be a pair"),
        (lambda d, t: cr.fit(None, "sasrec"), "data must be a path"),
        (lambda d, t: cr.fit(d, "sasrec", name=5), "name must be a run name"),
        (lambda d, t: cr.fit(d, "sasrec", out=t / "file.txt"), "output path exists and is not a folder"),
        (lambda d, t: cr.load_run(None), "run_dir must be a path"),
        (lambda d, t: cr.resume(None), "run_dir must be a path"),
        (lambda d, t: cr.reproduce("interpos", d, seeds=0, out=t / "r"), "seeds must be at least 1"),
        (lambda d, t: cr.reproduce("interpos", d, jobs="two", out=t / "r"), "jobs must be an integer"),
        (lambda d, t: cr.reproduce("interpos", d, seed_base=None, out=t / "r"), "seed_base must be an integer"),
        (lambda d, t: cr.reproduce("interpos", d, models=[], out=t / "r"), "models= must be a non-empty list"),
        (lambda d, t: cr.reproduce("interpos", d, name=5, out=t / "r"), "name must be a folder name"),
        (lambda d, t: cr.report([], out=t / "r.html"), "runs must be a non-empty list"),
        (lambda d, t: cr.report([d], out=None), "out must be a path"),
    ],
)
def test_arguments_of_the_wrong_type_are_one_line_errors(
    tiny_nextitem_dataset: Path, tmp_path: Path, call, message: str
) -> None:
    (tmp_path / "file.txt").write_text("")
    with pytest.raises(ChronorecError, match=message):
        call(tiny_nextitem_dataset, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing written


def test_a_bad_task_option_leaves_no_output_folder(tiny_nextitem_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ChronorecError, match=r"option task\.kk"):
        cr.fit(tiny_nextitem_dataset, "sasrec", out=tmp_path / "runs", task={"kk": 1})
    assert not (tmp_path / "runs").exists()


def test_reproduce_models_and_report_runs_take_a_single_string(tiny_nextitem_dataset: Path, tmp_path: Path) -> None:
    result = cr.reproduce("interpos", tiny_nextitem_dataset, seeds=1, epochs=1, models="GRU4Rec", out=tmp_path,
                          name="one", verbose=False, echo=lambda _: None, model={"dim": 8},
                          train={"batch_size": 64, "threads": 1})
    assert list(result["rows"]) == ["GRU4Rec"]  # not the letters G, R, U, ... as model names
    html, md = cr.report(str(result["folder"]), out=tmp_path / "r.html")
    assert html.is_file() and "| gru4rec | 1 (0) |" in md.read_text()


def test_table_and_run_names_stay_under_out(tiny_nextitem_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ChronorecError, match=r"table name '\.\./up' must be one folder name"):
        cr.reproduce("interpos", tiny_nextitem_dataset, out=tmp_path, name="../up", models="sasrec")
    with pytest.raises(ChronorecError, match="run name 'a/b' must be one folder name"):
        cr.fit(tiny_nextitem_dataset, "sasrec", out=tmp_path, name="a/b")
    assert list(tmp_path.iterdir()) == []

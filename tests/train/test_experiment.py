"""Experiment files (``chronorec train --config``): YAML, TOML and JSON agree; a run's config.json
re-runs; command-line options override the file; every bad file is one line naming it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from chronorec.cli import main
from chronorec.train.build import run_config
from chronorec.train.experiment import load_experiment, merge

REPO = Path(__file__).resolve().parents[2]


def _resolved(path: Path, data: Path):
    exp = load_experiment(path)
    return run_config(data, exp.model, exp.overrides(), name=exp.name)


def test_yaml_toml_and_json_describe_the_same_run(tiny_nextitem_dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text(
        "model: sasrec\nmodel_options: {rhythm: gf, dim: 16}\ntrain: {lr: 0.002, batch_size: 32}\ntask: {}\n")
    (tmp_path / "e.toml").write_text(
        'model = "sasrec"\n[model_options]\nrhythm = "gf"\ndim = 16\n[train]\nlr = 0.002\nbatch_size = 32\n')
    (tmp_path / "e.json").write_text(json.dumps(
        {"model": "sasrec", "model_options": {"rhythm": "gf", "dim": 16}, "train": {"lr": 0.002, "batch_size": 32}}))
    configs = [_resolved(tmp_path / f"e.{s}", tiny_nextitem_dataset) for s in ("yaml", "toml", "json")]
    assert configs[0] == configs[1] == configs[2]
    assert configs[0].model_options["rhythm"] == "gf" and configs[0].train.lr == 0.002


def test_the_repository_experiments_resolve(tiny_ctr_dataset: Path, tiny_nextitem_dataset: Path) -> None:
    files = sorted((REPO / "experiments").iterdir())
    assert {f.suffix for f in files} >= {".yaml", ".toml"}
    for f in files:
        exp = load_experiment(f)
        data = tiny_nextitem_dataset if exp.model == "sasrec" else tiny_ctr_dataset
        cfg = run_config(data, exp.model, exp.overrides(), name=exp.name)
        assert cfg.name == exp.name and cfg.train.epochs == exp.train["epochs"]


def _train_and_rerun(data: Path, out: Path, first_args: list[str], rerun_args: list[str]) -> tuple[Path, Path]:
    """Train a 1-epoch SASRec run (dim 8) with ``first_args``, then ``train --config`` its config.json
    with ``rerun_args``; returns both run folders."""
    base = ["--quiet", "--out", str(out)]
    main(["train", "--data", str(data), "--model", "sasrec", "--epochs", "1", "--name", "x", "--set", "model.dim=8",
          *first_args, *base])
    first = next((out / "x").iterdir())
    main(["train", "--config", str(first / "config.json"), *rerun_args, *base])
    return first, next(p for p in (out / "x").iterdir() if p != first)


def test_a_runs_config_json_reruns_with_command_line_overrides(
    tiny_nextitem_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = _train_and_rerun(tiny_nextitem_dataset, tmp_path, ["--set", "model.rhythm=mf", "--set",
                                     "train.batch_size=32"], ["--seed", "3", "--set", "train.lr=0.01"])
    capsys.readouterr()
    a, b = (json.loads((p / "config.json").read_text()) for p in (first, second))
    assert b["train"].pop("seed") == 3 and b["train"].pop("lr") == 0.01
    a["train"].pop("seed"), a["train"].pop("lr")
    assert a == b  # everything else, resolved model options included, carried over


def test_changed_data_since_the_saved_config_warns(
    tiny_nextitem_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.json").write_text(json.dumps({
        "data": str(tiny_nextitem_dataset), "model": "sasrec", "cache_key": "0" * 64, "dataset": "x",
        "task": "next_item", "model_options": {"dim": 8}, "train": {"epochs": 1, "batch_size": 64}}))
    main(["train", "--config", str(tmp_path / "old.json"), "--quiet", "--out", str(tmp_path / "runs")])
    assert "changed since training" in capsys.readouterr().err


def test_merge_puts_the_command_line_over_the_file_key_by_key() -> None:
    file = {"model": {"dim": 8, "mlp": {"hidden": [80, 40], "dropout": 0.1}}, "train": {"lr": 0.1}}
    cli = {"model": {"mlp": {"dropout": 0.3}}, "train": {}, "task": {"k": 1}}
    assert merge(file, cli) == {"model": {"dim": 8, "mlp": {"hidden": [80, 40], "dropout": 0.3}},
                                "train": {"lr": 0.1}, "task": {"k": 1}}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("e.yaml", "model: sasrec\nmodle_options: {}\n", "unknown key 'modle_options'"),
        ("e.yaml", "model: sasrec\ntrain: [1, 2\n", "not valid YAML: expected ',' or ']', but got '<stream end>' (at line 3"),
        ("e.toml", "model = sasrec\n", "not valid TOML"),
        ("e.json", '{"model": "sasrec",}', "not valid JSON"),
        ("e.yaml", "- sasrec\n", "holds a mapping of keys, got list"),
        ("e.yaml", "model: sasrec\ntrain: 5\n", "key 'train'"),
        ("e.ini", "model=sasrec\n", "must end in .yaml"),
        ("e.yaml", "model: sasrec\ntrain: {lr: fast}\n", "option 'train.lr'"),
        ("e.yaml", "train: {lr: 0.1}\n", "give --data PREPARED and --model NAME"),
        ("e.yaml", "", "the experiment file is empty"),
        ("e.yaml", "# nothing yet\n", "the experiment file is empty"),
        ("e.json", "{}", "the experiment file is empty"),
        ("e.yaml", "model: sasrec\ntask: 5\n", "key 'task': a dict of task options or a task name"),
        ("e.yaml", "model: sasrec\ntask: {loss: ce}\ntask_options: {}\n", "give task or task_options"),
        ("e.yaml", "model: sasrec\nmodel_options: {dim: 8}\nmodel_options: {dim: 16}\n",
         "key 'model_options' is given twice (at line 3)"),
        ("e.json", '{"model": "sasrec", "model": "gru4rec"}', "key 'model' is given twice"),
        ("config.json", '{"model": "din", "task": "ctr", "dataset": "g", "name": "g-din"}',
         "describes a ctr run but"),
        ("e.yaml", "model: sasrec\ntask: {kk: 1}\n", "option task.kk"),
    ],
)
def test_bad_experiment_files_are_one_line_errors(
    tiny_nextitem_dataset: Path, tmp_path: Path, cli_error: Callable[[list[str]], str], name: str, text: str,
    message: str,
) -> None:
    (tmp_path / name).write_text(text)
    data = [] if "--data" in message else ["--data", str(tiny_nextitem_dataset)]
    err = cli_error(["train", "--config", str(tmp_path / name), *data, "--out", str(tmp_path / "runs")])
    assert message in err
    if not message.startswith("option") and "--data" not in message:
        assert name in err
    assert not (tmp_path / "runs").exists()


def test_missing_file_and_resume_with_config_are_refused(tmp_path: Path, cli_error: Callable[[list[str]], str]) -> None:
    assert "experiment file not found" in cli_error(["train", "--config", str(tmp_path / "none.yaml")])
    assert "give no other run options" in cli_error(["train", "--resume", str(tmp_path), "--config", "x.yaml"])


def test_a_pin_runs_config_json_reruns_the_whole_plan(
    tiny_nextitem_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = _train_and_rerun(tiny_nextitem_dataset, tmp_path, ["--longtail", "pin", "--set",
                                     "longtail.plugin_epochs=1"], ["--seed", "4"])
    assert json.loads((first / "config.json").read_text())["longtail"]["phase"] == "plugins"
    assert "plugin stage of a PIN run" in capsys.readouterr().err
    plan = json.loads((second / "pin.json").read_text())
    assert plan["longtail"]["phase"] == "full" and plan["train"]["seed"] == 4
    stage_two = json.loads((second / "config.json").read_text())["longtail"]
    assert stage_two["init_from"].startswith(str(second))  # its own backbone, not the first run's
    assert (second / "backbone" / "metrics.json").is_file()


def test_a_config_json_on_other_data_neither_warns_nor_keeps_the_old_name(
    tiny_nextitem_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "name": "old-sasrec", "data": str(tmp_path / "old"), "cache_key": "0" * 64, "dataset": "old",
        "task": "next_item", "model": "sasrec", "model_options": {"dim": 8},
        "train": {"epochs": 1, "batch_size": 64, "threads": 1}}))
    main(["train", "--config", str(tmp_path / "config.json"), "--data", str(tiny_nextitem_dataset), "--quiet",
          "--out", str(tmp_path / "runs")])
    assert "changed since training" not in capsys.readouterr().err  # another dataset, not a changed one
    name = json.loads((tiny_nextitem_dataset / "schema.json").read_text())["name"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [f"{name}-sasrec"]


def test_an_output_path_that_is_a_file_is_refused(
    tiny_nextitem_dataset: Path, tmp_path: Path, cli_error: Callable[[list[str]], str]
) -> None:
    (tmp_path / "runs").write_text("")
    err = cli_error(["train", "--data", str(tiny_nextitem_dataset), "--model", "sasrec", "--out", str(tmp_path / "runs")])
    assert "output path exists and is not a folder" in err


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "."])
def test_a_run_name_is_one_folder(tiny_nextitem_dataset: Path, tmp_path: Path, name: str,
                                  cli_error: Callable[[list[str]], str]) -> None:
    err = cli_error(["train", "--data", str(tiny_nextitem_dataset), "--model", "sasrec", "--name", name,
                     "--out", str(tmp_path / "runs")])
    assert "must be one folder name" in err and not (tmp_path / "runs").exists() and not (tmp_path / "escape").exists()

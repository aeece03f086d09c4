"""Run config: --set parsing (JSON literals, never eval) and validation against the types."""

from __future__ import annotations

import pytest

from chronorec.errors import ChronorecError
from chronorec.train.config import (
    SECTIONS,
    RunConfig,
    TrainConfig,
    build_train_config,
    parse_overrides,
    parse_value,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [("64", 64), ("1e-3", 0.001), ("0.5", 0.5), ("true", True), ("False", False), ("null", None),
     ("None", None), ("[80, 40]", [80, 40]), ('"x"', "x"), ("adagrad", "adagrad"),
     ("__import__('os')", "__import__('os')")],
)
def test_parse_value(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_parse_overrides_sections_and_nesting() -> None:
    out = parse_overrides(["model.dim=64", "train.lr=0.01", "model.mlp.hidden=[80,40]", "task.gauc_weight=clicks"])
    assert set(out) == set(SECTIONS)  # every section present, empty when not overridden
    assert {k: v for k, v in out.items() if v} == {"model": {"dim": 64, "mlp": {"hidden": [80, 40]}},
                                                  "train": {"lr": 0.01}, "task": {"gauc_weight": "clicks"}}


def test_every_section_takes_overrides() -> None:
    assert "model" in SECTIONS and "train" in SECTIONS and "task" in SECTIONS
    for section in SECTIONS:
        assert parse_overrides([f"{section}.strategy=pin"])[section] == {"strategy": "pin"}


@pytest.mark.parametrize("bad", ["dim=64", "model.dim", "optim.lr=1", "model..x=1", "model.a=1,model.a.b=2"])
def test_parse_overrides_rejects(bad: str) -> None:
    items = bad.split(",")
    with pytest.raises(ChronorecError):
        parse_overrides(items)


def test_train_config_validation_names_the_option() -> None:
    cfg = build_train_config({"optimizer": "adagrad", "lr": 0.01})
    assert cfg.optimizer == "adagrad" and cfg.lr == 0.01 and cfg.grad_clip == 5.0
    with pytest.raises(ChronorecError, match=r"train\.lr"):
        build_train_config({"lr": "fast"})
    with pytest.raises(ChronorecError, match=r"train\.optimizer"):
        build_train_config({"optimizer": "sgd"})
    with pytest.raises(ChronorecError, match=r"train\.nope"):
        build_train_config({"nope": 1})
    base = TrainConfig(epochs=7)
    assert build_train_config({"lr": 0.1}, base).epochs == 7


def test_run_config_roundtrip(tmp_path) -> None:
    cfg = RunConfig(name="x", data="/d", model="tin", model_options={"dim": 4}, train=TrainConfig(seed=5))
    cfg.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == cfg
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ChronorecError):
        RunConfig.load(tmp_path / "bad.json")


def test_next_item_runs_record_their_loss_norm_and_old_configs_read_as_trained(
    tiny_nextitem_dataset, tiny_ctr_dataset, tmp_path
) -> None:
    """A new next-item run records task.loss_norm (epoch, or what --set gave); a config.json saved before the key existed resumes,
    compares in `reproduce` and re-runs as `--config` with the per-batch mean it was trained with."""
    import json

    from chronorec.train.build import run_config
    from chronorec.train.experiment import load_experiment
    from chronorec.train.reproduce import _same_config

    def norm(data, *sets: str):
        return run_config(data, "gru4rec" if data == tiny_nextitem_dataset else "din",
                          parse_overrides(list(sets))).task_options.get("loss_norm")

    assert norm(tiny_nextitem_dataset) == "epoch"
    assert norm(tiny_nextitem_dataset, "longtail.strategy=pin") == "epoch"
    assert norm(tiny_nextitem_dataset, "task.loss_norm=batch") == "batch"
    assert norm(tiny_ctr_dataset) is None  # not a CTR option

    new = run_config(tiny_nextitem_dataset, "gru4rec", {})
    old = new.model_dump(mode="json")
    del old["task_options"]["loss_norm"]  # as every next-item config.json before session 13
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(old))
    assert RunConfig.load(run_dir / "config.json").task_options["loss_norm"] == "batch"
    as_batch = run_config(tiny_nextitem_dataset, "gru4rec", parse_overrides(["task.loss_norm=batch"]))
    assert _same_config(as_batch, run_dir) and not _same_config(new, run_dir)
    assert load_experiment(run_dir / "config.json").overrides()["task"]["loss_norm"] == "batch"

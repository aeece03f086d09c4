"""Resuming never mixes datasets or trips on a half-written config: `train --resume` on a run whose
prepared data was re-prepared with other inputs/options is one error (it silently continued on the
new data); run configs are written atomically; reproduce names a cut-short config.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from chronorec.cli import main
from chronorec.errors import ChronorecError


@pytest.fixture
def unfinished_run(tiny_nextitem_dataset: Path, tmp_path: Path) -> Path:
    main(["train", "--data", str(tiny_nextitem_dataset), "--model", "gru4rec", "--set", "model.dim=8",
          "--set", "train.threads=1", "--epochs", "1", "--quiet", "--out", str(tmp_path / "runs")])
    (run,) = [p for p in (tmp_path / "runs").glob("*/*") if p.is_dir()]
    (run / "metrics.json").unlink()  # as if killed before the end
    return run


def test_resume_on_changed_prepared_data_is_refused(unfinished_run: Path, cli_error: Callable[[list[str]], str]) -> None:
    cfg_path = unfinished_run / "config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg["cache_key"]
    cfg["cache_key"] = "0" * 64  # the run started on other prepared data than the folder now holds
    cfg_path.write_text(json.dumps(cfg))
    log = (unfinished_run / "metrics.jsonl").read_bytes()
    err = cli_error(["train", "--resume", str(unfinished_run), "--quiet"])
    assert err.startswith(f"error: {cfg_path}: prepared data") and "changed since this run started" in err
    assert (unfinished_run / "metrics.jsonl").read_bytes() == log
    assert not (unfinished_run / "metrics.json").exists()


def test_run_config_save_is_atomic(unfinished_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chronorec.train.config import RunConfig

    path = unfinished_run / "config.json"
    before = path.read_bytes()
    cfg = RunConfig.load(path)
    real_write = Path.write_text

    def killed_mid_write(self: Path, text: str, *args: object, **kwargs: object) -> int:
        real_write(self, text[: len(text) // 2])
        raise KeyboardInterrupt  # the process dies half-way through the write

    monkeypatch.setattr(Path, "write_text", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        cfg.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the config on disk is still whole


def test_reproduce_names_a_cut_short_config(unfinished_run: Path) -> None:
    from chronorec.train.config import RunConfig
    from chronorec.train.reproduce import run_one

    path = unfinished_run / "config.json"
    cfg = RunConfig.load(path)
    path.write_text(path.read_text()[:40])
    with pytest.raises(ChronorecError) as info:
        run_one(cfg, unfinished_run, verbose=False)
    assert info.value.file == str(path) and "\n" not in str(info.value)

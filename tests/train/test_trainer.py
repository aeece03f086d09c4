"""Trainer on fake in-memory data: run folder, selection, early stop, exact resume after a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
import torch

from chronorec.train import trainer as trainer_mod
from chronorec.train.checkpoint import load_checkpoint
from chronorec.train.config import RunConfig
from chronorec.train.launch import resume, train
from chronorec.train.runs import MetricsLog, load_run
from chronorec.train.trainer import Trainer

ConfigFactory = Callable[..., RunConfig]


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _eval_lines(run_dir: Path) -> list[tuple]:
    return [(r["epoch"], r["step"], r["split"], json.dumps(r["metrics"], sort_keys=True), r.get("train_loss"),
             r.get("lr"))
            for r in MetricsLog(run_dir / "metrics.jsonl").read()]


def test_run_folder_layout_and_learning(fake_env: object, fake_config: ConfigFactory, tmp_path: Path) -> None:
    run_dir = train(fake_config(), out=tmp_path / "runs", command=["chronorec", "train"], verbose=False)
    assert run_dir.parent == tmp_path / "runs" / "fake-tiny"
    for f in ("config.json", "env.json", "metrics.jsonl", "metrics.json", "checkpoints/last.pt",
              "checkpoints/best.pt", "predictions/test.parquet"):
        assert (run_dir / f).is_file(), f
    env = json.loads((run_dir / "env.json").read_text())
    assert env["seed"] == 3 and env["threads"] == 1 and env["command"] == ["chronorec", "train"]
    assert {"python", "torch", "numpy", "polars", "git_sha", "host_cores", "omp_wait_policy"} <= set(env)
    m = _metrics(run_dir)
    assert set(m["test"]) >= {"gauc", "auc", "logloss", "groups"}
    assert set(m["test"]["groups"]) == {"head", "tail"}
    assert m["test"]["auc"] > 0.65  # the planted pattern is learnt
    assert m["samples_per_second"] > 0 and m["steps"] == 3 * 10
    lines = MetricsLog(run_dir / "metrics.jsonl").read()
    assert [r["split"] for r in lines] == ["valid"] * 3 + ["test"]
    assert [r["epoch"] for r in lines[:3]] == [1, 2, 3]
    best = max(lines[:3], key=lambda r: r["metrics"]["gauc"])
    assert m["best_epoch"] == best["epoch"] and m["valid"] == best["metrics"]
    preds = pl.read_parquet(run_dir / "predictions" / "test.parquet")
    assert preds.columns == ["index", "user", "item", "label", "score"] and preds.height == 200
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["stopped"] and ckpt["epoch"] == 3 and ckpt["batch_in_epoch"] == 0
    assert {"model", "optimizer", "rng", "best_metric", "patience_counter", "global_step"} <= set(ckpt)


def test_ctr_selection_on_valid_auc(fake_env: object, fake_config: ConfigFactory, tmp_path: Path) -> None:
    """``task.select_metric=auc``: the best epoch is the one of highest valid AUC (DIN's peers select so)."""
    cfg = fake_config(epochs=4).model_copy(update={"task_options": {"select_metric": "auc"}})
    run_dir = train(cfg, out=tmp_path, verbose=False)
    m = _metrics(run_dir)
    lines = MetricsLog(run_dir / "metrics.jsonl").read()[:4]
    best = max(lines, key=lambda r: r["metrics"]["auc"])
    assert best["epoch"] != max(lines, key=lambda r: r["metrics"]["gauc"])["epoch"]  # the choice matters here
    assert m["select_metric"] == "auc" and m["best_epoch"] == best["epoch"] and m["valid"] == best["metrics"]


def test_load_run_reproduces_test_metrics(fake_env: object, fake_config: ConfigFactory, tmp_path: Path) -> None:
    run_dir = train(fake_config(epochs=2), out=tmp_path, verbose=False)
    loaded = load_run(run_dir)
    assert not loaded.model.training
    assert loaded.evaluate("test") == _metrics(run_dir)["test"]


def test_same_seed_same_metrics_other_seed_differs(fake_env: object, fake_config: ConfigFactory,
                                                   tmp_path: Path) -> None:
    a = _metrics(train(fake_config(epochs=1), out=tmp_path / "a", verbose=False))
    b = _metrics(train(fake_config(epochs=1), out=tmp_path / "b", verbose=False))
    c = _metrics(train(fake_config(epochs=1, seed=4), out=tmp_path / "c", verbose=False))
    assert a["test"] == b["test"] and a["valid"] == b["valid"]
    assert a["test"]["logloss"] != c["test"]["logloss"]


def test_early_stopping_by_patience(fake_env: object, fake_config: ConfigFactory, tmp_path: Path) -> None:
    # a huge learning rate overfits fast; step-level evaluation with patience 1 stops early
    cfg = fake_config(epochs=20, lr=3.0, eval_unit="step", eval_every=5, patience=1)
    run_dir = train(cfg, out=tmp_path, verbose=False)
    m = _metrics(run_dir)
    valid = [r for r in MetricsLog(run_dir / "metrics.jsonl").read() if r["split"] == "valid"]
    assert m["steps"] < 20 * 10
    assert valid[-1]["metrics"]["gauc"] <= m["valid"]["gauc"]
    assert m["steps"] == valid[-1]["step"]
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["best_step"] == m["best_step"]


def test_lr_decays_on_a_plateau_of_the_selection_metric(fake_env: object, fake_config: ConfigFactory,
                                                        tmp_path: Path) -> None:
    """``train.lr_decay``: the rate logged with each evaluation follows ReduceLROnPlateau's rule,
    replayed here by hand from the logged metric (strict improvement, cut after more than
    ``lr_decay_patience`` evaluations without one, floor ``lr_min``)."""
    cfg = fake_config(epochs=20, lr=3.0, eval_unit="step", eval_every=5, patience=8, lr_decay=0.5,
                      lr_decay_patience=1, lr_min=0.4)
    run_dir = train(cfg, out=tmp_path, verbose=False)
    valid = [r for r in MetricsLog(run_dir / "metrics.jsonl").read() if r["split"] == "valid"]
    lr, best, bad, expected = 3.0, float("-inf"), 0, []
    for r in valid:
        expected.append(lr)
        value = r["metrics"]["gauc"]
        best, bad = (value, 0) if value > best else (best, bad + 1)
        if bad > 1:
            lr, bad = max(lr * 0.5, 0.4), 0
    assert [r["lr"] for r in valid] == pytest.approx(expected)
    assert 3.0 in expected and 0.4 in expected  # the run decayed down to the floor
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr)
    assert ckpt["lr_schedule"]["num_bad_epochs"] == bad


def test_constant_rate_by_default(fake_env: object, fake_config: ConfigFactory, tmp_path: Path) -> None:
    run_dir = train(fake_config(epochs=3, lr=3.0), out=tmp_path, verbose=False)
    valid = [r for r in MetricsLog(run_dir / "metrics.jsonl").read() if r["split"] == "valid"]
    assert [r["lr"] for r in valid] == [3.0] * 3
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["lr_schedule"] is None


def test_weight_average_is_evaluated_selected_and_kept(fake_env: object, fake_config: ConfigFactory,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``train.ema_decay``: best.pt holds the moving average of the weights after every step, replayed
    here by hand (first step copied, then decay min(0.9, (1+t)/(10+t))); it is what valid scored."""
    seen: list[dict[str, torch.Tensor]] = []
    original = Trainer._step

    def recording(self: Trainer, batch: object) -> None:
        original(self, batch)
        seen.append({k: v.detach().clone() for k, v in self.raw_model.state_dict().items()})

    monkeypatch.setattr(Trainer, "_step", recording)
    run_dir = train(fake_config(epochs=1, ema_decay=0.9), out=tmp_path, verbose=False)
    assert len(seen) == 10
    expected = dict(seen[0])
    for t, weights in enumerate(seen[1:], start=1):
        d = min(0.9, (1 + t) / (10 + t))
        expected = {k: d * expected[k] + (1 - d) * weights[k] for k in expected}
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    for k, v in expected.items():
        assert torch.allclose(best["model"][k], v, atol=1e-6), k
        assert torch.equal(last["model"][k], seen[-1][k]), k  # last.pt keeps the trained weights to resume
    assert any(not torch.allclose(best["model"][k], seen[-1][k]) for k in expected)
    assert int(last["ema"]["n_averaged"]) == 10 and "ema" not in best  # best.pt holds the average once
    m = _metrics(run_dir)
    loaded = load_run(run_dir)
    assert loaded.evaluate("valid") == m["valid"] and loaded.evaluate("test") == m["test"]


def test_weight_average_averages_float_buffers_and_copies_integer_ones() -> None:
    from chronorec.train.build import make_weight_average
    from chronorec.train.config import TrainConfig

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    avg = make_weight_average(m, TrainConfig(ema_decay=0.9))
    assert avg is not None and make_weight_average(m, TrainConfig()) is None
    means = []
    for _ in range(3):
        m(torch.randn(8, 3) * 5)
        means.append(m[1].running_mean.clone())
        avg.update_parameters(m)
    expected = means[0]
    for t, mean in enumerate(means[1:], start=1):
        expected = torch.lerp(expected, mean, 1 - min(0.9, (1 + t) / (10 + t)))
    torch.testing.assert_close(avg.module[1].running_mean, expected)
    assert int(avg.module[1].num_batches_tracked) == int(m[1].num_batches_tracked) == 3


class _Crash(Exception):
    pass


@pytest.mark.parametrize(("crash_at", "extra"), [
    (7, {}), (14, {}), (23, {"eval_unit": "step", "eval_every": 6}),
    # after some learning-rate cuts: the rate and the plateau counter resume from the checkpoint
    (19, {"lr": 3.0, "eval_unit": "step", "eval_every": 2, "lr_decay": 0.5, "lr_decay_patience": 0,
          "checkpoint_every": 3, "patience": 20}),
    # the weight average resumes from last.pt too (mid-epoch, between evaluations)
    (13, {"ema_decay": 0.9, "eval_unit": "step", "eval_every": 5}),
])
def test_resume_after_crash_is_exact(fake_env: object, fake_config: ConfigFactory, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, crash_at: int, extra: dict) -> None:
    cfg = fake_config(**extra)
    ref = train(cfg, out=tmp_path / "ref", verbose=False)
    if "lr_decay" in extra:  # the crash comes after a cut, and more cuts follow it
        rates = {r["step"]: r["lr"] for r in MetricsLog(ref / "metrics.jsonl").read() if r["split"] == "valid"}
        assert min(v for k, v in rates.items() if k < crash_at) < extra["lr"]
        assert min(rates.values()) < min(v for k, v in rates.items() if k < crash_at)

    original = Trainer._step

    def crashing(self: Trainer, batch: object) -> None:
        if self.state.global_step == crash_at:
            raise _Crash
        original(self, batch)

    monkeypatch.setattr(Trainer, "_step", crashing)
    with pytest.raises(_Crash):
        train(cfg, out=tmp_path / "crash", verbose=False)
    monkeypatch.setattr(Trainer, "_step", original)
    (run_dir,) = (tmp_path / "crash" / "fake-tiny").iterdir()
    assert not (run_dir / "metrics.json").exists()
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] < crash_at
    resume(run_dir, verbose=False)
    a, b = _metrics(ref), _metrics(run_dir)
    for key in ("valid", "test", "best_epoch", "best_step", "steps", "epochs"):
        assert a[key] == b[key], key
    assert _eval_lines(ref) == _eval_lines(run_dir)
    ra = torch.load(ref / "checkpoints" / "best.pt", weights_only=True)["model"]
    rb = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(ra[k], rb[k]) for k in ra)


def test_resume_finished_run_is_a_no_op(fake_env: object, fake_config: ConfigFactory, tmp_path: Path) -> None:
    run_dir = train(fake_config(epochs=1), out=tmp_path, verbose=False)
    before = (run_dir / "metrics.json").read_text()
    assert resume(run_dir, verbose=False) == run_dir
    assert (run_dir / "metrics.json").read_text() == before


def test_nan_loss_is_a_user_error(fake_env: object, fake_config: ConfigFactory, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from chronorec.errors import ChronorecError
    from chronorec.train.ctr_task import CTRTask

    monkeypatch.setattr(CTRTask, "loss", lambda self, model, batch: model(batch).logits.sum() * float("nan"))
    with pytest.raises(ChronorecError, match="training loss is nan"):
        train(fake_config(epochs=1), out=tmp_path, verbose=False)


def test_eval_line_printed_without_tty(fake_env: object, fake_config: ConfigFactory, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    train(fake_config(epochs=2), out=tmp_path, verbose=True)
    out = capsys.readouterr().out
    assert out.count(" valid gauc=") == 2 and "test (best at epoch" in out
    assert trainer_mod._show_progress() is False  # pytest captures stderr: no progress bar


def test_bad_task_option_is_one_error_and_leaves_no_run_folder(tiny_nextitem_dataset: Path, tmp_path: Path) -> None:
    from chronorec.errors import ChronorecError
    from chronorec.train import build
    from chronorec.train.config import parse_overrides

    cfg = build.run_config(tiny_nextitem_dataset, "sasrec", parse_overrides(["task.loss_precision=fp16"]))
    with pytest.raises(ChronorecError, match="loss_precision 'fp16'"):
        train(cfg, out=tmp_path / "runs", verbose=False)
    assert not any((tmp_path / "runs").rglob("*-s0-*"))  # the fresh run folder was removed again
    assert not any((tmp_path / "runs").iterdir())  # and so was its run-name folder


def test_configure_torch_is_deterministic_without_the_nan_fill() -> None:
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    try:
        trainer_mod.configure_torch(1, True)
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is False
        trainer_mod.configure_torch(1, False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = before[2]

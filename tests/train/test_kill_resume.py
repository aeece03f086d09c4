"""A run killed with SIGKILL mid-epoch and resumed ends with exactly the metrics of an uninterrupted run.

Real processes on the tiny synthetic prepared dataset: a reference run and a victim run start side
by side; the victim gets ``kill -9`` as soon as its first checkpoint appears (mid-epoch), then
``chronorec train --resume`` finishes it in a fresh process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from chronorec.train.runs import MetricsLog

ARGS = ["--model", "tin", "--set", "model.dim=8", "--set", "model.mlp=[16,8]", "--set", "model.dropout=0.1",
        "--epochs", "4", "--seed", "5", "--set", "train.batch_size=32", "--set", "train.checkpoint_every=25",
        "--set", "train.threads=1", "--quiet"]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "chronorec", "train", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "CI": "true", "PYTHONWARNINGS": "ignore"}


def _only_run(out: Path) -> Path:
    runs = [p for p in out.glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_sigkill_mid_epoch_then_resume_is_exact(tiny_ctr_dataset: Path, tmp_path: Path) -> None:
    data = ["--data", str(tiny_ctr_dataset)]
    ref = subprocess.Popen(_cmd(*data, *ARGS, "--out", str(tmp_path / "ref")), env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(_cmd(*data, *ARGS, "--out", str(tmp_path / "victim")), env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    ckpt = None
    while time.monotonic() < deadline and victim.poll() is None:
        found = list((tmp_path / "victim").glob("*/*/checkpoints/last.pt"))
        if found:
            ckpt = found[0]
            break
        time.sleep(0.02)
    assert ckpt is not None, f"no checkpoint appeared: {victim.stderr.read() if victim.stderr else ''}"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    run_dir = ckpt.parent.parent
    assert not (run_dir / "metrics.json").exists()
    state = torch.load(ckpt, weights_only=True)
    assert state["batch_in_epoch"] > 0 and not state["stopped"]  # killed mid-epoch

    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    done = subprocess.run(_cmd("--resume", str(run_dir), "--quiet"), env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    ref_dir = _only_run(tmp_path / "ref")
    a = json.loads((ref_dir / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    for key in ("valid", "test", "best_epoch", "best_step", "steps", "epochs"):
        assert a[key] == b[key], key
    strip = [(r["step"], r["split"], r["metrics"], r.get("train_loss")) for r in MetricsLog(ref_dir / "metrics.jsonl").read()]
    got = [(r["step"], r["split"], r["metrics"], r.get("train_loss")) for r in MetricsLog(run_dir / "metrics.jsonl").read()]
    assert strip == got

"""DDP: `torchrun --nproc_per_node 2` reaches the metrics of one process (within noise) on tiny data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ARGS = ["--model", "tin", "--set", "model.dim=8", "--set", "model.mlp=[16,8]", "--epochs", "3", "--seed", "2",
        "--set", "train.batch_size=32", "--quiet"]


def _run(cmd: list[str], out: Path) -> dict:
    env = {**os.environ, "CI": "true", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [p for p in out.glob("*/*") if p.is_dir()]  # only rank 0 created a run folder
    return {"dir": run_dir, **json.loads((run_dir / "metrics.json").read_text())}


@pytest.mark.slow
def test_two_processes_match_one(tiny_ctr_dataset: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    data = ["--data", str(tiny_ctr_dataset)]
    one = _run([sys.executable, "-m", "chronorec", "train", *data, *ARGS, "--set", "train.threads=1"], tmp_path / "one")
    two = _run([torchrun, "--nproc_per_node", "2", "--standalone", "-m", "chronorec", "train", *data, *ARGS],
               tmp_path / "two")
    env = json.loads((two["dir"] / "env.json").read_text())
    assert env["world_size"] == 2 and env["threads"] == 1
    assert two["world_size"] == 2 and two["steps"] == one["steps"]  # global batch: same steps per epoch
    for key, tol in (("auc", 0.03), ("gauc", 0.05), ("logloss", 0.02)):
        assert abs(one["test"][key] - two["test"][key]) < tol, (key, one["test"][key], two["test"][key])
    assert two["test"]["auc"] > 0.7  # both learnt the planted pattern

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
@pytest.mark.parametrize("extra", [[], ["--set", "train.ema_decay=0.9"]], ids=["weights", "weight-average"])
def test_two_processes_match_one(tiny_ctr_dataset: Path, tmp_path: Path, extra: list[str]) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    data = ["--data", str(tiny_ctr_dataset), *extra]
    one = _run([sys.executable, "-m", "chronorec", "train", *data, *ARGS, "--set", "train.threads=1"], tmp_path / "one")
    two = _run([torchrun, "--nproc_per_node", "2", "--standalone", "-m", "chronorec", "train", *data, *ARGS],
               tmp_path / "two")
    env = json.loads((two["dir"] / "env.json").read_text())
    assert env["world_size"] == 2 and env["threads"] == 1
    assert two["world_size"] == 2 and two["steps"] == one["steps"]  # global batch: same steps per epoch
    # every evaluation agrees (the selected epoch may not: valid GAUC of 150 users is noisy)
    curves = [[r["metrics"] for r in map(json.loads, (run["dir"] / "metrics.jsonl").read_text().splitlines())
               if r["split"] == "valid"] for run in (one, two)]
    assert len(curves[0]) == len(curves[1]) == 3
    pairs = list(zip(*curves, strict=True))
    if one["best_epoch"] == two["best_epoch"]:
        pairs.append((one["test"], two["test"]))
    for a, b in pairs:
        for key, tol in (("auc", 0.03), ("gauc", 0.05), ("logloss", 0.02)):
            assert abs(a[key] - b[key]) < tol, (key, a[key], b[key])
    assert two["test"]["auc"] > 0.7  # both learnt the planted pattern

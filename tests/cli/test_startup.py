"""The CLI starts light: loading every command must not import torch (prepare and friends never need
it; it costs ~300 MB and seconds of start-up), and OpenMP waits passively unless the user says otherwise."""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import os, sys\n"
    "from chronorec.cli import _load_commands\n"
    "_load_commands()\n"
    "print('torch' in sys.modules, os.environ['OMP_WAIT_POLICY'])\n"
)


def test_loading_commands_does_not_import_torch() -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "PASSIVE"]


def test_user_omp_setting_wins() -> None:
    env = {**__import__("os").environ, "OMP_WAIT_POLICY": "ACTIVE"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "ACTIVE"]

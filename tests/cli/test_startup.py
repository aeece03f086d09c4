"""The CLI starts light: loading every command must not import torch (prepare and friends never need
it; it costs ~300 MB and seconds of start-up), and OpenMP waits passively only on a busy machine,
unless the user says otherwise."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = (
    "import os, sys\n"
    "from chronorec.cli import _load_commands\n"
    "_load_commands()\n"
    "print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY', 'default'))\n"
)


def test_loading_commands_does_not_import_torch() -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split()[0] == "False"


def test_openmp_waits_passively_only_when_the_cores_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    import chronorec.cli as cli

    for var in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(cli.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    for others, expected in ((0, None), (1, None), (2, "PASSIVE"), (5, "PASSIVE")):
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        monkeypatch.setattr(cli, "_others_running", lambda n=others: n)
        cli._openmp_wait_policy()
        assert cli.os.environ.get("OMP_WAIT_POLICY") == expected, others
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")  # the user's own OpenMP setting wins
    monkeypatch.delenv("OMP_WAIT_POLICY")
    cli._openmp_wait_policy()
    assert "OMP_WAIT_POLICY" not in cli.os.environ


def test_running_count_reads_proc_loadavg() -> None:
    import chronorec.cli as cli

    assert cli._others_running() >= 0


def test_user_omp_setting_wins() -> None:
    env = {**__import__("os").environ, "OMP_WAIT_POLICY": "ACTIVE"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "ACTIVE"]


def test_usage_errors_are_short_messages_not_tracebacks() -> None:
    """An unknown option or an out-of-range value is click's usage message with exit 2 (typer >= 0.29
    vendors click, so catching ``click.ClickException`` alone let these escape as tracebacks)."""
    for args in (["prepare", "--no-such-flag"], ["train", "--epochs", "0"]):
        out = subprocess.run([sys.executable, "-m", "chronorec", *args], capture_output=True, text=True)
        assert out.returncode == 2, out.stderr
        assert "Traceback" not in out.stderr
        assert "Error:" in out.stderr


def test_quick_imports_restores_the_collector_and_freezes_what_was_imported() -> None:
    probe = (
        "import gc\n"
        "from chronorec.cli import quick_imports\n"
        "before = gc.get_freeze_count()\n"
        "with quick_imports():\n"
        "    inside = gc.isenabled()\n"
        "    import chronorec.data.schema\n"
        "print(inside, gc.isenabled(), gc.get_freeze_count() > before)\n"
        "gc.disable()\n"
        "with quick_imports():\n"
        "    pass\n"
        "print(gc.isenabled())\n"  # a collector the caller had switched off stays off
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "False"]

"""Helpers shared by the benchmark orchestrators (bench_prepare.py, bench_ctr.py, bench_nextitem.py).

Stdlib only, so it runs under any venv. The peer libraries live in their own venvs
(``bash benchmarks/setup_peers.sh``); their runners in ``benchmarks/peers/`` print one JSON line.

    from common import peer_command, run_json, write_results
    res = run_json(peer_command("recbole", "recbole_train.py", "--data-path", data, "--dataset",
                                "ml-100k", "--model", "SASRec", "--epochs", "1"), timeout=3600)
    res.result["train_s_per_epoch"], res.peak_rss_mb   # runner's JSON, child's own peak RSS
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENVS = BENCH_DIR / ".venvs"
PEERS = BENCH_DIR / "peers"
RESULTS = BENCH_DIR / "results"
CHRONOREC = ROOT / ".venv" / "bin" / "chronorec"  # the project's CLI (`make install`)
PEER_VENVS = ("recbole", "deepctr", "rechub")


def data_root() -> Path:
    """Shared datasets: $CHRONOREC_DATA, else ../shared/data beside the project (must exist)."""
    root = Path(os.environ.get("CHRONOREC_DATA", ROOT.parent / "shared" / "data"))
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} not found; set CHRONOREC_DATA")
    return root


def venv_python(name: str) -> Path:
    """Interpreter of a peer venv ('recbole' | 'deepctr' | 'rechub'); tells how to create it if absent."""
    py = VENVS / name / "bin" / "python"
    if not py.exists():
        raise FileNotFoundError(f"{py} missing: run `bash benchmarks/setup_peers.sh {name}`")
    return py


def chronorec_python() -> Path:
    """The project's own venv interpreter (``make install``), else the current one."""
    py = ROOT / ".venv" / "bin" / "python"
    return py if py.exists() else Path(sys.executable)


def ensure_atomic(name: str, atomic_root: Path) -> None:
    """Build ``atomic_root/<name>/<name>.inter`` with peers/to_atomic.py if it is missing."""
    if (atomic_root / name / f"{name}.inter").exists():
        return
    subprocess.run([str(chronorec_python()), str(PEERS / "to_atomic.py"), name, "--out",
                    str(atomic_root)], check=True)


def byte_compile_chronorec() -> None:
    """Write chronorec's byte-code before timing it, as pip does for every peer's wheel at install.

    The project is an editable install, so its modules are compiled on first import; where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on this machine) the result is never cached and every
    child process would pay ~50 ms compiling chronorec's own sources, which no installed wheel does.
    """
    subprocess.run([str(chronorec_python()), "-m", "compileall", "-q", str(ROOT / "src")], check=True)


def peer_command(venv: str, script: str, *args: Any) -> list[str]:
    """``[<venv python>, benchmarks/peers/<script>, *args]`` with args stringified."""
    return [str(venv_python(venv)), str(PEERS / script), *(str(a) for a in args)]


@dataclass
class RunResult:
    """What one child run produced: its JSON line (if any) and what the parent measured."""

    cmd: list[str]
    returncode: int | None  # None: killed at the timeout
    wall_s: float
    peak_rss_mb: float  # the child's own ru_maxrss (wait4), not the max over all children
    cpu_s: float  # child user + system CPU seconds
    result: dict[str, Any] | None
    stdout_tail: str = ""
    stderr_tail: str = ""
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.result is not None

    def as_dict(self) -> dict[str, Any]:
        return {"cmd": self.cmd, "returncode": self.returncode, "timed_out": self.timed_out,
                "wall_s": round(self.wall_s, 3), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "cpu_s": round(self.cpu_s, 2), "result": self.result,
                **({"stderr_tail": self.stderr_tail} if not self.ok else {})}


def last_json_line(text: str) -> dict[str, Any] | None:
    """The last stdout line that parses as a JSON object, or None."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def run_json(cmd: Sequence[str | os.PathLike[str]], timeout: float | None = None,
             env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
             threads: int | None = None, log: str | os.PathLike[str] | None = None) -> RunResult:
    """Run ``cmd``, wait up to ``timeout`` s, and return its last JSON line plus its peak RSS.

    The child runs in its own process group (killed whole at the timeout). Its peak RSS and CPU
    time come from ``os.wait4`` on that child, so other children of this process don't mix in.
    ``threads`` sets OMP_NUM_THREADS / MKL_NUM_THREADS for the child; ``log`` keeps its stderr.
    """
    cmd = [str(c) for c in cmd]
    child_env = dict(os.environ if env is None else env)
    if threads is not None:
        child_env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(tempfile.TemporaryFile(mode="w+b"))
        if log:
            err = stack.enter_context(Path(log).open("w+b"))
        else:
            err = stack.enter_context(tempfile.TemporaryFile(mode="w+b"))
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env, cwd=cwd,
                                start_new_session=True)
        status, rusage, timed_out = _wait(proc.pid, timeout)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return RunResult(
        cmd=cmd, returncode=None if timed_out else proc.returncode, wall_s=wall,
        peak_rss_mb=rusage.ru_maxrss / 1024.0, cpu_s=rusage.ru_utime + rusage.ru_stime,
        result=last_json_line(stdout), stdout_tail=stdout[-2000:], stderr_tail=stderr[-4000:],
        timed_out=timed_out,
    )


def _wait(pid: int, timeout: float | None) -> tuple[int, Any, bool]:
    """Block in ``os.wait4`` until the child ends: (status, rusage, timed out).

    Blocking (not polling) makes the end time exact: an earlier version polled with a backoff up
    to 0.5 s, which rounded a 0.86 s child up to 1.13 s. At the timeout a timer thread kills the
    child's process group; the wait then reaps it and reports the timeout.
    """
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        _, status, rusage = os.wait4(pid, 0)
    finally:
        if timer is not None:
            timer.cancel()
    return status, rusage, fired.is_set()


def run_with_time_v(cmd: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Alternative RSS measurement through ``/usr/bin/time -v`` (if installed): wall and max RSS."""
    if not Path("/usr/bin/time").exists():
        raise FileNotFoundError("/usr/bin/time not installed (apt-get install time)")
    proc = subprocess.run(["/usr/bin/time", "-v", *map(str, cmd)], capture_output=True, text=True,
                          timeout=timeout, check=False)
    stats: dict[str, Any] = {"returncode": proc.returncode, "result": last_json_line(proc.stdout)}
    for line in proc.stderr.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key == "Maximum resident set size (kbytes)":
            stats["peak_rss_mb"] = int(value) / 1024.0
        elif key.startswith("Elapsed (wall clock) time"):
            stats["wall"] = value
    return stats


def machine_info() -> dict[str, Any]:
    """Facts to store beside every result table: CPU, cores, load, Python."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def ratio(ours: float | None, theirs: float | None, higher_is_better: bool) -> float | None:
    """How many times better chronorec is than the peer (>1 = chronorec better), None if unknown.

    For "higher is better" metrics (samples/s) ours/theirs; for "lower is better" (seconds, MB)
    theirs/ours.
    """
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def mean_std(values: Sequence[float | None]) -> str | None:
    """``"mean ± std (n)"`` of the known values (sample std), None when there are none."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    std = statistics.stdev(known) if len(known) > 1 else 0.0
    return f"{statistics.fmean(known):.4f} ± {std:.4f} ({len(known)})"


def add_seed_metric(row: dict[str, Any], later: Sequence[Mapping[str, Any]], key: str) -> None:
    """``row[key]`` and the same metric of the runs with later seeds: ``<key>_seeds`` and ``<key>_mean_std``."""
    row[f"{key}_seeds"] = [row.get(key), *(r.get(key) for r in later)]
    row[f"{key}_mean_std"] = mean_std(row[f"{key}_seeds"])


def fmt(value: Any, digits: int = 3) -> str:
    """Compact cell text: floats to ``digits`` significant figures, lists joined, None as '–'."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                   headers: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` restricted to ``columns``."""
    headers = list(headers or columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def add_ratios(rows: list[dict[str, Any]], ours: Mapping[str, Any], metrics: Mapping[str, bool],
               suffix: str = "_x") -> list[dict[str, Any]]:
    """Add ``<metric><suffix>`` = ratio(ours[metric], row[metric]) to each peer row.

    ``metrics`` maps a metric name to True when higher is better. Returns the rows.
    """
    for row in rows:
        for name, higher in metrics.items():
            row[name + suffix] = ratio(ours.get(name), row.get(name), higher)
    return rows


def write_results(name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                  headers: Sequence[str] | None = None, title: str | None = None,
                  notes: str = "", out_dir: Path = RESULTS) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` (rows + machine info) and ``<name>.md`` (table); return both."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    json_path.write_text(json.dumps({"name": name, "machine": info, "rows": list(rows)}, indent=2,
                                    default=str) + "\n")
    parts = [f"# {title or name}", "", markdown_table(rows, columns, headers), "",
             f"Machine: {info['cpu']}, {info['cores']} cores, load {info['loadavg']}, {info['time']}."]
    if notes:
        parts += ["", notes]
    md_path.write_text("\n".join(parts) + "\n")
    return json_path, md_path


"""Stdlib-only helpers shared by the peer runner scripts (imported from their own folder).

Every runner ends by printing exactly one JSON line on stdout (`emit`); library chatter is sent to
stderr (`quiet_stdout`) so the orchestrators can take the last stdout line as the result.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """Current resident set size in MiB (from /proc/self/statm), 0.0 where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def set_threads(n: int) -> None:
    """Pin torch's intra-op threads to n (and inter-op threads too, when still allowed)."""
    import torch

    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(n)


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads), in seconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Timer:
    """Wall-clock and process-CPU stopwatch: ``with Timer() as t: ...; t.seconds, t.cpu_seconds``.

    CPU seconds count all threads, so on an idle machine with 2 torch threads they approach twice
    the wall time; on a shared, loaded machine they are the steadier number to compare.
    """

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.cpu_start = cpu_seconds()
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = cpu_seconds() - self.cpu_start


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send everything printed to stdout inside the block to stderr instead."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def emit(result: dict[str, Any]) -> None:
    """Print the result as one JSON line on the real stdout, with environment facts added.

    ``loadavg_1m_end`` is there because wall times mean little when other work shares the cores.
    """
    import torch

    result = {
        **result,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "cpu_s": round(cpu_seconds(), 2),
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "n_cpus": os.cpu_count(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    sys.__stdout__.write(json.dumps(result, default=_jsonable) + "\n")
    sys.__stdout__.flush()


def _jsonable(obj: Any) -> Any:
    """Fallback JSON encoding for numpy / torch scalars."""
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)

"""The `chronorec` command line.

Each module in this package adds its commands to the shared :data:`app` on import (one concern per
module: `prepare.py`, `train.py`, ...). Modules are discovered, so adding a command never means
editing this file. Every :class:`~chronorec.errors.ChronorecError` becomes one line on stderr and
exit status 2; nothing else is caught, so real bugs keep their tracebacks.
"""

from __future__ import annotations

import os

# Polars allocates through its own jemalloc, which by default keeps freed pages for 10 s: a prepare's
# short-lived frames then pile up (beauty peaked at 230 MB instead of 170 MB). Returning them at once
# costs no measurable time here. Read when polars is first imported; a user's setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

# pydantic looks for third-party plugins by scanning every installed distribution's entry points
# (~40 ms, a tenth of a prepare's start-up). The CLI uses none; a user's setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import contextlib
import gc
import importlib
import pkgutil
import sys
from collections.abc import Iterator

import typer

from chronorec.errors import ChronorecError


@contextlib.contextmanager
def quick_imports() -> Iterator[None]:
    """Import heavy libraries with the cyclic garbage collector paused, then freeze what they built.

    Importing polars, numpy and pydantic creates ~35,000 long-lived objects; every collection that
    the allocations trigger on the way walks all of them again, and so does the interpreter's
    final collection at exit. Pausing the collector while importing and then moving the survivors
    to the permanent generation (``gc.freeze``) skips that work: `python -c "import polars, numpy,
    chronorec.data.prepare"` took 0.48 s, 0.38 s this way (``perf stat -r 10``). Imports create
    almost no cyclic garbage, and the collector runs as usual once the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


app = typer.Typer(
    name="chronorec",
    help="Time-aware user behavior modeling: prepare logs, train TIN / INTERPOS / PIN models, analyze, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _others_running() -> int:
    """Runnable threads on this machine besides this one, the least of three looks 1 ms apart
    (``/proc/loadavg``'s running count; 0 where there is no such file)."""
    import time

    seen = []
    for i in range(3):
        try:
            with open("/proc/loadavg") as f:
                seen.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return 0
        if seen[-1] == 0:
            return 0
        if i < 2:
            time.sleep(0.001)
    return min(seen)


def _openmp_wait_policy() -> None:
    """Let torch's OpenMP threads spin between kernels on a free machine, sleep on a busy one.

    Spinning threads collapse when other processes want the cores (DIN on two threads beside two
    one-thread jobs on a 2-core machine: 1,500 samples/s spinning, 6,500 passive), and passive
    threads pay a wake-up on every kernel when the cores are free (the same DIN alone: 12,000
    spinning, 7,100 passive). So: passive when at least half the cores are already running
    something else at start-up, OpenMP's default otherwise. OpenMP reads it when torch is first
    imported, so :func:`main` decides before running a command; a user's ``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT`` wins.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if cores > 1 and _others_running() >= max(1, cores // 2):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _load_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def _one_line_warnings() -> None:
    """Print a :class:`ChronorecWarning` as one ``warning: ...`` line on stderr, like errors, instead
    of Python's two-line ``file.py:214: ChronorecWarning: ...`` plus the source line; other warnings
    keep Python's format."""
    import warnings

    from chronorec.errors import ChronorecWarning

    original = warnings.showwarning
    if getattr(original, "chronorec_one_line", False):  # main() called again in this process
        return

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: object = None, line: str | None = None) -> None:
        if issubclass(category, ChronorecWarning):
            typer.echo(f"warning: {' '.join(str(message).split())}", err=True)
        else:
            original(message, category, filename, lineno, file, line)  # type: ignore[arg-type]

    show.chronorec_one_line = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> None:
    """Console entry point (`chronorec ...` and `python -m chronorec ...`)."""
    with quick_imports():
        _load_commands()
    _openmp_wait_policy()  # before any command imports torch
    _one_line_warnings()
    try:
        app(args=argv, standalone_mode=False)
    except ChronorecError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as err:  # usage errors (unknown option, bad value) carry their own exit codes
        if _is_usage_error(err):
            err.show()  # type: ignore[attr-defined]
            sys.exit(err.exit_code)  # type: ignore[attr-defined]
        raise


def _is_usage_error(err: Exception) -> bool:
    """Click's exceptions: typer >= 0.29 vendors click as ``typer._click``, older typer uses click."""
    classes: list[type] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError):
            classes.append(importlib.import_module(module).ClickException)
    return isinstance(err, tuple(classes))

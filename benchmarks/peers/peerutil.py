"""Stdlib-only helpers shared by the peer runner scripts (imported from their own folder).

Every runner ends by printing exactly one JSON line on stdout (`emit`); library chatter is sent to
stderr (`quiet_stdout`) so the orchestrators can take the last stdout line as the result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
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


# ---- shared by the DIN runners (deepctr_din.py, rechub_din.py, fuxictr_din.py) ------------------
def int_list(text: str) -> list[int]:
    """'80,40' -> [80, 40]."""
    return [int(x) for x in text.split(",") if x.strip()]


def din_arg_parser(description: str, activation_flag: str = "--activation",
                   activation_help: str = "activation of attention MLP and DNN (sigmoid|dice|relu|prelu)",
                   ) -> argparse.ArgumentParser:
    """The flags every DIN runner takes (``bench_ctr.py`` passes the same set to each); a runner
    adds its own library-specific ones to the returned parser."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", type=Path, required=True, help="folder with train/valid/test files")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=50, help="history length L (most recent kept)")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--eval-batch-size", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--emb-dim", type=int, default=64, help="embedding size per field (item, category)")
    ap.add_argument("--att-hidden", type=int_list, default=[80, 40], help="attention MLP sizes, e.g. 80,40")
    ap.add_argument("--dnn-hidden", type=int_list, default=[80, 40], help="DNN sizes, e.g. 80,40")
    ap.add_argument(activation_flag, default="sigmoid", help=activation_help)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2024)
    return ap


def din_result(args: argparse.Namespace, *, train_rows: int, train_s: Sequence[float],
               train_cpu: Sequence[float], valid_auc: Sequence[float], test_label: Any, test_pred: Any,
               test_s: float, load_s: float, rss_after_load_mb: float, wall_s: float) -> dict[str, Any]:
    """The result fields every DIN runner reports (its own fields are added beside them)."""
    import numpy as np
    from sklearn.metrics import log_loss, roc_auc_score

    pred = np.asarray(test_pred, dtype=np.float64).ravel()
    return {
        "data": str(args.data),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_len": args.max_len,
        "emb_dim": args.emb_dim,
        "att_hidden": list(args.att_hidden),
        "dnn_hidden": list(args.dnn_hidden),
        "train_samples": train_rows,
        "train_samples_per_s": round(train_rows * len(train_s) / sum(train_s), 1),
        "train_samples_per_cpu_s": round(train_rows * len(train_cpu) / sum(train_cpu), 1),
        "train_s_epochs": [round(x, 3) for x in train_s],
        "train_cpu_s_epochs": [round(x, 3) for x in train_cpu],
        "valid_auc_epochs": [round(a, 5) for a in valid_auc],
        "test_auc": float(roc_auc_score(test_label, pred)),
        "test_logloss": float(log_loss(test_label, np.clip(pred, 1e-7, 1 - 1e-7))),
        "test_s": round(test_s, 3),
        "load_s": round(load_s, 3),
        "rss_after_load_mb": round(rss_after_load_mb, 1),
        "wall_s": round(wall_s, 3),
    }

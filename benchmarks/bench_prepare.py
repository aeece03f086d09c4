"""Data preparation: chronorec ``prepare`` beside RecBole 1.2.1's dataset build, same data, same run.

What is measured, per dataset (default amazon-beauty and yelp-a):

* chronorec: ``chronorec prepare --source lines --path <data>/<name>/raw --protocol
  next-item-last-out --force`` in a child process (nothing cached: ``--force`` rebuilds the
  output). Wall seconds, CPU seconds (user + system) and peak RSS of that child come from
  ``os.wait4`` via ``common.run_json``; the whole process is timed, imports included.
* RecBole: ``benchmarks/peers/recbole_prepare.py`` (RecBole ``create_dataset`` +
  ``data_preparation`` for SASRec, leave-last-out, max length 50) on the same interactions as an
  atomic file (``peers/to_atomic.py``, built here if missing). Reported both for the whole
  process (imports included, like the chronorec column) and for the preparation alone
  (``prepare_s`` / ``prepare_cpu_s`` from the runner, imports excluded).

The two sides run back to back, ``--repeats`` times each (the median is reported), and the
1-minute load average is recorded before every child. Ratios are "times better than RecBole"
(> 1 means chronorec is faster / smaller). Goal from the issue: >= 10x faster, <= 1/5 peak memory.

    /work/main/.venv/bin/python benchmarks/bench_prepare.py [--datasets amazon-beauty yelp-a]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CHRONOREC,
    RESULTS,
    byte_compile_chronorec,
    data_root,
    ensure_atomic,
    machine_info,
    markdown_table,
    peer_command,
    ratio,
    run_json,
)

COLUMNS = [
    ("dataset", "dataset"),
    ("cr_wall_s", "chronorec wall s"),
    ("cr_cpu_s", "chronorec CPU s"),
    ("cr_rss_mb", "chronorec peak RSS MB"),
    ("rb_wall_s", "RecBole wall s (process)"),
    ("rb_cpu_s", "RecBole CPU s (process)"),
    ("rb_prep_s", "RecBole prepare-only wall s"),
    ("rb_prep_cpu_s", "RecBole prepare-only CPU s"),
    ("rb_rss_mb", "RecBole peak RSS MB"),
    ("wall_x", "wall ×"),
    ("cpu_x", "CPU ×"),
    ("prep_only_wall_x", "wall × vs prepare-only"),
    ("prep_only_cpu_x", "CPU × vs prepare-only"),
    ("rss_x", "peak RSS ×"),
    ("load", "load 1m"),
]


def run_chronorec(name: str, out_dir: Path, threads: int, timeout: float) -> dict[str, Any]:
    """One ``chronorec prepare`` child: wall, CPU, peak RSS, load and chronorec's own 'total'."""
    load = os.getloadavg()[0]
    cmd = [CHRONOREC, "prepare", "--source", "lines", "--path", data_root() / name / "raw",
           "--protocol", "next-item-last-out", "--out", out_dir, "--force"]
    r = run_json(cmd, timeout=timeout, threads=threads)
    if r.returncode != 0:
        raise RuntimeError(f"chronorec prepare failed on {name}:\n{r.stderr_tail}")
    total = re.search(r"total ([0-9.]+) s", r.stdout_tail)
    return {"wall_s": r.wall_s, "cpu_s": r.cpu_s, "peak_rss_mb": r.peak_rss_mb, "load": load,
            "reported_total_s": float(total.group(1)) if total else None}


def run_recbole(name: str, atomic_root: Path, threads: int, timeout: float) -> dict[str, Any]:
    """One RecBole preparation child: process wall/CPU/RSS plus the runner's prepare-only times."""
    load = os.getloadavg()[0]
    r = run_json(peer_command("recbole", "recbole_prepare.py", "--data-path", atomic_root,
                              "--dataset", name, "--threads", threads),
                 timeout=timeout, threads=threads)
    if not r.ok:
        raise RuntimeError(f"RecBole prepare failed on {name}:\n{r.stderr_tail}")
    res = r.result or {}
    return {"wall_s": r.wall_s, "cpu_s": r.cpu_s, "peak_rss_mb": r.peak_rss_mb, "load": load,
            "prepare_s": res.get("prepare_s"), "prepare_cpu_s": res.get("prepare_cpu_s"),
            "import_s": res.get("import_s"), "train_samples": res.get("train_samples"),
            "n_inter": res.get("n_inter")}


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["amazon-beauty", "yelp-a"])
    ap.add_argument("--repeats", type=int, default=1, help="runs per side (median reported)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per child run")
    ap.add_argument("--atomic-root", type=Path, default=RESULTS / "atomic")
    ap.add_argument("--skip-recbole", action="store_true")
    args = ap.parse_args()

    stamp = time.strftime("%Y%m%d-%H%M%S")
    byte_compile_chronorec()
    info_start = machine_info()
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        for name in args.datasets:
            if not args.skip_recbole:
                ensure_atomic(name, args.atomic_root)
            cr_runs, rb_runs = [], []
            for _ in range(args.repeats):  # interleaved so both sides see similar load
                cr_runs.append(run_chronorec(name, Path(tmp) / name, args.threads, args.timeout))
                if not args.skip_recbole:
                    rb_runs.append(run_recbole(name, args.atomic_root, args.threads, args.timeout))
            raw[name] = {"chronorec": cr_runs, "recbole": rb_runs}
            row: dict[str, Any] = {
                "dataset": name,
                "cr_wall_s": median_of(cr_runs, "wall_s"),
                "cr_cpu_s": median_of(cr_runs, "cpu_s"),
                "cr_rss_mb": median_of(cr_runs, "peak_rss_mb"),
                "cr_reported_total_s": median_of(cr_runs, "reported_total_s"),
                "rb_wall_s": median_of(rb_runs, "wall_s"),
                "rb_cpu_s": median_of(rb_runs, "cpu_s"),
                "rb_prep_s": median_of(rb_runs, "prepare_s"),
                "rb_prep_cpu_s": median_of(rb_runs, "prepare_cpu_s"),
                "rb_rss_mb": median_of(rb_runs, "peak_rss_mb"),
                "load": [round(r["load"], 1) for r in cr_runs + rb_runs],
            }
            row["wall_x"] = ratio(row["cr_wall_s"], row["rb_wall_s"], False)
            row["cpu_x"] = ratio(row["cr_cpu_s"], row["rb_cpu_s"], False)
            row["prep_only_wall_x"] = ratio(row["cr_wall_s"], row["rb_prep_s"], False)
            row["prep_only_cpu_x"] = ratio(row["cr_cpu_s"], row["rb_prep_cpu_s"], False)
            row["rss_x"] = ratio(row["cr_rss_mb"], row["rb_rss_mb"], False)
            rows.append(row)
            print(f"{name}: done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)

    table = markdown_table(rows, [c for c, _ in COLUMNS], [h for _, h in COLUMNS])
    print(table)
    print(f"\nload 1m before each child (chronorec runs, then RecBole runs); machine load at start "
          f"{info_start['loadavg']}, at end {os.getloadavg()[0]:.2f}. chronorec columns are the "
          "whole process (imports included); 'prepare-only' excludes RecBole's ~30 s import.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"prepare-{stamp}.json"
    out.write_text(json.dumps({"name": "prepare", "args": vars(args), "machine_start": info_start,
                               "machine_end": machine_info(), "rows": rows, "runs": raw,
                               "table": table}, indent=2, default=str) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

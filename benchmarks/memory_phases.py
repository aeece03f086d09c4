"""Where a training run's resident memory goes: peak RSS (anonymous / file-backed) per trainer phase.

Runs ``chronorec train ARGS`` in this process with a thread that reads ``/proc/self/status`` every
5 ms and keeps, per phase, the highest ``VmRSS`` seen with its ``RssAnon`` and ``RssFile`` parts. Phases:
``import`` (Python, torch, polars, the CLI), ``setup`` (config, dataset, model, loaders, optimizer),
``first step``, ``steps`` (the rest of training), ``validate`` (each evaluation pass), ``save``
(checkpoints) and ``finish`` (test pass, predictions). The peak of the run is the largest of them;
``benchmarks/bench_nextitem.py`` measures the same peak from outside (``ru_maxrss``).

    /work/main/.venv/bin/python benchmarks/memory_phases.py train \\
        --data benchmarks/results/nextitem-bench/prepared-ml-100k --model gru4rec --epochs 2 \\
        --set model.dim=64 --set model.max_len=50 --set model.hidden=64 --set model.n_layers=2 \\
        --set train.batch_size=64 --set train.threads=2 --quiet --out /tmp/memory-phases

The sampler thread and its lists cost ~1 MB. The CLI's OpenMP wait-policy choice is made before torch
is imported, as ``chronorec`` does it, so the run is the CLI's run (a session-13 probe that imported
torch first ran 2 epochs in over 2 minutes instead of ~5 s beside another 2-thread job, stuck in
backward; spinning OpenMP threads on busy cores are the likely cause).
"""

from __future__ import annotations

import sys
import threading
import time

KEYS = ("VmRSS", "RssAnon", "RssFile")


def rss_mb() -> tuple[int, int, int]:
    """(VmRSS, RssAnon, RssFile) of this process in MB."""
    seen: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in KEYS:
                seen[key] = int(line.split()[1]) // 1024
    return seen["VmRSS"], seen["RssAnon"], seen["RssFile"]


def main(argv: list[str]) -> None:
    from chronorec.cli import _openmp_wait_policy
    from chronorec.cli import main as cli_main

    phase = ["import"]
    peaks: dict[str, tuple[int, int, int]] = {}

    def sample() -> None:
        while True:
            now = rss_mb()
            if now > peaks.get(phase[0], (0, 0, 0)):
                peaks[phase[0]] = now
            time.sleep(0.005)

    threading.Thread(target=sample, daemon=True).start()
    _openmp_wait_policy()  # before torch, as chronorec's main does
    from chronorec.train import trainer

    phase[0] = "setup"
    steps = [0]

    def timed(name: str, method):
        def run(self, *args, **kwargs):
            before = phase[0]
            if name == "_step":
                steps[0] += 1
                phase[0] = "first step" if steps[0] == 1 else "steps"
            else:
                phase[0] = name.lstrip("_")
            try:
                return method(self, *args, **kwargs)
            finally:
                phase[0] = "steps" if name == "_step" else before

        return run

    for name in ("_step", "_validate", "_save", "_finish"):
        setattr(trainer.Trainer, name, timed(name, getattr(trainer.Trainer, name)))
    try:
        cli_main(argv)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    time.sleep(0.02)
    print(f"{'phase':<12} {'peak RSS MB':>11} {'anon':>6} {'file':>6}")
    for name, (rss, anon, file) in peaks.items():
        print(f"{name:<12} {rss:>11} {anon:>6} {file:>6}")
    print(f"{'peak':<12} {max(p[0] for p in peaks.values()):>11}")


if __name__ == "__main__":
    main(sys.argv[1:])

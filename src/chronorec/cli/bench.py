"""`chronorec bench`: chronorec's own throughput on a prepared dataset, measured the same way every time.

    chronorec bench train --data prepared/grocery-ctr --model din --steps 100
    chronorec bench loader --data prepared/grocery-ctr --batch-size 1024

``bench train`` times full training steps (batch gather + forward + backward + optimizer) exactly as
the trainer runs them, after ``--warmup`` untimed steps, and reports samples/s, CPU seconds per 1k
samples (steadier than wall time on a shared machine), minor page faults per step, the 1-minute
load average and peak RSS.
``bench loader`` times batch building alone, to show it is a small share of a step.

Side-by-side comparisons with RecBole, DeepCTR-Torch and torch-rechub, which need their own venvs,
live in the repository's ``benchmarks/`` folder (``docs/benchmarks.md``).
"""

from __future__ import annotations

import json
import os
import resource
import time
from itertools import islice
from pathlib import Path

import typer

from chronorec.cli import app

bench_app = typer.Typer(help="Measure chronorec's own training and batch-building throughput.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    for k, v in result.items():
        typer.echo(f"{k:>24}: {v}")


@bench_app.command("train")
def bench_train(
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    model: str = typer.Option(..., "--model", help="registered model name"),
    sets: list[str] = typer.Option(None, "--set", help="override SECTION.KEY=VALUE (model.*, train.*)"),
    steps: int = typer.Option(50, "--steps", min=1, help="timed training steps"),
    warmup: int = typer.Option(5, "--warmup", min=0, help="untimed steps first"),
    as_json: bool = typer.Option(False, "--json", help="one JSON line instead of a table"),
    profile: int = typer.Option(0, "--profile", min=0, help="after timing, run the timed steps again under "
                                "torch.profiler and print its top N (op, input shapes) by self CPU time (0: no profile)"),
) -> None:
    """Time training steps of MODEL on DATA (the trainer's loader, task, model and optimizer)."""
    import torch

    from chronorec.train import build
    from chronorec.train.config import default_threads, parse_overrides
    from chronorec.train.trainer import configure_torch

    cfg = build.run_config(data, model, parse_overrides(sets))
    tc = cfg.train
    threads = tc.threads or default_threads()
    configure_torch(threads, tc.deterministic)  # as the trainer does
    torch.manual_seed(tc.seed)
    dataset = build.open_dataset(cfg.data)
    task = build.make_training_task(cfg, dataset)
    net = build.make_run_model(cfg, dataset.schema)
    optimizer = build.make_optimizer(net, tc)
    loader = build.make_train_loader(cfg, dataset)
    build.calibrate_task(task, loader)
    net.train()

    def run(n: int) -> int:
        seen = 0
        epoch = 0
        while n > 0:
            got = 0
            for batch in islice(loader.iter_epoch(epoch), n):
                loss = task.loss(net, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if tc.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)
                optimizer.step()
                seen += len(batch)
                got += 1
            n -= got
            epoch += 1
            if got == 0:
                break
        return seen

    run(warmup)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    seen = run(steps)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    _report({
        "model": model, "dataset": dataset.schema.name, "steps": steps, "batch_size": tc.batch_size,
        "threads": threads, "samples": seen, "wall_s": round(wall, 3),
        "samples_per_s": round(seen / wall, 1), "cpu_s_per_1k_samples": round(1000 * cpu / max(seen, 1), 4),
        "minor_faults_per_step": round(faults / max(steps, 1)),
        "peak_rss_mb": round(_peak_rss_mb(), 1), "loadavg_1m": round(os.getloadavg()[0], 2),
    }, as_json)
    if profile:
        from torch.profiler import profile as torch_profile

        with torch_profile(record_shapes=True) as prof:
            run(steps)
        table = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=profile)
        typer.echo(table)


@bench_app.command("loader")
def bench_loader(
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    split: str = typer.Option("train", "--split"),
    batch_size: int = typer.Option(1024, "--batch-size", min=1),
    max_len: int = typer.Option(None, "--max-len", min=1, help="history cap (default: full history)"),
    bucket: bool = typer.Option(True, "--bucket/--no-bucket", help="length-bucketed batches"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Time building one epoch of batches from the prepared offsets (no model)."""
    from chronorec.train import build

    dataset = build.open_dataset(data)
    loader = build.make_loader(dataset, split, batch_size=batch_size, shuffle=True, seed=0,
                               max_len=max_len, bucket=bucket)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    n = rows = tokens = 0
    for batch in loader.iter_epoch(0):
        n += 1
        rows += len(batch)
        tokens += int(batch.lengths.sum())
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    _report({
        "dataset": dataset.schema.name, "split": split, "batches": n, "rows": rows,
        "history_tokens": tokens, "wall_s": round(wall, 3), "batches_per_s": round(n / wall, 1),
        "cpu_ms_per_batch": round(1000 * cpu / max(n, 1), 3), "peak_rss_mb": round(_peak_rss_mb(), 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }, as_json)

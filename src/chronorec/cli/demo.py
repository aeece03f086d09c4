"""`chronorec demo`: prepare Amazon Grocery, train TIN and DIN briefly, compare them on the test split.

The shared data folder is ``$CHRONOREC_DATA`` or ``../shared/data``. Where ``amazon-grocery`` is not
there, the demo runs on the seeded synthetic log with a planted semantic-temporal pattern
(:mod:`chronorec.data.synthetic`) and says so in its output. Sized for a few minutes on two cores.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import typer

from chronorec.cli import app

MODELS = ("tin", "din")


def _grocery_folder() -> Path | None:
    """``amazon-grocery`` in the shared data folder, None when absent."""
    from chronorec.data.paths import dataset_dir

    return dataset_dir("amazon-grocery", required=False)


def _source() -> tuple[Any, str, bool]:
    """(SourceData, dataset name, is_real)."""
    from chronorec.data.sources import load_source
    from chronorec.data.synthetic import synthetic_source

    folder = _grocery_folder()
    if folder is not None:
        return load_source("amazon-csv", folder), "amazon-grocery", True
    return synthetic_source(n_users=3000, n_items=1500, n_categories=20, seed=0), "synthetic", False


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="parent folder of the demo's run folders"),
    prepared: Path = typer.Option(Path("prepared"), "--prepared", help="where the prepared dataset goes"),
    epochs: int = typer.Option(2, "--epochs", min=1, help="training epochs per model"),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads (0 = all cores)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train TIN and DIN on Amazon Grocery (or the synthetic log) and print test GAUC / AUC / logloss."""
    from chronorec.data.prepare import PrepareOptions, prepare
    from chronorec.train import launch
    from chronorec.train.build import run_config

    t0 = time.perf_counter()
    source, name, real = _source()
    label = name if real else "SYNTHETIC log with a planted pattern (amazon-grocery not found; set CHRONOREC_DATA)"
    typer.echo(f"data: {label}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = prepare(source, prepared / f"{name}-ctr", PrepareOptions.create(protocol="ctr-leave-one-out"))
    typer.echo(result.text())
    train: dict[str, Any] = {"epochs": epochs, "batch_size": 256, "bucket": True}
    if threads:
        train["threads"] = threads
    rows = []
    for model in MODELS:
        typer.echo(f"\n== {model.upper()} ({epochs} epochs) ==")
        cfg = run_config(result.out, model, {"train": train}, seed=seed, name=f"demo-{name}-{model}")
        run_dir = launch.train(cfg, out=out)
        rows.append((model.upper(), run_dir, json.loads((run_dir / "metrics.json").read_text())))
    typer.echo(f"\nTest split of {label}: {result.schema.n_users:,} users, "
               f"{result.schema.counts.get('test', 0):,} test samples (one positive, one sampled negative per user)")
    typer.echo(f"{'model':<6} {'GAUC':>7} {'AUC':>7} {'logloss':>8} {'best ep':>7} {'train s':>8} {'samples/s':>10}")
    for model, _, m in rows:
        t = m["test"]
        typer.echo(f"{model:<6} {t['gauc']:>7.4f} {t['auc']:>7.4f} {t['logloss']:>8.4f} {m['best_epoch']!s:>7} "
                   f"{m['train_seconds']:>8.1f} {m['samples_per_second']:>10,.0f}")
    for model, run_dir, _ in rows:
        typer.echo(f"{model} run folder: {run_dir}")
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f} s")

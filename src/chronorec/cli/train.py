"""`chronorec train`: train a registered model on a prepared dataset, or resume a run.

    chronorec train --data prepared/amazon-grocery --model tin --set model.dim=32 --set train.lr=1e-3
    chronorec train --resume runs/grocery-tin/20250101-120000-s0-ab12
    chronorec train --config experiments/beauty-sasrec-mf.yaml --seed 2    # or a run's config.json
    torchrun --nproc_per_node 2 -m chronorec train --data prepared/amazon-grocery --model tin

The task (CTR or next-item) follows the dataset's ``schema.task``. ``--set SECTION.KEY=VALUE``
overrides any model option (``model.*``), training option (``train.*``: optimizer, lr,
weight_decay, batch_size, epochs, max_len, grad_clip, patience, eval_every, eval_unit,
checkpoint_every, seed, threads, deterministic, bucket, ...) or task option (``task.*``); values are
JSON literals validated against the option's type. ``--longtail pin`` trains PIN (stage one:
backbone with gradient aggregation in ``RUN/backbone/``; stage two: per-group plugins in ``RUN/``);
``longtail.*`` options are in :class:`chronorec.longtail.LongtailConfig`. ``--config FILE`` reads
the whole run from an experiment file (:mod:`chronorec.train.experiment`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from chronorec.cli import app
from chronorec.errors import ChronorecError


@app.command()
def train(
    data: Path = typer.Option(None, "--data", help="prepared dataset folder (chronorec prepare ...)"),
    model: str = typer.Option(None, "--model", help="registered model name (see `chronorec models`)"),
    sets: list[str] = typer.Option(None, "--set", help="override SECTION.KEY=VALUE, e.g. model.dim=64, train.lr=1e-3"),
    seed: int = typer.Option(None, "--seed", help="random seed (same as --set train.seed=N)"),
    out: Path = typer.Option(Path("runs"), "--out", help="parent folder of run folders"),
    name: str = typer.Option(None, "--name", help="run name (default <dataset>-<model>)"),
    epochs: int = typer.Option(None, "--epochs", min=1, help="epochs (same as --set train.epochs=E)"),
    resume: Path = typer.Option(None, "--resume", help="continue the run in this folder from its last checkpoint"),
    longtail: str = typer.Option(
        None, "--longtail", help="long-tail strategy: joint | pin | reweight | head_only | tail_only "
        "(same as --set longtail.strategy=...)",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="no per-evaluation lines"),
    config: Path = typer.Option(None, "--config", help="experiment file (YAML, TOML or JSON; a run's config.json "
                                "too); the other options override it"),
) -> None:
    """Train a model (rank 0 writes runs/<name>/<id>/: config, env, metrics, checkpoints)."""
    from chronorec.train import launch

    command = list(sys.argv)
    if resume is not None:
        if any(v is not None for v in (data, model, seed, epochs, name, longtail, config)) or sets:
            raise ChronorecError("--resume continues a run with its saved config; give no other run options")
        run_dir = launch.resume(resume, command=command, verbose=not quiet)
    else:
        from chronorec import api
        from chronorec.train.config import parse_overrides
        from chronorec.train.experiment import load_experiment, merge

        overrides = parse_overrides(sets)
        exp = load_experiment(config) if config is not None else None
        if exp is not None:
            overrides = merge(exp.overrides(), overrides)
            data = data or (Path(exp.data) if exp.data else None)
            # a saved config.json's default name follows this run's data and model, not the old ones
            model, name = model or exp.model, name or (None if exp.default_name() else exp.name)
        if data is None or model is None:
            raise ChronorecError("give --data PREPARED and --model NAME (or --config FILE, or --resume RUN_DIR)")
        if longtail is not None:
            overrides["longtail"]["strategy"] = longtail
        if exp is not None:
            exp.check_task(data)
            if exp.cache_key and exp.data and Path(exp.data).expanduser().resolve() == data.expanduser().resolve():
                from chronorec.train.runs import check_data

                check_data(data, exp.cache_key)  # warns if the file's prepared data changed since
        run_dir = api.fit(data, model, seed=seed, epochs=epochs, out=out, name=name, verbose=not quiet,
                          command=command, **overrides)
    _report(run_dir)


def _report(run_dir: Path) -> None:
    metrics = run_dir / "metrics.json"
    if int(os.environ.get("RANK", "0")) != 0 or not metrics.is_file():
        return
    m = json.loads(metrics.read_text())
    test = {k: v for k, v in m["test"].items() if isinstance(v, float)}
    shown = " ".join(f"{k}={v:.4f}" for k, v in test.items())
    typer.echo(f"{run_dir}: test {shown} (best epoch {m['best_epoch']}, {m['samples_per_second']} samples/s)")

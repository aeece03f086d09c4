"""`chronorec evaluate`: score a trained run's checkpoint on a split, from the run folder alone."""

from __future__ import annotations

from pathlib import Path

import typer

from chronorec.cli import app
from chronorec.errors import ChronorecError


@app.command()
def evaluate(
    run: Path = typer.Option(..., "--run", help="run folder (runs/<name>/<id>)"),
    split: str = typer.Option("test", "--split", help="train | valid | test"),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best | last"),
    batch_size: int = typer.Option(0, "--batch-size", min=0, help="evaluation batch size (0 = the run's)"),
) -> None:
    """Evaluate a run's checkpoint; prints the metrics and writes RUN/eval/<split>-<checkpoint>.json."""
    import json

    from chronorec.train.runs import load_run, write_json

    if checkpoint not in ("best", "last"):
        raise ChronorecError(f"--checkpoint must be best or last, got {checkpoint!r}")
    loaded = load_run(run, checkpoint)  # type: ignore[arg-type]
    metrics = loaded.task.evaluate(loaded.model, loaded.loader(split, batch_size or None).iter_epoch(0))
    out = run / "eval" / f"{split}-{checkpoint}.json"
    out.parent.mkdir(exist_ok=True)
    write_json(out, {"split": split, "checkpoint": checkpoint, "metrics": metrics})
    typer.echo(json.dumps(metrics, indent=2))
    typer.echo(f"written to {out}", err=True)

"""`chronorec predict`: per-sample predictions of a trained run with raw user / item ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from chronorec import atomic
from chronorec.cli import app
from chronorec.errors import ChronorecError


@app.command()
def predict(
    run: Path = typer.Option(..., "--run", help="run folder (runs/<name>/<id>)"),
    split: str = typer.Option("test", "--split", help="train | valid | test"),
    out: Path = typer.Option(..., "--out", help="output Parquet file"),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best | last"),
) -> None:
    """Write one row per sample: raw user and item ids (through the prepared vocabularies), the row's
    index in the split, and label + score (CTR: click probability) or rank (next-item, 1 = top)."""
    from chronorec.train.runs import load_run

    if checkpoint not in ("best", "last"):
        raise ChronorecError(f"--checkpoint must be best or last, got {checkpoint!r}")
    if out.suffix != ".parquet":
        raise ChronorecError(f"--out must be a .parquet file, got {out}")
    if out.is_dir():
        raise ChronorecError("--out is a folder; give a .parquet file name", file=out)
    try:  # before the model runs: a bad --out fails at once
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ChronorecError(f"cannot create the output folder: {err.strerror}", file=out) from None
    loaded = load_run(run, checkpoint)  # type: ignore[arg-type]
    df = loaded.predict(split, raw_ids=True)
    _write_atomic(df, out)
    typer.echo(f"{out}: {df.height:,} rows ({', '.join(df.columns)})")


def _write_atomic(df: Any, out: Path) -> None:
    """Write beside ``out`` and move into place: an interrupted or failed write never leaves a
    truncated file where an earlier good one was."""
    try:
        with atomic.replacing(out) as tmp:
            df.write_parquet(tmp)
    except OSError as err:
        raise ChronorecError(f"cannot write the predictions: {err.strerror or err}", file=out) from None

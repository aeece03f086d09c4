"""`chronorec export`: a run's scoring path as TorchScript or ONNX, checked against the eager model."""

from __future__ import annotations

from pathlib import Path

import typer

from chronorec.cli import app


@app.command()
def export(
    run: Path = typer.Option(..., "--run", help="run folder (runs/<name>/<id>)"),
    fmt: str = typer.Option("torchscript", "--format", help="torchscript | onnx"),
    out: Path = typer.Option(..., "--out", help="output file (.pt / .onnx); metadata goes to FILE.json"),
    history_len: int = typer.Option(0, "--history-len", min=0,
                                    help="fixed padded history length L (0 = the serving history cap)"),
    batch_size: int = typer.Option(0, "--batch-size", min=0,
                                   help="fix the batch size too (0 = dynamic); for models that read it as an int"),
    atol: float = typer.Option(1e-5, help="largest allowed |exported - eager| in the parity check"),
) -> None:
    """Export the scoring path (plain tensors in, probabilities / item scores out) with a parity check."""
    from chronorec.serve.export import export_model
    from chronorec.serve.service import ServedModel

    served = ServedModel.load(run)
    length = history_len or served.cap or max(served.schema.max_history_len, 1)
    meta = export_model(served.model, served.schema, fmt, out, length, served.name, atol,  # type: ignore[arg-type]
                        batch_size or None)
    typer.echo(
        f"exported {served.name} ({meta['task']}) to {out} as {fmt}: inputs padded to L={length}, "
        f"batch size {batch_size or 'dynamic'}, "
        f"parity max |diff| = {meta['parity_max_abs_diff']:.2e} (atol {atol:g}); metadata in {out}.json"
    )

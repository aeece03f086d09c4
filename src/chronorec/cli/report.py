"""`chronorec report`: one self-contained HTML page (plus Markdown) about trained runs."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from chronorec.cli import app
from chronorec.errors import ChronorecError


@app.command("report")
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders, or folders holding runs (searched recursively)."),
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write (Markdown goes beside it)."),
    analysis: Path | None = typer.Option(None, "--analysis", help="Folder written by `chronorec analyze correlation`."),
    title: str = typer.Option("chronorec report", "--title"),
) -> None:
    """Metrics (mean ± std over seeds, head/tail groups), configs, dataset summary and analysis figures,
    as one offline HTML file with embedded images and a Markdown version next to it."""
    from chronorec.analysis.report import build_report

    if analysis is not None and not analysis.is_dir():
        raise ChronorecError("--analysis folder not found (write it with `chronorec analyze correlation`)",
                             file=analysis)
    _check_writable(out)  # before reading any run: a bad --out fails at once, as one line
    html, md = build_report(list(runs), out, analysis, title)
    typer.echo(f"wrote {html} and {md}")


def _check_writable(out: Path) -> None:
    if out.is_dir():
        raise ChronorecError("--out is a folder; give an .html file name", file=out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.{os.getpid()}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ChronorecError(f"cannot write the report here: {err.strerror or err}", file=out) from None

"""`chronorec report`: one self-contained HTML page (plus Markdown) about trained runs."""

from __future__ import annotations

from pathlib import Path

import typer

from chronorec.cli import app


@app.command("report")
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders, or folders holding runs (searched recursively)."),
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write (Markdown goes beside it)."),
    analysis: Path | None = typer.Option(None, "--analysis", help="Folder written by `chronorec analyze correlation`."),
    title: str = typer.Option("chronorec report", "--title"),
) -> None:
    """Metrics (mean ± std over seeds, head/tail groups), configs, dataset summary and analysis figures,
    as one offline HTML file with embedded images and a Markdown version next to it."""
    from chronorec import api

    html, md = api.report(list(runs), out=out, analysis=analysis, title=title)
    typer.echo(f"wrote {html} and {md}")

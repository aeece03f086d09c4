"""`chronorec models`: the registered models with their task and a one-line summary."""

from __future__ import annotations

import typer

from chronorec.cli import app
from chronorec.errors import ChronorecError


@app.command()
def models(
    task: str = typer.Option(None, "--task", help="only ctr or next_item models"),
    options: bool = typer.Option(False, "--options", help="also list each model's options with defaults"),
) -> None:
    """List registered models (name, task, summary)."""
    from chronorec.models.registry import get_entry, list_models

    if task not in (None, "ctr", "next_item"):
        raise ChronorecError(f"--task must be ctr or next_item, got {task!r}")
    names = list_models(task)
    width = max((len(n) for n in names), default=0)
    for name in names:
        e = get_entry(name)
        typer.echo(f"{name:<{width}}  {e.task:<9}  {e.summary}")
        if options:
            for key, value in e.config().model_dump(mode="json").items():
                typer.echo(f"{'':<{width}}    model.{key}={value}")

"""`chronorec reproduce tin|interpos`: every model of a paper's table over several seeds, then the tables.

    chronorec reproduce tin --data prepared/amazon-grocery --seeds 5 --epochs 10
    chronorec reproduce tin --data prepared/amazon-grocery --seeds 2 --models tin,tin_coe,din
    chronorec reproduce interpos --data prepared/yelp-next --seeds 3 --jobs 2

Writes ``OUT/<name>/{runs/<model>/seed<k>/, results.json, tables.md}``; re-running skips finished
(model, seed) runs and resumes interrupted ones. ``--set`` applies to every run (``model.*`` options
must exist in every selected model). ``--jobs N`` trains N runs at a time, one process each.
"""

from __future__ import annotations

from pathlib import Path

import typer

from chronorec.cli import app

JOBS_HELP = "runs trained at a time, each in its own process with cores/jobs threads (default train.threads)"
reproduce_app = typer.Typer(help="Multi-seed reproduction of the TIN (Tables 1, 3, 4) and INTERPOS tables.",
                            no_args_is_help=True)
app.add_typer(reproduce_app, name="reproduce")


def _run(plan_name: str, data: Path, seeds: int, seed_base: int, epochs: int | None, models: str | None,
         sets: list[str] | None, out: Path, name: str | None, quiet: bool, jobs: int) -> None:
    from chronorec import api
    from chronorec.train.config import parse_overrides

    result = api.reproduce(plan_name, data, seeds=seeds, seed_base=seed_base, epochs=epochs,
                           models=models, out=out, name=name,
                           jobs=jobs, verbose=not quiet, echo=typer.echo, **parse_overrides(sets))
    typer.echo(result["tables"])
    typer.echo(f"written to {result['folder'] / 'tables.md'}")


@reproduce_app.command("tin")
def tin(
    data: Path = typer.Option(..., "--data", help="prepared CTR dataset"),
    seeds: int = typer.Option(5, "--seeds", min=1, help="number of seeds (seed-base, seed-base+1, ...)"),
    seed_base: int = typer.Option(0, "--seed-base", help="first seed"),
    epochs: int = typer.Option(None, "--epochs", min=1, help="epochs per run (default: train.epochs)"),
    models: str = typer.Option(None, "--models", help="comma-separated subset (registry names or row labels)"),
    sets: list[str] = typer.Option(None, "--set", help="override SECTION.KEY=VALUE for every run"),
    out: Path = typer.Option(Path("runs"), "--out", help="parent folder"),
    name: str = typer.Option(None, "--name", help="folder name (default reproduce-tin-<dataset>)"),
    quiet: bool = typer.Option(False, "--quiet", help="no per-evaluation lines"),
    jobs: int = typer.Option(1, "--jobs", min=1, help=JOBS_HELP),
) -> None:
    """TIN, its ablations and encodings, and the paper's baselines: Tables 1, 3 and 4."""
    _run("tin", data, seeds, seed_base, epochs, models, sets, out, name, quiet, jobs)


@reproduce_app.command("interpos")
def interpos(
    data: Path = typer.Option(..., "--data", help="prepared next-item dataset"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="number of seeds"),
    seed_base: int = typer.Option(0, "--seed-base", help="first seed"),
    epochs: int = typer.Option(None, "--epochs", min=1, help="epochs per run (default: train.epochs)"),
    models: str = typer.Option(None, "--models", help="comma-separated subset (registry names or row labels)"),
    sets: list[str] = typer.Option(None, "--set", help="override SECTION.KEY=VALUE for every run"),
    out: Path = typer.Option(Path("runs"), "--out", help="parent folder"),
    name: str = typer.Option(None, "--name", help="folder name (default reproduce-interpos-<dataset>)"),
    quiet: bool = typer.Option(False, "--quiet", help="no per-evaluation lines"),
    jobs: int = typer.Option(1, "--jobs", min=1, help=JOBS_HELP),
) -> None:
    """SASRec and LightSANs with and without rhythm (BF/MF/GF), GRU4Rec, BERT4Rec: NDCG/HIT/MRR."""
    _run("interpos", data, seeds, seed_base, epochs, models, sets, out, name, quiet, jobs)

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
    from chronorec.data.schema import DatasetSchema
    from chronorec.errors import ChronorecError
    from chronorec.train import reproduce
    from chronorec.train.build import run_config
    from chronorec.train.config import parse_overrides

    data = data.expanduser().resolve()
    if not (data / "schema.json").is_file():
        raise ChronorecError(f"not a prepared dataset (no schema.json): {data}")
    schema = DatasetSchema.load(data / "schema.json")
    want = "ctr" if plan_name == "tin" else "next_item"
    if schema.task != want:
        raise ChronorecError(f"reproduce {plan_name} needs a {want} dataset; {data} was prepared for {schema.task}")
    plan = reproduce.select(reproduce.PLANS[plan_name], [m.strip() for m in models.split(",")] if models else None)
    if not plan:
        raise ChronorecError("no registered model left to run")
    over = parse_overrides(sets)
    run_name = name or f"reproduce-{plan_name}-{schema.name}"

    defaults = reproduce.PLAN_DEFAULTS[plan_name]

    def make_config(spec: reproduce.Spec, seed: int) -> object:
        merged = {"model": {**spec.overrides, **over["model"]}, "train": {**defaults["train"], **over["train"]},
                  "task": {**defaults["task"], **over["task"]}}
        return run_config(data, spec.model, merged, seed=seed, epochs=epochs, name=f"{schema.name}-{spec.slug}")

    for spec in plan:  # fail on a bad option before the first hour of training, not after it
        make_config(spec, seed_base)
    result = reproduce.reproduce(plan_name, plan, data, list(range(seed_base, seed_base + seeds)),
                                 out / run_name, make_config, verbose=not quiet, echo=typer.echo, jobs=jobs)
    typer.echo(result["tables"])
    typer.echo(f"written to {out / run_name / 'tables.md'}")


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

"""`chronorec analyze ...`: the TIN paper's semantic-temporal correlation analysis (§2, §4.3) and
the gap distribution INTERPOS's rhythm buckets are cut from."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from chronorec.cli import app
from chronorec.errors import ChronorecError

analyze_app = typer.Typer(help="Analyses of prepared data and trained runs.", no_args_is_help=True)
app.add_typer(analyze_app, name="analyze")


@analyze_app.command(
    "correlation",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
def correlation(
    ctx: typer.Context,
    data: Path | None = typer.Option(None, "--data", help="Prepared CTR dataset folder (default: the runs' data)."),
    runs: list[Path] = typer.Option(
        [], "--runs",
        help="Run folders (or folders holding runs); `--runs a b c` and repeated `--runs` both work.",
    ),
    out: Path = typer.Option(..., "--out", help="Output folder for tables and figures."),
    split: str = typer.Option(
        "all", "--split", help="Labelled samples to measure on: all (train+valid+test), train, or e.g. train,valid."
    ),
    positions: int = typer.Option(10, "--positions", min=2, help="Positions 1..P (1 = most recent)."),
    top_categories: int = typer.Option(200, "--top-categories", min=1, help="Most frequent target categories."),
    min_samples: int = typer.Option(50, "--min-samples", min=1, help="Minimum samples per target category."),
    learned_on: str = typer.Option("all", "--learned-on", help="Average learned correlation over: all, positives."),
    heatmap_target: str | None = typer.Option(None, "--heatmap-category", help="Raw category for Fig. 1/3."),
    batch_size: int = typer.Option(1024, "--batch-size", min=1),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampled sequences (Fig. 7) and intervals."),
) -> None:
    """Ground-truth CTC (mutual information), each run's learned correlation (exp(attention logit) *
    ||representation||), their Pearson agreement per target category, and the paper's figures."""
    from chronorec.analysis.correlation import CorrelationOptions, run_correlation
    from chronorec.analysis.runs import find_runs

    extra = [a for a in ctx.args if a]
    if any(a.startswith("-") for a in extra):
        raise ChronorecError(f"unknown option(s): {' '.join(a for a in extra if a.startswith('-'))}")
    run_refs = find_runs([*runs, *map(Path, extra)]) if (runs or extra) else []
    if data is None:
        data = next((r.data_dir for r in run_refs if r.data_dir is not None), None)
        if data is None:
            raise ChronorecError("give --data PREPARED (no run names its prepared data)")
    splits = ["train", "valid", "test"] if split == "all" else [s.strip() for s in split.split(",") if s.strip()]
    if learned_on not in ("all", "positives"):
        raise ChronorecError(f"--learned-on must be 'all' or 'positives', not {learned_on!r}")
    on: Literal["all", "positives"] = "all" if learned_on == "all" else "positives"
    opts = CorrelationOptions(
        splits=splits, n_positions=positions, top_categories=top_categories, min_samples=min_samples,
        learned_on=on, batch_size=batch_size, heatmap_target=heatmap_target, seed=seed,
    )
    result = run_correlation(data, run_refs, out, opts)
    typer.echo(f"{len(result['targets'])} target categories, {result['n_samples']:,} samples "
               f"({'+'.join(splits)}); written to {out}")
    for name, s in result["models"].items():
        sh = s["share"]
        typer.echo(f"  {name:<24} strong {100 * sh['strong']:5.1f}%  medium {100 * sh['medium']:5.1f}%  "
                   f"poor {100 * sh['poor']:5.1f}%  undefined {s['counts']['undefined']}")


@analyze_app.command("gaps")
def gaps(
    data: Path = typer.Option(..., "--data", help="Prepared dataset folder (any protocol)."),
    out: Path = typer.Option(..., "--out", help="Output folder for gaps.json, gaps.md and gaps.png."),
    scale: float = typer.Option(0.2, "--scale", help="scaled_days: buckets per day, > 0 (model.rhythm_scale)."),
    cap: int = typer.Option(640, "--cap", min=0, help="scaled_days: largest bucket (model.rhythm_cap)."),
) -> None:
    """Gaps between consecutive interactions and how each rhythm bucketing rule (model.rhythm_bucket)
    splits them: buckets used, the largest bucket's share, entropy, sub-hour gaps lumped with days."""
    from chronorec.analysis.gaps import markdown, run_gaps

    summary = run_gaps(data, out, scale=scale, cap=cap)
    typer.echo(markdown(summary, summary["dataset"]), nl=False)
    typer.echo(f"written to {out}")

"""Compare next-item rankers user by user: metrics per run, seed means, and a paired bootstrap.

Each run is a file of one row per test target with columns ``user``, ``item``, ``rank`` (1 = top):
``chronorec predict --run RUN --split test --out F.parquet`` writes one, and so does RecBole through
``benchmarks/peers/recbole_train.py --ranks-out F.csv``. Runs are grouped (e.g. the seeds of one
library); every file must rank the same (user, item) targets, or ``--common-targets`` keeps the
ones all rank (RecBole's float32 timestamps reorder events under a minute apart, so its last event
differs from chronorec's for a few users; 4 of 943 on ml-100k).

Per group: each run's metric, and the mean ± std over its runs (the seed spread). Then every later
group against the first: the difference of the means, and a 95% interval from a paired bootstrap over
test users (each user's value averaged over the group's runs, users resampled with replacement, the
same resample for both groups). The interval says how much of a difference the test users alone can
move, the uncertainty a single test set adds on top of the seed spread; ``P(diff <= 0)`` is the share
of resamples in which the later group is not ahead. ``--strata FILE`` (columns ``user``, ``stratum``,
e.g. history-length bands) repeats the first metric's comparison within each stratum of users.

    /work/main/.venv/bin/python benchmarks/compare_ranks.py \\
        --group recbole=results/recbole-s2020.csv,results/recbole-s2021.csv \\
        --group chronorec=runs/s0.parquet,runs/s1.parquet,runs/s2.parquet [--metrics ndcg@10 hit@10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import polars as pl
import torch

from chronorec.metrics.ranking import row_gains

KEY = ("user", "item")


def read_ranks(path: Path) -> pl.DataFrame:
    """``user``, ``item`` (as strings) and ``rank`` of one run, sorted by (user, item); one-line errors."""
    if not path.is_file():
        raise SystemExit(f"error: {path}: no such file")
    try:
        df = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=0)
    except Exception as err:  # polars raises several types for unreadable files
        raise SystemExit(f"error: {path}: cannot read ranks ({type(err).__name__}: {err})") from None
    missing = [c for c in (*KEY, "rank") if c not in df.columns]
    if missing:
        raise SystemExit(f"error: {path}: missing column(s) {', '.join(missing)} (need user, item, rank)")
    df = df.select(pl.col("user").cast(pl.String), pl.col("item").cast(pl.String),
                   pl.col("rank").cast(pl.Int64, strict=False).alias("rank"))
    bad = df.with_row_index("row").filter(pl.col("rank").is_null() | (pl.col("rank") < 1))
    if bad.height:
        raise SystemExit(f"error: {path}: row {bad['row'][0]}: rank must be an integer >= 1")
    dup = df.filter(df.select(KEY).is_duplicated())
    if dup.height:
        raise SystemExit(f"error: {path}: target (user {dup['user'][0]}, item {dup['item'][0]}) appears twice")
    return df.sort(KEY)


def parse_group(text: str) -> tuple[str, list[Path]]:
    name, sep, files = text.partition("=")
    paths = [Path(f) for f in files.split(",") if f]
    if not sep or not name or not paths:
        raise SystemExit(f"error: --group {text!r}: expected NAME=FILE[,FILE...]")
    return name, paths


def parse_metric(text: str) -> tuple[str, int]:
    name, _, k = text.partition("@")
    if name not in ("hit", "ndcg", "mrr") or not k.isdigit():
        raise SystemExit(f"error: --metrics {text!r}: expected hit@K, ndcg@K or mrr@K")
    return name, int(k)


def compare(groups: dict[str, list[Path]], metrics: list[str], resamples: int, seed: int,
            common_targets: bool = False, strata: pl.DataFrame | None = None) -> dict:
    """Per-run metrics, group means and paired-bootstrap differences (see the module docstring).

    ``common_targets``: keep only the (user, item) targets every run ranks, instead of refusing runs
    that differ (e.g. RecBole stores timestamps as float32: 64-second steps at ml-100k's 1997-98 epoch
    seconds, 128 s at today's, so events that close may come out of order and make another event a user's last).
    ``strata`` (``user``, ``stratum``): the same means and differences within each stratum of users.
    """
    runs = {g: [read_ranks(f) for f in files] for g, files in groups.items()}
    first_name = next(iter(groups))
    first_file = groups[first_name][0]
    dropped: dict[str, int] = {}
    if common_targets:
        common = runs[first_name][0].select(KEY)
        for dfs in runs.values():
            for df in dfs:
                common = common.join(df.select(KEY), on=list(KEY), how="semi")
        if not common.height:
            raise SystemExit("error: the runs have no target in common")
        for g, files in groups.items():
            for i, f in enumerate(files):
                dropped[str(f)] = runs[g][i].height - common.height
                runs[g][i] = runs[g][i].join(common, on=list(KEY), how="semi").sort(KEY)
    targets = runs[first_name][0].select(KEY)
    for g, files in groups.items():
        for f, df in zip(files, runs[g], strict=True):
            if not df.select(KEY).equals(targets):
                n_diff = targets.join(df.select(KEY), on=list(KEY), how="anti").height
                raise SystemExit(f"error: {f}: ranks other targets than {first_file} "
                                 f"({df.height} rows, {n_diff} of {targets.height} targets of the first run missing)")
    n = targets.height
    out: dict = {"n_targets": n, "resamples": resamples, "dropped": dropped, "groups": {}, "differences": []}
    user_means: dict[str, dict[str, np.ndarray]] = {}
    for g, dfs in runs.items():
        ranks = [torch.tensor(df["rank"].to_numpy()) for df in dfs]
        row: dict = {"files": [str(f) for f in groups[g]]}
        user_means[g] = {}
        for m in metrics:
            name, k = parse_metric(m)
            per_run = np.stack([row_gains(r, name, k).numpy() for r in ranks])  # [runs, n]
            values = per_run.mean(axis=1)
            row[m] = {"runs": [round(float(v), 5) for v in values], "mean": float(values.mean()),
                      "std": float(statistics.stdev(values)) if len(values) > 1 else 0.0}
            user_means[g][m] = per_run.mean(axis=0)
        out["groups"][g] = row
    for g in list(runs)[1:]:
        for m in metrics:
            d = user_means[g][m] - user_means[first_name][m]  # [n] paired differences
            out["differences"].append({"metric": m, "group": g, "baseline": first_name,
                                       **_bootstrap(d, resamples, seed)})
    if strata is not None:
        out["by_stratum"] = _by_stratum(targets, strata, user_means, first_name, metrics, resamples, seed)
    return out


def _bootstrap(d: np.ndarray, resamples: int, seed: int) -> dict:
    """Mean of the paired differences ``d`` and its bootstrap interval. The resamples depend only on
    ``seed`` and ``d.size``, so every comparison of one call resamples the same users; they are drawn
    in blocks of about 4M indices, so memory stays flat in the number of users."""
    rng = np.random.default_rng(seed)
    boot = np.empty(resamples)
    step = max(1, (1 << 22) // max(d.size, 1))
    for i in range(0, resamples, step):
        b = min(step, resamples - i)
        boot[i : i + b] = d[rng.integers(0, d.size, size=(b, d.size))].mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return {"diff": float(d.mean()), "ci95": [float(lo), float(hi)], "p_not_ahead": float((boot <= 0).mean())}


def _by_stratum(targets: pl.DataFrame, strata: pl.DataFrame, user_means: dict[str, dict[str, np.ndarray]],
                first: str, metrics: list[str], resamples: int, seed: int) -> list[dict]:
    if {"user", "stratum"} - set(strata.columns):
        raise SystemExit("error: --strata needs columns user and stratum")
    label = targets.join(strata.select(pl.col("user").cast(pl.String), pl.col("stratum").cast(pl.String)),
                         on="user", how="left")["stratum"].fill_null("(none)").to_numpy()
    rows = []
    for s in sorted(set(label), key=_natural):
        sel = np.nonzero(label == s)[0]
        row: dict = {"stratum": s, "n_targets": int(sel.size), "means": {}, "differences": {}}
        for m in metrics:
            row["means"][m] = {g: float(v[m][sel].mean()) for g, v in user_means.items()}
            row["differences"][m] = {g: _bootstrap(v[m][sel] - user_means[first][m][sel], resamples, seed)
                                     for g, v in user_means.items() if g != first}
        rows.append(row)
    return rows


def _natural(label: str) -> tuple:
    """Sort key: labels by their first number (``"<=30"`` before ``"101-200"``), then as text."""
    digits = "".join(c if c.isdigit() else " " for c in label).split()
    return (int(digits[0]) if digits else float("inf"), label)


def render(res: dict, metrics: list[str]) -> str:
    lines = [f"{res['n_targets']} test targets; paired bootstrap over users, {res['resamples']} resamples"]
    if any(res["dropped"].values()):
        counts = sorted(set(res["dropped"].values()))
        lines.append(f"left out: targets not ranked by every run ({'/'.join(map(str, counts))} per run; "
                     "per file in --json)")
    lines.append("")
    lines.append("| group | runs | " + " | ".join(metrics) + " |")
    lines.append("|---|---|" + "---|" * len(metrics))
    for g, row in res["groups"].items():
        cells = [f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f} ({' / '.join(f'{v:.4f}' for v in row[m]['runs'])})"
                 for m in metrics]
        lines.append(f"| {g} | {len(row['files'])} | " + " | ".join(cells) + " |")
    if res["differences"]:
        lines += ["", "| metric | group − baseline | difference | 95% interval | P(diff <= 0) |", "|---|---|---|---|---|"]
        for d in res["differences"]:
            lo, hi = d["ci95"]
            lines.append(f"| {d['metric']} | {d['group']} − {d['baseline']} | {d['diff']:+.4f} | "
                         f"[{lo:+.4f}, {hi:+.4f}] | {d['p_not_ahead']:.3f} |")
    strata = res.get("by_stratum") or []
    if strata:
        m = metrics[0]
        names = list(strata[0]["means"][m])
        lines += ["", f"{m} by stratum (later groups: difference to {names[0]}, 95% interval)", "",
                  "| stratum | targets | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for row in strata:
            cells = [f"{row['means'][m][names[0]]:.4f}"]
            for g in names[1:]:
                d = row["differences"][m][g]
                cells.append(f"{row['means'][m][g]:.4f} ({d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}])")
            lines.append(f"| {row['stratum']} | {row['n_targets']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", action="append", required=True, metavar="NAME=FILE[,FILE...]",
                    help="one group of runs (repeatable); later groups are compared with the first")
    ap.add_argument("--metrics", nargs="+", default=["ndcg@10", "hit@10", "mrr@10"])
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--common-targets", action="store_true",
                    help="compare on the targets all runs rank (otherwise runs must rank the same ones)")
    ap.add_argument("--strata", type=Path, default=None,
                    help="CSV/Parquet with columns user, stratum: also compare within each stratum")
    ap.add_argument("--json", type=Path, default=None, help="also write the result as JSON")
    args = ap.parse_args(argv)
    groups = dict(parse_group(g) for g in args.group)
    if len(groups) != len(args.group):
        raise SystemExit("error: two --group options have the same name")
    for m in args.metrics:
        parse_metric(m)
    strata = None
    if args.strata is not None:
        if not args.strata.is_file():
            raise SystemExit(f"error: {args.strata}: no such file")
        strata = pl.read_parquet(args.strata) if args.strata.suffix == ".parquet" else pl.read_csv(args.strata)
    res = compare(groups, args.metrics, args.resamples, args.seed, args.common_targets, strata)
    print(render(res, args.metrics))
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())

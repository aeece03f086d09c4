"""Next-item training: chronorec SASRec / GRU4Rec / BERT4Rec beside RecBole 1.2.1, one run.

Per dataset (ml-100k from its atomic files; amazon-beauty from its line files for chronorec and
the same interactions as an atomic file for RecBole), the same leave-last-out split (last event
test, the one before valid, full ranking over all items), hidden 64, 2 layers, 2 heads (GRU4Rec:
2 GRU layers of 64 on both sides), max length 50, Adam 1e-3.

* chronorec: ``chronorec prepare --protocol next-item-last-out`` then ``chronorec train`` in a
  child per model, up to ``--epochs`` with early stopping (``--patience`` evaluations on valid
  NDCG@10). chronorec trains every position of a user's sequence at once (causal mask / cloze).
* RecBole: ``benchmarks/peers/recbole_train.py`` for ``--peer-epochs`` epochs (each epoch is
  ~2 min wall on an idle machine for SASRec on ml-100k, far more under load), at
  ``--peer-batch-size`` (default RecBole's 2048, the set-up the goal was stated in; chronorec's
  ``--batch-size`` gives like-for-like batches: a slower RecBole epoch, a smaller RecBole peak RSS;
  several values, e.g. ``--peer-batch-size 64 2048``, run RecBole once per value beside one chronorec run).
  ``--peer-epochs 0`` runs no peer and instead reads earlier runner results from
  ``--reuse-peers`` (``benchmarks/results/peers/train-<Model>.json``), flagged as not same-run.

Reported per (dataset, model, library): seconds per training epoch (wall; CPU: chronorec's
whole-process CPU / epochs, an upper bound including evaluation and start-up, RecBole's
training-loop CPU), time to best valid NDCG@10 (from the start of training), best epoch,
chronorec's time to reach RecBole's best valid NDCG@10 (equal-quality time),
epochs run, peak RSS of the child, test NDCG@10, and chronorec's valid NDCG@10 after the same
number of epochs as RecBole. Per-epoch times compare directly; test NDCG compares chronorec's
early-stopped model with RecBole's N-epoch model, which is not a like-for-like accuracy claim.

Accuracy at convergence: ``--seeds N`` trains each chronorec model again with seeds ``--seed + 1
.. --seed + N - 1`` (accuracy only; their times are not used) and reports test NDCG@10 mean ± std;
``--peer-reference FILE ...`` adds rows from earlier ``recbole_train.py`` results (one JSON line
each, e.g. a RecBole run to convergence, hours per model) for the matching dataset and model,
flagged as earlier runs, so the table sets converged accuracy beside same-run speed; several files
of one dataset and model (seeds) add a pooled row with their test NDCG@10 mean ± std.

User by user: ``--paired`` writes every run's test ranks (``chronorec predict``; RecBole's runner
``--ranks-out``) under ``--work``/ranks and compares chronorec's seeds with RecBole's runs on the targets
both rank (``benchmarks/compare_ranks.py``): the difference of the mean test NDCG@10, HIT@10 and MRR@10
with a 95% paired-bootstrap interval over test users and P(diff <= 0), on chronorec's row. RecBole's
side is the ``--peer-reference`` runs that have ranks (the file their result names as ``ranks_out``, or
``<result stem>-ranks.csv`` beside it), else the same-run RecBole model.

    /work/main/.venv/bin/python benchmarks/bench_nextitem.py [--datasets ml-100k] [--epochs 50] \
        [--seeds 3] [--peer-reference recbole-SASRec-converged.json] [--paired]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CHRONOREC,
    RESULTS,
    add_seed_metric,
    data_root,
    ensure_atomic,
    last_json_line,
    machine_info,
    markdown_table,
    peer_command,
    ratio,
    run_json,
)

MODELS = {  # chronorec name -> (RecBole name, chronorec overrides matching the RecBole runner)
    "sasrec": ("SASRec", ["model.n_layers=2", "model.heads=2"]),
    "gru4rec": ("GRU4Rec", ["model.hidden=64", "model.n_layers=2"]),
    "bert4rec": ("BERT4Rec", ["model.n_layers=2", "model.heads=2"]),
}
COLUMNS = [
    ("dataset", "dataset"), ("model", "model"), ("library", "library"),
    ("s_per_epoch", "s/epoch wall"), ("cpu_s_per_epoch", "CPU s/epoch"),
    ("epochs_run", "epochs run"), ("best_epoch", "best epoch"),
    ("time_to_best_s", "time to best s"), ("best_valid_ndcg10", "best valid NDCG@10"),
    ("time_to_peer_valid_s", "time to RecBole's best valid s"), ("peak_rss_mb", "peak RSS MB"),
    ("test_ndcg10", "test NDCG@10"), ("test_ndcg10_mean_std", "test NDCG@10, seeds"),
    ("valid_ndcg10_at_peer_epochs", "valid NDCG@10 at peer's N"),
    ("paired_ndcg10", "test NDCG@10 − RecBole's [95% CI], P(≤ 0)"),
    ("s_per_epoch_x", "epoch time ×"), ("cpu_s_per_epoch_x", "CPU/epoch ×"),
    ("peak_rss_mb_x", "RSS ×"), ("load", "load 1m"), ("note", "note"),
]


def sources(name: str, atomic_root: Path) -> tuple[list[Any], Path]:
    """chronorec prepare source arguments and RecBole's --data-path for a dataset."""
    root = data_root()
    if (root / name / f"{name}.inter").exists():
        return ["--source", "atomic", "--path", root / name], root
    ensure_atomic(name, atomic_root)  # RecBole reads the same interactions as an atomic file
    return ["--source", "lines", "--path", root / name / "raw"], atomic_root


def prepare(name: str, src: list[Any], out: Path, timeout: float) -> None:
    r = run_json([CHRONOREC, "prepare", *src, "--protocol", "next-item-last-out", "--out", out,
                  "--force"], timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"chronorec prepare {name} failed:\n{r.stderr_tail}")


def chronorec_run(dataset: str, prepared: Path, model: str, args: argparse.Namespace) -> dict[str, Any]:
    runs = args.work / "runs"
    load = os.getloadavg()[0]
    sets = [f"model.dim={args.dim}", f"model.max_len={args.max_len}",
            f"train.batch_size={args.batch_size}", f"train.threads={args.threads}",
            f"train.patience={args.patience}", "train.lr=0.001", *MODELS[model][1], *args.sets]
    cmd = [CHRONOREC, "train", "--data", prepared, "--model", model, "--epochs", args.epochs,
           "--seed", args.seed, "--out", runs, "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    before = set(runs.rglob("metrics.json")) if runs.exists() else set()
    r = run_json(cmd, timeout=args.timeout, threads=args.threads)
    row: dict[str, Any] = {"dataset": dataset, "model": model, "library": "chronorec", "load": load,
                           "peak_rss_mb": r.peak_rss_mb, "process_wall_s": r.wall_s,
                           "process_cpu_s": r.cpu_s}
    if r.returncode != 0:
        return {**row, "note": "failed: " + r.stderr_tail[-300:]}
    run_dir = sorted(set(runs.rglob("metrics.json")) - before, key=lambda p: p.stat().st_mtime)[-1].parent
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    valid = [e for e in evals if e.get("split") == "valid"]
    epochs_run = metrics.get("epochs") or len(valid)
    best = metrics.get("best_epoch")
    at_best = [e for e in valid if e.get("epoch") == best]
    at_n = [e for e in valid if e.get("epoch") == args.peer_epochs_for_compare]
    target = args.peer_valid_for_compare  # RecBole's best valid NDCG@10, if known
    reached = [e for e in valid if target is not None and e["metrics"].get("ndcg@10", 0.0) >= target]
    row.update({
        "epochs_run": epochs_run, "best_epoch": best,
        "s_per_epoch": metrics["train_seconds"] / epochs_run if epochs_run else None,
        "cpu_s_per_epoch": r.cpu_s / epochs_run if epochs_run else None,
        "time_to_best_s": at_best[0]["elapsed"] if at_best else None,
        "test_ndcg10": metrics.get("test", {}).get("ndcg@10"),
        "valid_ndcg10_at_peer_epochs": at_n[0]["metrics"].get("ndcg@10") if at_n else None,
        "best_valid_ndcg10": metrics.get("valid", {}).get("ndcg@10"),
        "time_to_peer_valid_s": reached[0]["elapsed"] if reached else None,
        "run_dir": str(run_dir), "note": f"{args.patience}-eval patience, ≤ {args.epochs} epochs",
    })
    if args.paired:
        out = args.work / "ranks" / f"{dataset}-{model}-seed{args.seed}-{args.stamp}.parquet"
        p = run_json([CHRONOREC, "predict", "--run", run_dir, "--split", "test", "--out", out],
                     timeout=args.timeout, threads=args.threads)
        if p.returncode == 0:
            row["ranks"] = str(out)
        else:  # the timing row stands; the comparison says what is missing
            row["paired_note"] = f"chronorec predict failed: {p.stderr_tail[-300:]}"
    return row


def seed_repeats(dataset: str, prepared: Path, model: str, row: dict[str, Any],
                 args: argparse.Namespace) -> None:
    """Train ``model`` again with ``args.seeds - 1`` further seeds; add test NDCG@10 per seed and mean ± std."""
    later = [chronorec_run(dataset, prepared, model, argparse.Namespace(**{**vars(args), "seed": args.seed + i}))
             for i in range(1, args.seeds)]
    add_seed_metric(row, later, "test_ndcg10")
    row["seed_run_dirs"] = [r.get("run_dir") or r.get("note") for r in later]
    if args.paired:
        row["seed_ranks"] = [r["ranks"] for r in later if "ranks" in r]


def reference_rows(dataset: str, model: str, paths: list[Path]) -> list[dict[str, Any]]:
    """Rows of earlier RecBole results (``recbole_train.py`` output files) for this dataset and model."""
    rows = []
    for path in paths:
        res = last_json_line(path.read_text())
        if res is None:
            raise SystemExit(f"--peer-reference {path}: no JSON result line in the file")
        if res.get("dataset") == dataset and res.get("model") == MODELS[model][0]:
            rows.append(recbole_row(dataset, model, res, None, None,
                                    f"EARLIER run ({path.name}), {len(res.get('train_s_epochs') or [])} epochs"
                                    + (f", seed {res['seed']}" if "seed" in res else "")))
            ranks = Path(res["ranks_out"]) if res.get("ranks_out") else path.with_name(f"{path.stem}-ranks.csv")
            if ranks.is_file():
                rows[-1]["ranks"] = str(ranks)
    if len(rows) > 1:  # several seeds of the same run: their test NDCG@10 as mean ± std, as chronorec's seeds
        pooled = {"dataset": dataset, "model": model, "library": "RecBole 1.2.1",
                  "test_ndcg10": rows[0]["test_ndcg10"], "note": f"EARLIER runs above, {len(rows)} seeds pooled"}
        add_seed_metric(pooled, rows[1:], "test_ndcg10")
        pooled["test_ndcg10"] = None  # each seed's figure is in its own row
        rows.append(pooled)
    return rows


def recbole_row(dataset: str, model: str, res: dict[str, Any], peak_rss: float | None,
                load: float | None, note: str) -> dict[str, Any]:
    epochs = len(res.get("train_s_epochs") or []) or res.get("epochs")
    return {"dataset": dataset, "model": model, "library": "RecBole 1.2.1",
            "s_per_epoch": res.get("train_s_per_epoch"),
            "cpu_s_per_epoch": res.get("train_cpu_s_per_epoch"), "epochs_run": epochs,
            "best_epoch": None if res.get("best_epoch") is None else res["best_epoch"] + 1,
            "time_to_best_s": res.get("time_to_best_s"),
            "best_valid_ndcg10": res.get("best_valid_ndcg10"),
            "peak_rss_mb": peak_rss or res.get("peak_rss_mb"),
            "test_ndcg10": res.get("test_ndcg10"),
            "load": load if load is not None else res.get("loadavg_1m_end"), "note": note}


def recbole_run(dataset: str, data_path: Path, model: str, args: argparse.Namespace,
                batch_size: int) -> dict[str, Any] | None:
    rb_model = MODELS[model][0]
    if args.peer_epochs > 0:
        load = os.getloadavg()[0]
        ranks = args.work / "ranks" / f"{dataset}-{rb_model}-recbole-b{batch_size}-{args.stamp}.csv"
        r = run_json(peer_command("recbole", "recbole_train.py", "--data-path", data_path,
                                  "--dataset", dataset, "--model", rb_model, "--epochs",
                                  args.peer_epochs, "--max-len", args.max_len, "--threads",
                                  args.threads, "--batch-size", batch_size,
                                  *(["--ranks-out", ranks] if args.paired else [])),
                     timeout=args.timeout, threads=args.threads)
        if not r.ok:
            return {"dataset": dataset, "model": model, "library": "RecBole 1.2.1", "load": load,
                    "note": "failed: " + r.stderr_tail[-300:]}
        row = recbole_row(dataset, model, r.result or {}, r.peak_rss_mb, load,
                          f"same run, {args.peer_epochs} epoch(s), batch {batch_size}")
        if args.paired:
            row["ranks"] = str(ranks)
        return row
    if args.reuse_peers is None:
        return None
    path = args.reuse_peers / f"train-{rb_model}.json"
    if not path.exists():
        return {"dataset": dataset, "model": model, "library": "RecBole 1.2.1",
                "note": f"no earlier result ({path.name} missing)"}
    res = json.loads(path.read_text())
    if res.get("dataset") != dataset:
        return None
    return recbole_row(dataset, model, res, None, None,
                       f"EARLIER run ({path.name}, load at its end), {res.get('epochs')} epoch(s)")


def paired_comparison(ours: dict[str, Any], peer: dict[str, Any] | None,
                      references: list[dict[str, Any]]) -> None:
    """Set chronorec's seeds against RecBole's runs user by user (``compare_ranks.compare``), on ``ours``.

    RecBole's side: the reference runs that have ranks (e.g. runs to convergence), else the same-run model.
    """
    from compare_ranks import compare  # imports torch: only when asked for

    chronorec = [Path(f) for f in [ours.get("ranks"), *ours.get("seed_ranks", [])] if f]
    recbole = [Path(r["ranks"]) for r in references if r.get("ranks")]
    side = "reference runs"  # converged or not: the reference files say which
    if not recbole and peer is not None and peer.get("ranks"):
        recbole, side = [Path(peer["ranks"])], "same-run model"
    if not chronorec or not recbole:
        ours.setdefault("paired_note", "no RecBole ranks to compare with" if chronorec else "no chronorec ranks")
        return
    metrics = ["ndcg@10", "hit@10", "mrr@10"]
    res = compare({"RecBole": recbole, "chronorec": chronorec}, metrics, resamples=10_000, seed=0,
                  common_targets=True)
    diffs = {d["metric"]: d for d in res["differences"]}
    for m in metrics:
        key = m.replace("@", "")
        ours[f"paired_{key}_diff"] = round(diffs[m]["diff"], 5)
        ours[f"paired_{key}_ci95"] = [round(x, 5) for x in diffs[m]["ci95"]]
        ours[f"paired_{key}_p_not_ahead"] = round(diffs[m]["p_not_ahead"], 3)
    d = diffs["ndcg@10"]
    ours["paired_ndcg10"] = f"{d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}], {d['p_not_ahead']:.2f}"
    ours["paired_vs"] = {"recbole": side, "recbole_runs": len(recbole), "chronorec_runs": len(chronorec),
                         "n_targets": res["n_targets"], "means": {g: res["groups"][g]["ndcg@10"]["mean"]
                                                                  for g in res["groups"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["ml-100k"])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--epochs", type=int, default=50, help="chronorec epoch cap (early stopping)")
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--peer-epochs", type=int, default=2, help="RecBole epochs (0 = reuse earlier)")
    ap.add_argument("--reuse-peers", type=Path, default=None,
                    help="with --peer-epochs 0: folder of earlier recbole_train results")
    ap.add_argument("--batch-size", type=int, default=256, help="chronorec sequences per batch")
    ap.add_argument("--peer-batch-size", type=int, nargs="+", default=[2048],
                    help="RecBole train_batch_size (default RecBole's own, 2048: its epoch is fastest there and "
                         "its memory largest; pass chronorec's --batch-size for a like-for-like batch); several "
                         "values run RecBole once per value, each row with its ratios to the one chronorec run")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="extra chronorec override for every chronorec run, e.g. task.loss_precision=bf16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1,
                    help="chronorec test NDCG@10 over this many seeds (--seed, --seed+1, ...), accuracy only")
    ap.add_argument("--peer-reference", type=Path, nargs="*", default=[], metavar="FILE",
                    help="earlier recbole_train.py results (e.g. run to convergence) to add as reference rows")
    ap.add_argument("--paired", action="store_true",
                    help="write every run's test ranks and compare chronorec with RecBole user by user")
    ap.add_argument("--timeout", type=float, default=4 * 3600.0, help="seconds per child run")
    ap.add_argument("--atomic-root", type=Path, default=RESULTS / "atomic")
    ap.add_argument("--work", type=Path, default=RESULTS / "nextitem-bench")
    args = ap.parse_args()
    if args.peer_epochs == 0 and args.reuse_peers is None:
        args.reuse_peers = RESULTS / "peers"

    stamp = args.stamp = time.strftime("%Y%m%d-%H%M%S")
    info_start = machine_info()
    rows: list[dict[str, Any]] = []
    for dataset in args.datasets:
        src, rb_path = sources(dataset, args.atomic_root)
        prepared = args.work / f"prepared-{dataset}"
        prepare(dataset, src, prepared, args.timeout)
        for model in args.models:
            batches = args.peer_batch_size if args.peer_epochs > 0 else args.peer_batch_size[:1]  # reuse: one file
            peers = [recbole_run(dataset, rb_path, model, args, b) for b in batches]
            peer = peers[0]  # the first batch size: its epochs and valid score for time-to-target, its ranks
            args.peer_epochs_for_compare = (peer or {}).get("epochs_run") or args.peer_epochs
            args.peer_valid_for_compare = (peer or {}).get("best_valid_ndcg10")
            ours = chronorec_run(dataset, prepared, model, args)
            if args.seeds > 1:
                seed_repeats(dataset, prepared, model, ours, args)
            references = reference_rows(dataset, model, args.peer_reference)
            if args.paired:
                paired_comparison(ours, peer, references)
            rows.append(ours)
            for p in peers:
                if p is None:
                    continue
                for key in ("s_per_epoch", "cpu_s_per_epoch", "peak_rss_mb"):
                    p[key + "_x"] = ratio(ours.get(key), p.get(key), False)
                rows.append(p)
            rows.extend(references)
            print(f"{dataset} {model}: done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
            _write(stamp, args, info_start, rows)

    table = _write(stamp, args, info_start, rows)
    print(table)
    print(f"\nLoad 1m at start {info_start['loadavg']}, at end {[round(x, 2) for x in os.getloadavg()]}"
          ". Per-epoch times compare directly; test NDCG@10 compares chronorec's early-stopped "
          "model with RecBole's N-epoch model. Ratios on the RecBole rows: chronorec better by ×.")


def _write(stamp: str, args: argparse.Namespace, info_start: dict[str, Any],
           rows: list[dict[str, Any]]) -> str:
    """(Re)write the JSON after every model so a long run keeps what it has measured."""
    for row in rows:
        if isinstance(row.get("load"), float):
            row["load"] = round(row["load"], 1)
    table = markdown_table(rows, [c for c, _ in COLUMNS], [h for _, h in COLUMNS])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"nextitem-{stamp}.json").write_text(json.dumps(
        {"name": "nextitem", "args": vars(args), "machine_start": info_start,
         "machine_now": machine_info(), "rows": rows, "table": table},
        indent=2, default=str) + "\n")
    return table


if __name__ == "__main__":
    main()

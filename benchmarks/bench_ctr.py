"""CTR training: chronorec DIN beside DeepCTR-Torch 0.3.0, torch-rechub 0.9.0 and FuxiCTR 2.3.10 DIN.

Steps (one after another, same threads, load recorded before each child):

1. ``chronorec prepare --source atomic --path <data>/ml-100k --protocol ctr-leave-one-out
   --max-history 50`` (194,342 training samples = 2 * sum(n_u - 3)).
2. ``export_ctr.py``: the SAME samples with histories materialised as Parquet lists, for the peers
   only (chronorec trains from its offsets). ``--peer-train-rows N`` exports a seeded random subset
   of N training rows instead (valid/test complete): the peers then train one epoch on N rows, which
   measures their throughput within a bounded run time but makes their AUC not comparable
   (it is reported, flagged as such).
3. ``chronorec train --model din`` (64-d item + category embeddings, attention MLP 80-40 sigmoid,
   head 80-40, Adam 1e-3) with batch 1024, length bucketing, ``--epochs``, in the form the peers
   implement: the DIN paper's unnormalised attention weights (``model.weight_norm=none``; chronorec's
   default is the TIN code's scaled softmax). Once with a sigmoid tower (DeepCTR-Torch and FuxiCTR
   train that) and once with a Dice tower (torch-rechub's DNN is always Dice); each peer is compared
   with the chronorec row of its own tower. ``--bf16`` adds a row per tower with ``model.bf16``
   (the activation unit's GEMMs take bfloat16 operands, fp32 elsewhere; no peer has it) and a
   second throughput ratio of each peer against the bf16 row of its tower.
4. ``peers/deepctr_din.py``, ``peers/rechub_din.py`` and ``peers/fuxictr_din.py`` on the export with
   the same set-up (one run, one after another).

Per library: training samples/s (training rows x epochs / training wall time, evaluation excluded),
CPU s per 1k training samples (chronorec: child process CPU over the whole run, so it includes
preparation-free start-up and evaluation, an upper bound; peers: their training-loop CPU),
peak RSS of the child, test AUC and log loss (best-on-valid). Ratios: chronorec / peer
(throughput), peer / chronorec (CPU per sample, RSS). Goal: >= 5x peers' throughput at equal or
better AUC.

Every library keeps its best epoch on valid AUC and is tested there. ``--seeds N`` repeats the
round-1 runs (DIN and peers, ``--epochs`` each) with N - 1 further seeds, accuracy only, and gives
test AUC as mean ± std.

    /work/main/.venv/bin/python benchmarks/bench_ctr.py [--epochs 1] [--peer-train-rows 0]
    /work/main/.venv/bin/python benchmarks/bench_ctr.py --epochs 8 --bf16 --rounds 3 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CHRONOREC,
    RESULTS,
    add_seed_metric,
    data_root,
    machine_info,
    markdown_table,
    peer_command,
    ratio,
    run_json,
)
from export_ctr import export

PEER_RUNNERS = {"deepctr-torch": ("deepctr", "deepctr_din.py", "--activation"),
                "torch-rechub": ("rechub", "rechub_din.py", "--att-activation"),
                "fuxictr": ("fuxictr", "fuxictr_din.py", "--activation")}
# the MLP tower's activation each peer trains with: torch-rechub's DNN is always Dice (a library
# constraint); the others use sigmoid in both the attention MLP and the tower, as chronorec does
PEER_TOWER = {"deepctr-torch": "sigmoid", "torch-rechub": "dice", "fuxictr": "sigmoid"}
# chronorec DIN in the form all three peers implement: the DIN paper's unnormalised attention
# weights (chronorec's default is the TIN code's scaled softmax, model.weight_norm=softmax),
# and their early selection: the best epoch on valid AUC (chronorec's default is valid GAUC)
PEER_FORM = ("model.weight_norm=none", "task.select_metric=auc")
COLUMNS = [
    ("library", "library"),
    ("train_rows", "train rows"),
    ("samples_per_s", "train samples/s"),
    ("cpu_s_per_1k", "CPU s / 1k samples"),
    ("peak_rss_mb", "peak RSS MB"),
    ("test_auc", "test AUC"),
    ("test_logloss", "test logloss"),
    ("test_auc_mean_std", "test AUC, seeds"),
    ("samples_per_s_x", "throughput ×"),
    ("samples_per_s_bf16_x", "throughput × (bf16)"),
    ("cpu_s_per_1k_x", "CPU/sample ×"),
    ("peak_rss_mb_x", "RSS ×"),
    ("load", "load 1m"),
]


def chronorec_prepare(out: Path, max_history: int, timeout: float) -> dict[str, Any]:
    load = os.getloadavg()[0]
    r = run_json([CHRONOREC, "prepare", "--source", "atomic", "--path", data_root() / "ml-100k",
                  "--protocol", "ctr-leave-one-out", "--max-history", max_history, "--out", out,
                  "--force"], timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"chronorec prepare failed:\n{r.stderr_tail}")
    train = re.search(r"train\s+([\d,]+) samples", r.stdout_tail)
    return {"wall_s": r.wall_s, "cpu_s": r.cpu_s, "peak_rss_mb": r.peak_rss_mb, "load": load,
            "train_samples": int(train.group(1).replace(",", "")) if train else None}


def chronorec_train(prepared: Path, runs: Path, args: argparse.Namespace, model: str = "din",
                    sets: Sequence[str] = (), label: str | None = None) -> dict[str, Any]:
    """Train a chronorec CTR model in a child (``sets``: extra ``--set`` overrides); read its metrics.json."""
    load = os.getloadavg()[0]
    cmd = [CHRONOREC, "train", "--data", prepared, "--model", model, "--epochs", args.epochs,
           "--seed", args.seed, "--out", runs, "--set", "train.batch_size=1024",
           "--set", "train.bucket=true", "--set", f"train.threads={args.threads}",
           "--set", "train.lr=0.001", "--quiet"]
    for kv in sets:
        cmd += ["--set", kv]
    before = set(runs.rglob("metrics.json")) if runs.exists() else set()
    r = run_json(cmd, timeout=args.timeout, threads=args.threads)
    if r.returncode != 0:
        raise RuntimeError(f"chronorec train failed:\n{r.stderr_tail}")
    new = sorted(set(runs.rglob("metrics.json")) - before, key=lambda p: p.stat().st_mtime)
    metrics = json.loads(new[-1].read_text())
    test = metrics.get("test", {})
    sps = metrics.get("samples_per_second")
    return {"library": label or f"chronorec {model} (no peer)", "model": model, "sets": list(sets),
            "samples_per_s": sps, "train_seconds": metrics.get("train_seconds"),
            "process_wall_s": r.wall_s, "process_cpu_s": r.cpu_s, "peak_rss_mb": r.peak_rss_mb,
            "test_auc": test.get("auc"), "test_logloss": test.get("logloss"),
            "best_epoch": metrics.get("best_epoch"), "run_dir": str(new[-1].parent), "load": load,
            "metrics": metrics}


def _run_args(args: argparse.Namespace, epochs: int, seed: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "epochs": epochs, "seed": args.seed if seed is None else seed})


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def peer_train(label: str, export_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    venv, script, act_flag = PEER_RUNNERS[label]
    load = os.getloadavg()[0]
    cmd = peer_command(venv, script, "--data", export_dir, "--epochs", args.epochs,
                       "--max-len", args.max_history, "--batch-size", 1024, "--lr", 1e-3,
                       "--emb-dim", 64, "--att-hidden", "80,40", "--dnn-hidden", "80,40",
                       act_flag, "sigmoid", "--threads", args.threads, "--seed", args.seed)
    r = run_json(cmd, timeout=args.timeout, threads=args.threads)
    if not r.ok:
        return {"library": label, "error": r.stderr_tail[-1500:], "load": load}
    res = r.result or {}
    return {"library": label, "samples_per_s": res.get("train_samples_per_s"),
            "train_cpu_s": sum(res.get("train_cpu_s_epochs") or [0.0]),
            "train_rows": res.get("train_samples"), "process_wall_s": r.wall_s,
            "process_cpu_s": r.cpu_s, "peak_rss_mb": r.peak_rss_mb, "test_auc": res.get("test_auc"),
            "test_logloss": res.get("test_logloss"), "load": load, "runner": res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-history", type=int, default=50)
    ap.add_argument("--peer-train-rows", type=int, default=0,
                    help="peers train on a random subset of N rows (0 = all; throughput only)")
    ap.add_argument("--peers", nargs="*", default=list(PEER_RUNNERS), choices=list(PEER_RUNNERS))
    ap.add_argument("--extra-models", nargs="*", default=[],
                    help="further chronorec CTR models to time (e.g. tin; no peer counterpart)")
    ap.add_argument("--bf16", action="store_true",
                    help="also time chronorec DIN with its opt-in bf16 GEMM operands in the activation unit "
                         "(model.bf16), each tower, and give the peers' throughput ratios against those rows too")
    ap.add_argument("--rounds", type=int, default=1,
                    help="time chronorec DIN and the peers this many rounds, one after another; rounds after "
                         "the first train --round-epochs; samples/s and ratios are medians over rounds, each "
                         "ratio pairing runs of one round")
    ap.add_argument("--round-epochs", type=int, default=1, help="epochs per run in rounds after the first")
    ap.add_argument("--seeds", type=int, default=1,
                    help="test AUC over this many seeds (--seed, --seed+1, ...): after the timed rounds, DIN "
                         "and each peer train --epochs again with every further seed (accuracy only, not timed)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per child run")
    ap.add_argument("--work", type=Path, default=RESULTS / "ctr-bench")
    args = ap.parse_args()

    stamp = time.strftime("%Y%m%d-%H%M%S")
    info_start = machine_info()
    prepared, export_dir = args.work / "prepared-ml-100k", args.work / "export-ml-100k"
    prep = chronorec_prepare(prepared, args.max_history, args.timeout)
    print(f"prepared: {prep}", file=sys.stderr)
    meta = export(prepared, export_dir, train_rows=args.peer_train_rows, seed=args.seed)
    print(f"exported: {meta}", file=sys.stderr)

    def ours_row(model: str, sets: Sequence[str], label: str, epochs: int, seed: int | None = None) -> dict[str, Any]:
        row = chronorec_train(prepared, args.work / "runs", _run_args(args, epochs, seed), model, sets, label)
        row["train_rows"] = prep["train_samples"]
        row["cpu_s_per_1k"] = 1000.0 * row["process_cpu_s"] / (prep["train_samples"] * epochs)
        print(f"{label}: {row['samples_per_s']} samples/s", file=sys.stderr)
        return row

    def peer_row(label: str, epochs: int, seed: int | None = None) -> dict[str, Any]:
        peer = peer_train(label, export_dir, _run_args(args, epochs, seed))
        if "error" not in peer:
            peer["cpu_s_per_1k"] = 1000.0 * peer["train_cpu_s"] / (peer["train_rows"] * epochs)
        print(f"{label}: {peer.get('samples_per_s')} samples/s", file=sys.stderr)
        return peer

    towers = ["sigmoid", *sorted({PEER_TOWER[p] for p in args.peers} - {"sigmoid"})]
    variants = [(t, False) for t in towers] + ([(t, True) for t in towers] if args.bf16 else [])

    def din_round(epochs: int, seed: int | None = None) -> tuple[dict[tuple[str, bool], dict[str, Any]],
                                                                 dict[str, dict[str, Any]]]:
        """chronorec DIN in every variant, then each peer: one round, close together in time."""
        ours = {(t, bf16): ours_row("din", [*PEER_FORM, f"model.activation={t}", *(["model.bf16=true"] if bf16 else [])],
                                    f"chronorec DIN ({t} tower{', model.bf16' if bf16 else ''})", epochs, seed)
                for t, bf16 in variants}
        return ours, {label: peer_row(label, epochs, seed) for label in args.peers}

    # this VM's speed drifts by up to 2x over minutes, so a throughput ratio pairs runs of the same
    # round; with --rounds > 1 the table gives medians over rounds (AUC and memory: round 1)
    rounds = [din_round(args.epochs)]
    extras = [ours_row(model, [], f"chronorec {model} (no peer)", args.epochs) for model in args.extra_models]
    rounds += [din_round(args.round_epochs) for _ in range(args.rounds - 1)]
    ours, peers = rounds[0]
    # accuracy over seeds: the same runs as round 1 with further seeds (their speed is not used)
    seeded = [din_round(args.epochs, args.seed + i) for i in range(1, args.seeds)]
    for key, row in ours.items():
        add_seed_metric(row, [r[0][key] for r in seeded], "test_auc")
    for label, row in peers.items():
        add_seed_metric(row, [r[1][label] for r in seeded], "test_auc")
    for key, row in ours.items():
        row["samples_per_s_rounds"] = [r[0][key]["samples_per_s"] for r in rounds]
        row["samples_per_s"] = _median(row["samples_per_s_rounds"])
    for label, peer in peers.items():
        tower = PEER_TOWER[label]
        peer["compared_with"] = ours[(tower, False)]["library"]
        if "error" in peer:
            continue
        peer["samples_per_s_rounds"] = [r[1][label].get("samples_per_s") for r in rounds]
        peer["samples_per_s"] = _median(peer["samples_per_s_rounds"])
        for key, higher in (("cpu_s_per_1k", False), ("peak_rss_mb", False)):
            peer[key + "_x"] = ratio(ours[(tower, False)].get(key), peer.get(key), higher)
        for bf16, col in ((False, "samples_per_s_x"), (True, "samples_per_s_bf16_x")):
            if (tower, bf16) in ours:
                per_round = [ratio(r[0][(tower, bf16)].get("samples_per_s"), r[1][label].get("samples_per_s"), True)
                             for r in rounds]
                peer[col + "_rounds"] = per_round
                peer[col] = _median(per_round)
    rows = [*ours.values(), *extras, *peers.values()]
    for row in rows:
        row["load"] = round(row["load"], 1)
    table = markdown_table(rows, [c for c, _ in COLUMNS], [h for _, h in COLUMNS])
    notes = [f"ml-100k ctr-leave-one-out, max history 50, mean train history "
             f"{meta['mean_hist_len']['train']:.1f}; {args.epochs} epoch(s), batch 1024, "
             f"{args.threads} threads. chronorec DIN in the peers' form ({', '.join(PEER_FORM)}); "
             "ratios: a peer vs the chronorec row with its tower activation (fp32; '(bf16)': the model.bf16 row) "
             f"({', '.join(f'{p}: {t}' for p, t in PEER_TOWER.items())}; > 1 = chronorec better).",
             f"Load 1m at start {info_start['loadavg']}, at end {[round(x, 2) for x in os.getloadavg()]}."]
    if args.rounds > 1:
        spread = "; ".join(f"{p['library']}: " + ", ".join(f"{x:.2f}" for x in p.get("samples_per_s_x_rounds") or [] if x)
                           + (" (bf16: " + ", ".join(f"{x:.2f}" for x in p["samples_per_s_bf16_x_rounds"] if x) + ")"
                              if p.get("samples_per_s_bf16_x_rounds") else "")
                           for p in peers.values() if "error" not in p)
        notes.append(f"{args.rounds} rounds (round 1: {args.epochs} epoch(s), the others {args.round_epochs}); DIN "
                     f"samples/s and throughput x are medians over rounds; per-round ratios: {spread}. AUC, "
                     "logloss, CPU and memory: round 1.")
    if args.seeds > 1:
        notes.append(f"test AUC, seeds: mean ± sample std over seeds {args.seed}..{args.seed + args.seeds - 1}, "
                     f"each {args.epochs} epoch(s) and tested at its best epoch on valid AUC (round 1 is the first seed).")
    if args.peer_train_rows > 0:
        notes.append(f"Peers trained on a random subset of {args.peer_train_rows:,} training rows "
                     "(throughput only): their AUC/logloss are NOT comparable with chronorec's.")
    notes.append("chronorec CPU s / 1k samples is the whole train process (start-up and "
                 "evaluation included); the peers' is their training loop only.")
    print(table)
    print("\n" + "\n".join(notes))
    out = RESULTS / f"ctr-{stamp}.json"
    out.write_text(json.dumps({"name": "ctr", "args": vars(args), "machine_start": info_start,
                               "machine_end": machine_info(), "prepare": prep, "export": meta,
                               "rows": rows, "table": table, "notes": notes},
                              indent=2, default=str) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""This machine's measured limits (torch, N threads) and how close chronorec's CTR training gets.

Measured (best of ``--repeats`` timed runs after a warm-up, so the figure is the least-disturbed one
on a shared machine; the 1-minute load average is recorded beside each):

* fp32 matmul GFLOP/s for n = 512, 1024, 2048 (2 n^3 FLOPs per ``a @ b``);
* bf16 matmul GFLOP/s, same sizes;
* memory copy bandwidth GB/s: ``x.clone()`` of a 256 MiB fp32 tensor, counting read + write.

Analytic per-sample cost of one training step (forward + backward = 3 x forward FLOPs) at the CTR
benchmark's mean history length L, D = 128 (64-d item + 64-d category embeddings):

* DIN (as chronorec computes it): the activation unit's first layer split algebraically, so the
  target part ``(W1+W3) q`` is paid once per sample, the key part ``(W2-W3) k`` once per distinct
  item in the batch (<= n_items / batch per sample), and ``W4 (q*k)`` plus the 80 -> 40 -> 1 layers
  per position; masked softmax and weighted pooling per position; the D x D projection of u; the head
  [u', v, u'*v] (3D) -> 80 -> 40 -> 1. The unit runs blocked (``layers/activation_pool.py``): the
  per-position intermediates stay in cache except the hidden activations (80 + 40 floats), written
  once in the forward and read once in the backward.
* TIN: one dot product and the pooling per position (no attention MLP), the projection and the head.
* Bytes: embedding gathers (L + 1 positions x D fp32) plus per-position activations, each written
  in the forward pass, read in the backward pass, its gradient written and read (4 passes), plus
  Adam's traffic over all parameters (param, grad, 2 moments: read + write) spread over the batch.

Then "achieved": samples/s from bench_ctr's newest JSON (or ``--ctr-json``) x FLOPs/sample and
bytes/sample, as % of the measured fp32 matmul peak (n = 1024) and of the best copy bandwidth, and
as % of the idle-machine figures in design/PERFORMANCE.md (200 GFLOP/s, 43 GB/s): on a loaded
machine the measured limits shrink with the CPU share this process gets.

    /work/main/.venv/bin/python benchmarks/machine.py [--threads 2] [--ctr-json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine_info, markdown_table

# PERFORMANCE.md's figures for this machine when idle (torch 2.13, 2 threads), for reference
IDLE_FP32_GFLOPS = 200.0
IDLE_COPY_GBS = 43.0


def best_seconds(fn, repeats: int, min_time: float = 0.2) -> float:
    """Best per-call seconds over ``repeats`` timed blocks (each >= ``min_time`` s) after a warm-up."""
    fn()
    calls = 1
    while True:  # calibrate the block size
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time:
            break
        calls *= 2
    best = dt / calls
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def measure(repeats: int) -> list[dict[str, Any]]:
    rows = []
    for dtype, label in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        for n in (512, 1024, 2048):
            a = torch.randn(n, n).to(dtype)
            b = torch.randn(n, n).to(dtype)
            load = os.getloadavg()[0]
            s = best_seconds(lambda a=a, b=b: a @ b, repeats)
            rows.append({"what": f"{label} matmul n={n}", "value": 2 * n**3 / s / 1e9,
                         "unit": "GFLOP/s", "load": round(load, 1)})
    x = torch.randn(64 * 2**20)  # 256 MiB fp32
    y = torch.empty_like(x)
    load = os.getloadavg()[0]
    s = best_seconds(lambda: y.copy_(x), repeats)
    rows.append({"what": "copy (copy_ into preallocated 256 MiB, read+write)",
                 "value": 2 * x.numel() * 4 / s / 1e9, "unit": "GB/s", "load": round(load, 1)})
    load = os.getloadavg()[0]
    s = best_seconds(x.clone, repeats)  # includes allocating and page-faulting the new tensor
    rows.append({"what": "copy (clone 256 MiB, read+write)", "value": 2 * x.numel() * 4 / s / 1e9,
                 "unit": "GB/s", "load": round(load, 1)})
    return rows


def step_cost(model: str, L: float, batch: int, n_items: int, D: int = 128,
              att: tuple[int, int] = (80, 40), head: tuple[int, int] = (80, 40),
              n_params: int | None = None) -> dict[str, float]:
    """Forward FLOPs, training FLOPs (3x) and bytes moved per sample for one training step."""
    h1, h2 = att
    m1, m2 = head
    proj = 2 * D * D
    tower = 2 * (3 * D * m1 + m1 * m2 + m2)
    if model == "din":
        per_pos = (D  # q * k
                   + 2 * D * h1 + 2 * h1 * h2 + 2 * h2  # W4 (q*k), 80 -> 40 -> 1
                   + h1 + h2  # bias adds / activations
                   + 5  # masked softmax
                   + 2 * D)  # weighted pooling
        per_sample = 2 * D * h1 + 2 * D * h1 * min(n_items, batch * L) / batch
        act_floats = 0.5 * (h1 + h2)  # blocked: only the hidden activations leave the cache, 2 passes of 4
    elif model == "tin":
        per_pos = 2 * D + 5 + 2 * D + D  # dot, softmax, pooling, temporal add
        per_sample = 0.0
        act_floats = 2 * D + 2  # e~ (item + temporal), logit + weight
    else:
        raise ValueError(model)
    fwd = L * per_pos + per_sample + proj + tower
    gather_bytes = (L + 1) * D * 4
    act_bytes = 4 * L * act_floats * 4
    adam_bytes = 0.0 if n_params is None else n_params * 4 * 4 * 2 / batch
    return {"fwd_flops": fwd, "train_flops": 3 * fwd,
            "bytes": gather_bytes + act_bytes + adam_bytes}


def latest_ctr_json() -> Path | None:
    found = sorted(RESULTS.glob("ctr-*.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ctr-json", type=Path, default=None, help="bench_ctr result (default: newest)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--n-items", type=int, default=1684, help="item vocabulary (ml-100k: 1,684)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    info_start = machine_info()

    limits = measure(args.repeats)
    peak = next(r["value"] for r in limits if r["what"] == "fp32 matmul n=1024")
    bw = max(r["value"] for r in limits if r["unit"] == "GB/s")
    print(markdown_table(limits, ["what", "value", "unit", "load"],
                         ["measurement", "value", "unit", "load 1m"]))

    ctr_path = args.ctr_json or latest_ctr_json()
    achieved = []
    if ctr_path is not None:
        ctr = json.loads(ctr_path.read_text())
        L = ctr["export"]["mean_hist_len"]["train"] if "export" in ctr else 39.2
        for row in ctr["rows"]:
            model = row.get("model")
            if model not in ("din", "tin") or not row.get("samples_per_s"):
                continue
            cost = step_cost(model, L, args.batch, args.n_items)
            sps = row["samples_per_s"]
            achieved.append({
                "model": row.get("library", model), "mean_L": L, "samples_per_s": sps,
                "mflop_per_sample": cost["train_flops"] / 1e6, "kb_per_sample": cost["bytes"] / 1e3,
                "gflops": sps * cost["train_flops"] / 1e9, "gbs": sps * cost["bytes"] / 1e9,
                "load": row.get("load")})
        for a in achieved:
            a["pct_flops"] = 100 * a["gflops"] / peak
            a["pct_bw"] = 100 * a["gbs"] / bw
            a["pct_flops_idle"] = 100 * a["gflops"] / IDLE_FP32_GFLOPS
            a["pct_bw_idle"] = 100 * a["gbs"] / IDLE_COPY_GBS
        print()
        print(markdown_table(achieved, ["model", "mean_L", "samples_per_s", "mflop_per_sample",
                                        "kb_per_sample", "gflops", "pct_flops", "pct_flops_idle",
                                        "gbs", "pct_bw", "pct_bw_idle", "load"],
                             ["model", "mean L", "train samples/s (bench_ctr)", "MFLOP/sample",
                              "KB/sample", "achieved GFLOP/s", "% fp32 peak (n=1024, now)",
                              "% idle fp32 (200)", "achieved GB/s", "% copy bw (now)",
                              "% idle copy (43)", "load 1m (training)"]))
    print(f"\nthreads {args.threads}; load 1m at start {info_start['loadavg']}, at end "
          f"{[round(x, 2) for x in os.getloadavg()]}; ctr result {ctr_path}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"machine-{stamp}.json"
    out.write_text(json.dumps({"name": "machine", "args": vars(args), "torch": torch.__version__,
                               "machine_start": info_start, "machine_end": machine_info(),
                               "limits": limits, "achieved": achieved,
                               "ctr_json": str(ctr_path)}, indent=2, default=str) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

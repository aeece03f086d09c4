"""Serving benchmark: latency and throughput of `chronorec serve` on 127.0.0.1.

Scenarios (each against a real `chronorec serve` subprocess on a free local port):

- ``tin_score``: ``POST /score`` with a 100-event history and 100 candidates (TIN run);
- ``sasrec_recommend``: ``POST /recommend`` top-10 over all items after a 100-event history (SASRec run);
- ``tin_score_malformed``: the TIN load with 1% malformed requests (bad JSON, unsorted or future
  timestamps, missing/empty/too many candidates, wrong types, wrong content type), counting
  responses by status; only 200 and each malformed request's intended 4xx are expected
  (``malformed_each_kind_x5`` then sends every kind five times, whatever the 1% rate reached).

Each scenario sends at most ``--requests`` requests and stops after ``--seconds`` (whichever comes
first) with ``--concurrency`` requests in flight (asyncio + httpx). Latency is measured by the
client (same machine, so it includes the client's own CPU time); the server's ``Server-Timing``
header adds its wall and CPU time per request (CPU time is what a request costs whatever else runs
on the host). Results: a Markdown table on
stdout and JSON in ``benchmarks/results/serve-<timestamp>.json``.

    python benchmarks/bench_serve.py --tin-run runs/<tin>/<id> --sasrec-run runs/<sasrec>/<id>
    python benchmarks/bench_serve.py            # builds small synthetic runs first (real trainer, 1 epoch)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 90.0
T0 = 1_300_000_000


@dataclass
class Request:
    path: str
    content: bytes
    content_type: str = "application/json"
    expect: int = 200
    kind: str = "valid"


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)  # Server-Timing app;dur (wall) of the 200s
    server_cpu_ms: list[float] = field(default_factory=list)  # Server-Timing cpu;dur of the 200s
    statuses: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    wall_s: float = 0.0


# --------------------------------------------------------------------------- runs
def synthetic_runs(work: Path) -> tuple[Path, Path]:
    """Small but realistically shaped runs (default model sizes) trained for one epoch."""
    sys.path.insert(0, str(HERE.parent / "tests" / "serve"))
    from serve_synth import Source, make_run

    from chronorec.data.prepare import PrepareOptions, prepare

    rng = np.random.default_rng(0)
    n_users, n_items = 300, 3000
    lens = rng.integers(20, 150, n_users)
    items = rng.integers(0, n_items, int(lens.sum()))
    ts = np.concatenate([T0 + np.cumsum(rng.integers(1, 86_400, n)) for n in lens])
    events = pl.DataFrame({
        "user": np.repeat([f"u{i}" for i in range(n_users)], lens), "item": [f"I{i:05d}" for i in items],
        "ts": ts, "category": [str(i % 50) for i in items],
    }).unique(maintain_order=True)
    runs = []
    for protocol, model in (("ctr-leave-one-out", "tin"), ("next-item-last-out", "sasrec")):
        prepared = work / protocol
        prepare(Source(f"bench-{protocol}", events), prepared, PrepareOptions(protocol=protocol, max_history=100))
        existing = sorted((work / "runs").glob(f"*-{model}/*/checkpoints/best.pt"))
        runs.append(existing[0].parent.parent if existing else make_run(prepared, model, {}, work / "runs"))
    return runs[0], runs[1]


def item_ids(run: Path) -> list[str]:
    from chronorec.serve.runs import read_run_info

    return pl.read_parquet(read_run_info(run).data_dir / "vocab" / "item.parquet")["raw"].to_list()


# --------------------------------------------------------------------------- requests
def _history(rng: np.random.Generator, items: list[str], n: int) -> list[dict[str, Any]]:
    ts = T0 + np.cumsum(rng.integers(1, 86_400, n))
    return [{"item": items[i], "ts": int(t)} for i, t in zip(rng.integers(0, len(items), n), ts, strict=True)]


def score_bodies(items: list[str], n: int, hist: int, cands: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        h = _history(rng, items, hist)
        c = [{"item": items[i]} for i in rng.integers(0, len(items), cands)]
        out.append({"history": h, "candidates": c, "ts": h[-1]["ts"] + 3600, "user": f"u{k}"})
    return out


def recommend_bodies(items: list[str], n: int, hist: int, k: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h = _history(rng, items, hist)
        out.append({"history": h, "k": k, "ts": h[-1]["ts"] + 3600})
    return out


def malformed(body: dict[str, Any], variant: int, max_candidates: int) -> Request:
    """One of eight malformed versions of a valid /score body, with the status it must get."""
    b = json.loads(json.dumps(body))
    v = variant % 8
    if v == 0:
        return Request("/score", json.dumps(b).encode()[:-7], expect=400, kind="bad_json")
    if v == 1:
        b["history"][5]["ts"] = b["history"][4]["ts"] - 10
        kind = "unsorted_ts"
    elif v == 2:
        b["ts"] = b["history"][-1]["ts"] - 1
        kind = "future_ts"
    elif v == 3:
        b.pop("candidates")
        kind = "missing_candidates"
    elif v == 4:
        b["candidates"] = []
        kind = "empty_candidates"
    elif v == 5:
        b["history"][0]["ts"] = "yesterday"
        kind = "wrong_type"
    elif v == 6:
        b["candidates"] = b["candidates"] * (max_candidates // len(b["candidates"]) + 1)
        return Request("/score", json.dumps(b).encode(), expect=413, kind="too_many_candidates")
    else:
        return Request("/score", json.dumps(b).encode(), content_type="text/plain", expect=415, kind="content_type")
    return Request("/score", json.dumps(b).encode(), expect=422, kind=kind)


# --------------------------------------------------------------------------- server and load
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(run: Path, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "chronorec", "serve", "--run", str(run), "--host", "127.0.0.1",
           "--port", str(port), "--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"server did not start within {START_TIMEOUT:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


async def drive(url: str, requests: list[Request], n: int, concurrency: int, seconds: float) -> Outcome:
    """Send up to ``n`` requests (cycling through ``requests``) with ``concurrency`` in flight."""
    out = Outcome()
    next_i = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_i
            while next_i < n and time.perf_counter() < deadline:
                req = requests[next_i % len(requests)]
                next_i += 1
                t = time.perf_counter()
                r = await client.post(req.path, content=req.content, headers={"content-type": req.content_type})
                out.latencies_ms.append((time.perf_counter() - t) * 1000)
                out.statuses[r.status_code] += 1
                timing = dict(part.strip().split(";dur=") for part in r.headers.get("server-timing", "").split(",")
                              if ";dur=" in part)
                if "app" in timing:
                    out.server_ms.append(float(timing["app"]))
                    out.server_cpu_ms.append(float(timing.get("cpu", "nan")))
                if r.status_code != req.expect:
                    out.unexpected[f"{req.kind}: {r.status_code} (expected {req.expect})"] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.wall_s = time.perf_counter() - t0
    return out


def summarize(name: str, out: Outcome, concurrency: int) -> dict[str, Any]:
    lat = np.asarray(out.latencies_ms)
    srv = np.asarray(out.server_ms) if out.server_ms else np.zeros(1)
    cpu = np.asarray(out.server_cpu_ms) if out.server_cpu_ms else np.zeros(1)
    return {
        "scenario": name, "concurrency": concurrency, "requests": int(lat.size),
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p90_ms": round(float(np.percentile(lat, 90)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2), "max_ms": round(float(lat.max()), 2),
        "throughput_rps": round(lat.size / out.wall_s, 1),
        "server_p50_ms": round(float(np.percentile(srv, 50)), 2), "server_p99_ms": round(float(np.percentile(srv, 99)), 2),
        "server_cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
        "server_cpu_p99_ms": round(float(np.percentile(cpu, 99)), 2),
        "statuses": {str(k): v for k, v in sorted(out.statuses.items())},
        "unexpected": dict(out.unexpected),
    }


def run_scenario(url: str, name: str, requests: list[Request], args: argparse.Namespace) -> list[dict[str, Any]]:
    asyncio.run(drive(url, requests, args.warmup, 1, args.seconds))  # warm-up, not recorded
    return [summarize(name, asyncio.run(drive(url, requests, args.requests, c, args.seconds)), c)
            for c in args.concurrency]


# --------------------------------------------------------------------------- main
def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| scenario | conc. | requests | p50 ms | p90 ms | p99 ms | max ms | req/s | server p50/p99 ms "
            "| server CPU p50/p99 ms | statuses | unexpected |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
        lines.append(f"| {r['scenario']} | {r['concurrency']} | {r['requests']} | {r['p50_ms']} | {r['p90_ms']} | "
                     f"{r['p99_ms']} | {r['max_ms']} | {r['throughput_rps']} | "
                     f"{r['server_p50_ms']} / {r['server_p99_ms']} | "
                     f"{r['server_cpu_p50_ms']} / {r['server_cpu_p99_ms']} | {statuses} | "
                     f"{sum(r['unexpected'].values())} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tin-run", type=Path, help="a trained TIN run folder (default: build a synthetic one)")
    p.add_argument("--sasrec-run", type=Path, help="a trained SASRec run folder (default: build a synthetic one)")
    p.add_argument("--work", type=Path, default=Path(".cache/bench_serve"), help="where synthetic runs go")
    p.add_argument("--requests", type=int, default=1000, help="most requests per scenario and concurrency")
    p.add_argument("--seconds", type=float, default=10.0, help="most seconds per scenario and concurrency")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    p.add_argument("--threads", type=int, default=1, help="server torch threads per worker (0 = cores / workers)")
    p.add_argument("--history", type=int, default=100)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--out", type=Path, default=HERE / "results")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.tin_run is None or args.sasrec_run is None:
        tin, sasrec = synthetic_runs(args.work)
        args.tin_run, args.sasrec_run = args.tin_run or tin, args.sasrec_run or sasrec
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    proc, url = start_server(args.tin_run, args.threads)
    try:
        items = item_ids(args.tin_run)
        bodies = score_bodies(items, 50, args.history, args.candidates)
        valid = [Request("/score", json.dumps(b).encode()) for b in bodies]
        rows += run_scenario(url, "tin_score", valid, args)
        max_cands = httpx.get(f"{url}/model").json()["limits"]["max_candidates"]
        mixed = [malformed(bodies[i % len(bodies)], i // 100, max_cands) if i % 100 == 99 else valid[i % len(valid)]
                 for i in range(800)]  # 1% malformed, all eight kinds
        rows += run_scenario(url, "tin_score_malformed_1pct", mixed, args)
        kinds = [malformed(bodies[k], k, max_cands) for k in range(8)] * 5  # every kind, whatever the rate
        rows.append(summarize("malformed_each_kind_x5", asyncio.run(drive(url, kinds, len(kinds), 2, args.seconds)), 2))
    finally:
        stop_server(proc)
    proc, url = start_server(args.sasrec_run, args.threads)
    try:
        rec = [Request("/recommend", json.dumps(b).encode())
               for b in recommend_bodies(item_ids(args.sasrec_run), 50, args.history, 10)]
        rows += run_scenario(url, "sasrec_recommend_top10", rec, args)
        n_items = httpx.get(f"{url}/model").json()["n_items"]
    finally:
        stop_server(proc)
    result = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "cores": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "tin_run": str(args.tin_run), "sasrec_run": str(args.sasrec_run), "sasrec_items": n_items,
        "history": args.history, "candidates": args.candidates, "server_threads": args.threads or os.cpu_count(),
        "rows": rows,
    }
    print(markdown(rows))
    print(f"\nload average before/after: {result['loadavg_before']} / {result['loadavg_after']} on {result['cores']} cores")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"serve-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()

"""chronorec's cheap-mask dropout against torch's, on one activation tensor (CPU).

    .venv/bin/python benchmarks/bench_dropout.py [--shape 64 50 256] [--p 0.5] [--threads 2] [--rounds 2]

Prints milliseconds per call (100 calls after 5 warm-up ones) for ``F.dropout``, chronorec's
``dropout``, a ``bernoulli_`` mask and chronorec's ``keep_mask``, once per round.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from chronorec.layers.dropout import dropout, keep_mask


def per_call_ms(f: Callable[[], object], n: int = 100, warmup: int = 5) -> float:
    for _ in range(warmup):
        f()
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[64, 50, 256])
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.randn(*a.shape)
    for _ in range(a.rounds):
        print(f"F.dropout {per_call_ms(lambda: F.dropout(x, a.p, True)):.2f} ms | "
              f"chronorec dropout {per_call_ms(lambda: dropout(x, a.p)):.2f} ms | "
              f"bernoulli_ mask {per_call_ms(lambda: torch.empty_like(x).bernoulli_(1 - a.p)):.2f} ms | "
              f"keep_mask {per_call_ms(lambda: keep_mask(x.shape, a.p)):.2f} ms")


if __name__ == "__main__":
    main()

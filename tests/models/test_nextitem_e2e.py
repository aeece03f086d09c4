"""A tiny end-to-end run: the next item is a deterministic function of the current one (i -> i+1)."""

from __future__ import annotations

import time

import pytest
import torch

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.models.registry import create_model
from chronorec.train.nextitem_task import NextItemTask

N_REAL = 60  # real items 2 .. 61
VOCAB = N_REAL + 2
L = 10


def _successor(x: torch.Tensor) -> torch.Tensor:
    return (x - 2 + 1) % N_REAL + 2


def _batch(g: torch.Generator, B: int, train: bool) -> Batch:
    """Random-start chains x, x+1, x+2, ... of random length (right-padded), one day apart."""
    lengths = torch.randint(1, L + 1, (B,), generator=g)
    ar = torch.arange(L)
    mask = ar[None, :] < lengths[:, None]  # [B, L]
    start = torch.randint(0, N_REAL, (B, 1), generator=g)
    chain = (start + ar[None, :]) % N_REAL + 2  # [B, L]
    hist = chain * mask
    ts = (1_500_000_000 + 86_400 * (ar[None, :] + 1)).expand(B, L) * mask
    gap = torch.where(mask & (ar[None, :] > 0), torch.full_like(ts, 86_400), torch.full_like(ts, -1))
    nxt = _successor(chain)
    if train:
        target, tts = nxt * mask, (ts + 86_400) * mask  # [B, L]: the item after each position
    else:
        last = (lengths - 1)[:, None]
        target = nxt.gather(1, last)[:, 0]  # [B]
        tts = ts.gather(1, last)[:, 0] + 86_400
    return Batch(
        hist_item=hist, hist_side={}, hist_ts=ts, hist_gap=gap, hist_calendar=torch.zeros(B, L, 3, dtype=torch.long),
        mask=mask, lengths=lengths, target_item=target, target_side={}, target_ts=tts,
        label=torch.ones(B), user=torch.arange(B) + 2, group=(torch.arange(B) % 2),
    )



@pytest.mark.parametrize(("name", "steps"), [("sasrec", 100), ("bert4rec", 160)])
def test_learns_successor_function(name: str, steps: int) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    schema = DatasetSchema(
        name="chain", protocol="next-item-last-out", task="next_item", n_users=64, n_items=N_REAL,
        n_events=640, vocab_sizes={"user": 66, "item": VOCAB},
    )
    model = create_model(name, schema, {"dim": 32, "inner": 64, "dropout": 0.0, "max_len": L + 1, "rhythm": "bf"})
    task = NextItemTask.from_schema(schema)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    t0 = time.process_time()  # CPU seconds: steady on a shared machine, unlike wall time
    model.train()
    for _ in range(steps):
        loss = task.loss(model, _batch(g, 64, train=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
    metrics = task.evaluate(model, [_batch(g, 256, train=False) for _ in range(2)])
    elapsed = time.process_time() - t0
    assert metrics["n"] == 512
    print(name, {k: v for k, v in metrics.items() if k.endswith("@10")}, f"{elapsed:.1f}s")
    assert metrics["hit@10"] > 0.9, metrics
    assert set(metrics["groups"]) == {"head", "tail"}
    assert elapsed < 15.0

"""A hand-written prepared dataset folder with a planted semantic-temporal pattern (for tests).

Every sample's target is a random item; its click probability is
``sigmoid(bias + sum_p w_p [history category at position p == target category])`` with
``w_p = strength * decay^(p-1)`` (position 1 = most recent), so the ground-truth CTC must be larger
for the target's own category than for others and decrease with p. Written in the layout of
:mod:`chronorec.data.schema` (with a valid manifest) without the project's prepare step: no
prepare protocol draws labels from a known click model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from chronorec.data.schema import DatasetSchema
from chronorec.data.store import write_manifest

DAY = 86_400


def planted_weights(n_positions: int = 10, strength: float = 2.5, decay: float = 0.7) -> np.ndarray:
    return strength * decay ** np.arange(n_positions)


def write_synthetic(out: Path, n_users: int = 1500, n_cats: int = 6, n_items: int = 120,
                    min_len: int = 4, max_len: int = 30, bias: float = -1.0, strength: float = 2.5,
                    decay: float = 0.7, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    item_ids = np.arange(2, n_items + 2)
    item_cat = 2 + (item_ids % n_cats)  # category ids 2..n_cats+1
    lengths = rng.integers(min_len, max_len + 1, n_users)
    n_ev = int(lengths.sum())
    user_of = np.repeat(np.arange(2, n_users + 2), lengths)
    offsets = np.cumsum(lengths) - lengths
    pos_in_user = np.arange(n_ev) - np.repeat(offsets, lengths)
    items = rng.choice(item_ids, n_ev)
    cats = item_cat[items - 2]
    steps = rng.integers(0, 30, n_ev) * DAY
    steps[pos_in_user == 0] = 0
    t0 = np.repeat(1_300_000_000 + rng.integers(0, 100, n_users) * DAY, lengths)
    ts = t0 + np.cumsum(steps) - np.repeat(np.cumsum(steps)[offsets] - steps[offsets], lengths)
    gap = np.where(pos_in_user == 0, -1, np.diff(ts, prepend=ts[0]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    (out / "vocab").mkdir(exist_ok=True)
    pl.DataFrame({
        "user": user_of.astype(np.int32), "item": items.astype(np.int32), "category": cats.astype(np.int32),
        "ts": ts.astype(np.int64), "gap": gap.astype(np.int64),
        "hour": np.zeros(n_ev, np.int8), "wday": ((ts // DAY + 3) % 7).astype(np.int8),
        "month": np.ones(n_ev, np.int8),
    }).write_parquet(out / "events.parquet")
    n_train = lengths - 1
    pl.DataFrame({
        "user": np.arange(2, n_users + 2, dtype=np.int32), "offset": offsets.astype(np.int64),
        "length": lengths.astype(np.int32), "n_train": n_train.astype(np.int32),
        "group": (n_train < np.quantile(n_train, 0.8)).astype(np.int8),
    }).write_parquet(out / "users.parquet")

    w = planted_weights(10, strength, decay)

    def make(start: np.ndarray, end: np.ndarray, ts_t: np.ndarray, user: np.ndarray) -> pl.DataFrame:
        tgt = rng.choice(item_ids, start.shape[0])
        tcat = item_cat[tgt - 2]
        p = np.arange(1, 11)
        rows = end[:, None] - p[None, :]
        valid = rows >= start[:, None]
        same = valid & (cats[np.where(valid, rows, 0)] == tcat[:, None])
        logit = bias + (same * w[None, :]).sum(1)
        label = (rng.random(start.shape[0]) < 1 / (1 + np.exp(-logit))).astype(np.float32)
        return pl.DataFrame({"user": user.astype(np.int32), "hist_start": start, "hist_end": end,
                             "item": tgt.astype(np.int32), "category": tcat.astype(np.int32),
                             "ts": ts_t.astype(np.int64), "label": label})

    # train: every prefix predicts a random target at the time of the next event
    train_rows = np.flatnonzero(pos_in_user >= 1)
    tr = make(offsets[user_of[train_rows] - 2], train_rows, ts[train_rows], user_of[train_rows])
    last = offsets + lengths
    te_users = np.repeat(np.arange(n_users), 2)
    te = make(offsets[te_users], last[te_users], ts[last[te_users] - 1] + DAY, te_users + 2)
    tr.write_parquet(out / "samples" / "train.parquet")
    te.head(0).write_parquet(out / "samples" / "valid.parquet")
    te.write_parquet(out / "samples" / "test.parquet")
    for field, n in (("user", n_users), ("item", n_items), ("category", n_cats)):
        pl.DataFrame({"raw": [f"{field[0]}{i}" for i in range(n)],
                      "idx": np.arange(2, n + 2, dtype=np.int32)}).write_parquet(out / "vocab" / f"{field}.parquet")
    iv = (np.repeat(tr["ts"].to_numpy(), 1) - ts[np.maximum(train_rows - 1, 0)])
    edges = np.unique(np.quantile(iv, np.linspace(0, 1, 11)[1:-1])).tolist()
    DatasetSchema(
        name="synthetic-planted", protocol="ctr-leave-one-out", task="ctr", n_users=n_users,
        n_items=n_items, n_events=n_ev,
        vocab_sizes={"user": n_users + 2, "item": n_items + 2, "category": n_cats + 2},
        side_features=["category"], bin_edges={"interval": edges},
        counts={"train": tr.height, "valid": 0, "test": te.height},
        time_span=(int(ts.min()), int(ts.max())), max_history_len=int(lengths.max()),
    ).save(out / "schema.json")
    pl.DataFrame({"item": np.arange(n_items + 2, dtype=np.int32),
                  "category": np.concatenate([[0, 0], item_cat]).astype(np.int32)}).write_parquet(out / "items.parquet")
    write_manifest(out, {"key": f"planted-{seed}"})
    return out

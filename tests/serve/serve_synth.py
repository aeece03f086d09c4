"""Tiny synthetic datasets and runs for the serving tests, and request builders from prepared rows.

Events are generated, prepared with the real ``prepare`` and trained for one short epoch with the
real trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from chronorec.data.prepare import PrepareOptions, prepare

T0 = 1_300_000_000


def make_events(n_users: int = 48, n_items: int = 70, seed: int = 0) -> pl.DataFrame:
    """Users with 4..30 events at second resolution (with some same-second ties), items with a category."""
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u in range(n_users):
        n = int(rng.integers(4, 31))
        steps = rng.integers(0, 3 * 86_400, n)
        steps[rng.random(n) < 0.1] = 0  # ties
        users += [f"user-{u}"] * n
        items += [f"B{int(i):05d}" for i in rng.integers(0, n_items, n)]
        ts += (T0 + np.cumsum(steps)).tolist()
    cat = [str(int(i[1:]) % 7) for i in items]
    df = pl.DataFrame({"user": users, "item": items, "ts": ts, "category": cat},
                      schema={"user": pl.Utf8, "item": pl.Utf8, "ts": pl.Int64, "category": pl.Utf8})
    return df.unique(maintain_order=True)  # no exact duplicates (prepare would drop them with a warning)


@dataclass
class Source:
    """What ``prepare`` reads from a loaded source (duck-typed like ``SourceData``)."""

    name: str
    events: pl.DataFrame
    side: list[str] = field(default_factory=lambda: ["category"])
    files: list[Path] = field(default_factory=list)


def prepare_synthetic(out: Path, protocol: str, seed: int = 0) -> Path:
    source = Source(name=f"synth-{protocol}", events=make_events(seed=seed))
    prepare(source, out, PrepareOptions(protocol=protocol))  # type: ignore[arg-type]
    return out


def make_run(prepared: Path, model: str, options: dict[str, Any], out: Path) -> Path:
    """A one-epoch run of ``model`` on ``prepared`` with the real trainer (small batches, one thread)."""
    from chronorec.data.schema import DatasetSchema
    from chronorec.train.build import manifest_key, resolve_model_options
    from chronorec.train.config import RunConfig, TrainConfig
    from chronorec.train.launch import train

    schema = DatasetSchema.load(prepared / "schema.json")
    cfg = RunConfig(
        name=f"{schema.name}-{model}", data=str(prepared.resolve()), cache_key=manifest_key(prepared),
        dataset=schema.name, task=schema.task, model=model,
        model_options=resolve_model_options(model, options),
        train=TrainConfig(epochs=1, batch_size=256, eval_batch_size=1024, threads=1, patience=1,
                          checkpoint_every=0, save_predictions=False),
    )
    return train(cfg, out=out, verbose=False)


# --------------------------------------------------------------------------- requests from prepared rows
class PreparedView:
    """Raw-id views of a prepared folder, to build requests the way a client would."""

    def __init__(self, prepared: Path) -> None:
        self.dir = prepared
        vocab = {f: pl.read_parquet(prepared / "vocab" / f"{f}.parquet") for f in ("item", "category", "user")}
        self.raw = {}
        for f, v in vocab.items():
            arr = np.empty(int(v["idx"].max()) + 1, dtype=object)
            arr[v["idx"].to_numpy()] = v["raw"].to_list()
            self.raw[f] = arr
        self.events = pl.read_parquet(prepared / "events.parquet")
        self.users = pl.read_parquet(prepared / "users.parquet")

    def samples(self, split: str) -> pl.DataFrame:
        return pl.read_parquet(self.dir / "samples" / f"{split}.parquet").with_row_index("index")

    def history(self, start: int, end: int, with_category: bool = True) -> list[dict[str, Any]]:
        ev = self.events.slice(start, end - start)
        out = []
        for item, cat, ts in zip(ev["item"].to_list(), ev["category"].to_list(), ev["ts"].to_list(), strict=True):
            e: dict[str, Any] = {"item": self.raw["item"][item], "ts": ts}
            if with_category:
                e["category"] = self.raw["category"][cat]
            out.append(e)
        return out

    def user_start(self, user: int) -> int:
        """First event row of a user (the history a client would send starts there)."""
        return int(self.users.filter(pl.col("user") == user)["offset"][0])

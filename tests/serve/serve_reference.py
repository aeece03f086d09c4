"""The offline reference the service must agree with (``chronorec predict``), and requests built
from the same prepared rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from serve_synth import PreparedView

from chronorec.cli import main


def predictions(run: Path, split: str, out: Path) -> pl.DataFrame:
    """``chronorec predict --run RUN --split SPLIT --out OUT``: raw user/item ids per sample (CTR rows
    also carry the sample ``index``; next-item rows are matched by user, one test sample per user)."""
    main(["predict", "--run", str(run), "--split", split, "--out", str(out)])
    return pl.read_parquet(out)


def ctr_requests(view: PreparedView, split: str, n_users: int, with_category: bool = True
                 ) -> list[tuple[dict[str, Any], list[int]]]:
    """One /score body per (user, history, time) of the split's first ``n_users`` users, with the
    sample indices of its candidates in order. The history sent is the user's events from the first
    one, so gaps are computed exactly as prepare computed them."""
    samples = view.samples(split)
    keys = samples.select("user", "hist_end", "ts").unique(maintain_order=True).head(n_users)
    out = []
    for k, (user, hist_end, ts) in enumerate(keys.iter_rows()):
        rows = samples.filter((pl.col("user") == user) & (pl.col("hist_end") == hist_end) & (pl.col("ts") == ts))
        cands = []
        for item, cat in rows.select("item", "category").iter_rows():
            c: dict[str, Any] = {"item": view.raw["item"][item]}
            if with_category and k % 2 == 0:  # every other request relies on the item -> category lookup
                c["category"] = view.raw["category"][cat]
            cands.append(c)
        body = {"history": view.history(view.user_start(user), hist_end, with_category=with_category),
                "candidates": cands, "ts": ts, "user": view.raw["user"][user]}
        out.append((body, rows["index"].to_list()))
    return out

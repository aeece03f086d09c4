"""The offline reference the service must agree with: ``chronorec predict`` (or the trainer's
``LoadedRun.predict`` while the command does not exist), and requests built from the same rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from serve_synth import PreparedView


def predictions(run: Path, split: str, out: Path) -> pl.DataFrame:
    """The run's offline predictions of ``split`` with raw user/item ids and the sample ``index``."""
    try:
        import chronorec.cli.predict  # noqa: F401
    except ImportError:
        return _with_index(_loaded_run_predictions(run, split))
    from chronorec.cli import main

    try:
        main(["predict", "--run", str(run), "--split", split, "--out", str(out)])
    except SystemExit as err:  # typer's standalone exit on success
        assert not err.code, f"chronorec predict exited with {err.code}"
    return _with_index(pl.read_parquet(out))


def _with_index(df: pl.DataFrame) -> pl.DataFrame:
    """Predictions of an unshuffled split come in sample order; name that order when not given."""
    return df if "index" in df.columns else df.with_row_index("index").with_columns(pl.col("index").cast(pl.Int64))


def _loaded_run_predictions(run: Path, split: str) -> pl.DataFrame:
    from chronorec.train.runs import load_run

    loaded = load_run(run)
    df = loaded.predict(split)
    view = PreparedView(Path(loaded.config.data))
    return df.with_columns(
        pl.Series("user", view.raw["user"][df["user"].to_numpy()].tolist(), dtype=pl.Utf8),
        pl.Series("item", view.raw["item"][df["item"].to_numpy()].tolist(), dtype=pl.Utf8),
    )


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

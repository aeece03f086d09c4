"""Prepare's first stages: validate a canonical frame, drop duplicates, k-core, short users.

``prepare`` never trusts an arbitrary frame: :func:`validate_events` checks the columns and the
timestamps (integer seconds, non-null, non-negative, below 2**34 so a millisecond column is caught)
and reports the first bad row, 1-based over the frame's rows as the loader returned them.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from chronorec.data.protocols import TS_BITS
from chronorec.errors import ChronorecError, warn

ROW = "__row"


def where_of(source: Any) -> str:
    """The name errors and warnings carry: the single input file, else the source name."""
    files = list(getattr(source, "files", []) or [])
    return str(files[0]) if len(files) == 1 else str(getattr(source, "name", "events"))


def _first(mask: pl.Series) -> int:
    return int(mask.arg_true()[0]) + 1


def validate_events(df: Any, side: list[str], *, where: str, what: str = "events") -> pl.DataFrame:
    """Check the canonical columns; returns user/item/side as Utf8 and ts as Int64."""
    if not isinstance(df, pl.DataFrame):
        raise ChronorecError(f"{what} must be a polars DataFrame, got {type(df).__name__}", file=where)
    for col in ("user", "item", "ts", *side):
        if col not in df.columns:
            raise ChronorecError(
                f"{what} lack column '{col}' (have: {', '.join(df.columns)})", file=where, column=col
            )
    if df.height == 0:
        raise ChronorecError(f"{what} table is empty", file=where)
    ts = df["ts"]
    if ts.dtype.is_float():
        bad = ts.is_null() | ts.is_nan() | ts.is_infinite()
        if bad.any():
            raise ChronorecError(
                f"{int(bad.sum())} missing/NaN timestamp(s)", file=where, column="ts", row=_first(bad)
            )
        frac = ts != ts.floor()
        if frac.any():
            raise ChronorecError(
                "timestamps must be whole seconds", file=where, column="ts", row=_first(frac)
            )
    elif not ts.dtype.is_integer():
        raise ChronorecError(f"timestamps must be integer seconds, got {ts.dtype}", file=where, column="ts")
    for col in ("user", "item", "ts"):
        if df[col].null_count():
            n = df[col].null_count()
            raise ChronorecError(
                f"{n} missing value(s)", file=where, column=col, row=_first(df[col].is_null())
            )
    df = df.with_columns(
        pl.col("ts").cast(pl.Int64), *[pl.col(c).cast(pl.Utf8) for c in ("user", "item", *side)]
    )
    if (df["ts"] < 0).any():
        raise ChronorecError("negative timestamp", file=where, column="ts", row=_first(df["ts"] < 0))
    if (df["ts"] >= 1 << TS_BITS).any():
        raise ChronorecError(
            "timestamp beyond year 2500: milliseconds where seconds are expected? (use --time-unit ms)",
            file=where,
            column="ts",
            row=_first(df["ts"] >= 1 << TS_BITS),
        )
    return df


def _first_distinct(df: pl.DataFrame, cols: list[str]) -> pl.Series | None:
    """Mask of each row's first occurrence over ``cols`` (None: no row repeats an earlier one).

    Exact, but cheap in memory: rows are first told apart by a 64-bit hash of their values (8 bytes
    a row, where comparing whole rows row-encodes every string: +30 MB on amazon-beauty); only rows
    whose hash repeats are then compared value by value.
    """
    h = df.select(pl.struct(cols).hash(seed=0)).to_series()
    again = ~h.is_first_distinct()
    if not again.any():
        return None
    clash = h.is_in(h.filter(again).implode())  # every row of a repeated hash, firsts included
    keep = df.filter(clash).select(pl.struct(cols).is_first_distinct()).to_series()  # in row order
    if keep.all():  # only hash collisions, no real duplicate
        return None
    return pl.repeat(True, df.height, dtype=pl.Boolean, eager=True).scatter(clash.arg_true(), keep)


def clean_events(
    df: pl.DataFrame,
    side: list[str],
    *,
    dedupe: bool,
    kcore: int | None,
    min_events: int,
    short_users: str,
    protocol: str,
    where: str,
    counts: dict[str, int],
) -> pl.DataFrame:
    """Dedupe (over every column), k-core, then drop (or refuse) users with < ``min_events`` events.

    Returns ``__row`` (0-based source row: stable ties and error rows), user, item, ts, side columns.
    The counts of removed rows/users go into ``counts``.
    """
    df = df.with_row_index(ROW)
    if dedupe:
        n0 = df.height
        first = _first_distinct(df, [c for c in df.columns if c != ROW])
        if first is not None:  # filter (a copy of every column) only when there is something to drop
            df = df.filter(first)
        counts["dropped_duplicates"] = n0 - df.height
        if n0 > df.height:
            warn(f"{where}: dropped {n0 - df.height} exact duplicate event row(s)")
    df = df.select(ROW, "user", "item", "ts", *side)
    if kcore:
        n0, prev = df.height, -1
        while df.height != prev:  # removing items can push users below k and back: iterate
            prev = df.height
            df = df.filter((pl.len().over("user") >= kcore) & (pl.len().over("item") >= kcore))
        counts["dropped_kcore"] = n0 - df.height
        if df.height == 0:
            raise ChronorecError(
                f"the {kcore}-core is empty: k-core filtering removed every event", file=where
            )
    n_ev = pl.len().over("user")
    short = df.filter(n_ev < min_events)
    if short.height:
        n_users = short["user"].n_unique()
        if short_users == "error":
            first = short.sort(ROW).row(0, named=True)
            raise ChronorecError(
                f"{n_users} user(s) have fewer than {min_events} events (needed by {protocol}), e.g. "
                f"user '{first['user']}'",
                file=where,
                column="user",
                row=int(first[ROW]) + 1,
            )
        warn(
            f"{where}: dropped {n_users} user(s) with fewer than {min_events} events ({short.height} events)"
        )
        df = df.filter(n_ev >= min_events)
        counts["dropped_short_users"] = n_users
        if df.height == 0:
            raise ChronorecError(f"no user has the {min_events} events {protocol} needs", file=where)
    return df


def item_side_table(
    events: pl.DataFrame, imps: pl.DataFrame | None, side: list[str], where: str
) -> pl.DataFrame:
    """One raw value per item and side feature: its earliest non-null value (events before impressions).

    Items whose events disagree are counted in a warning; an item with no value gets null (-> UNK).
    Without side features the table is empty (nothing to sort or group).
    """
    if not side:
        return pl.DataFrame(schema={"item": pl.Utf8})
    frames = [events.select("item", "ts", ROW, *side).with_columns(pl.lit(0).alias("__src"))]
    if imps is not None and side and all(s in imps.columns for s in side):
        frames.append(imps.select("item", "ts", ROW, *side).with_columns(pl.lit(1).alias("__src")))
    allv = pl.concat(frames).sort("__src", "ts", ROW)
    table = allv.group_by("item", maintain_order=True).agg(pl.col(s).drop_nulls().first() for s in side)
    conflicts = allv.group_by("item").agg(pl.col(s).drop_nulls().n_unique() for s in side)
    for s in side:
        n = int((conflicts[s] > 1).sum())
        if n:
            warn(f"{where}: {n} item(s) have several '{s}' values; each keeps its earliest one")
    return table.select("item", *side)


def validate_impressions(source: Any, side: list[str], where: str) -> pl.DataFrame:
    """Labelled impressions for ctr-time-split: user, item, ts, label (0/1) [+ side], ``__row``."""
    imps = getattr(source, "impressions", None)
    if imps is None:
        raise ChronorecError("ctr-time-split needs labelled impressions; this source has none", file=where)
    imps = validate_events(imps, [], where=where, what="impressions")
    if "label" not in imps.columns:
        raise ChronorecError("impressions lack column 'label'", file=where, column="label")
    lab = imps["label"].cast(pl.Float64, strict=False)
    bad = lab.is_null() | ~lab.is_in([0.0, 1.0])
    if bad.any():
        raise ChronorecError("labels must be 0 or 1", file=where, column="label", row=_first(bad))
    present = [s for s in side if s in imps.columns]
    out = imps.select("user", "item", "ts", *present).with_columns(lab.alias("label"))
    out = out.with_columns(pl.col(s).cast(pl.Utf8) for s in present)
    return out.with_row_index(ROW)

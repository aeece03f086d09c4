"""Turning a loader's raw frame into the canonical events table, with every check in one place.

A loader hands over a frame with Utf8 columns named by role (``user``, ``item``, ``ts`` raw, and
any of ``category``, ``brand``, ``rating``, ``session``, extras, ``label``) plus ``_file`` (index
into the files list) and ``_row`` (1-based data row in that file), and a ``columns`` dict naming
each role's source column for messages. :func:`finish` then

- strips ids and side values (empty -> null); a null user or item id (or ``NaN`` in a numeric id
  column) is an error naming the first row and the count (``options={"drop_invalid": True}``
  drops such rows with a warning instead);
- converts ``ts`` (see :mod:`._time`): invalid values, missing / NaN values (count + first row),
  negative times and times later than now + 1 day are errors;
- casts ``rating`` to Float64 and ``label`` to Int8 0/1, naming the first bad row;
- orders columns: user, item, ts, side features, rating, session, other extras.

:func:`attach_item_attrs` joins an item-attribute table (one row per item): an item listed twice
with two different values is an error naming both rows; event items absent from the table get
nulls and a warning with the count.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from chronorec.data.sources._time import UNIT_WORDS, parse_time
from chronorec.data.sources.base import SourceData, TimeUnit
from chronorec.errors import ChronorecError, warn

FUTURE_SLACK = 86_400
_ORDER_HEAD = ("user", "item", "ts")
_ORDER_TAIL = ("rating", "session", "label")


@dataclass
class Raw:
    """A loader's output before checks: role-named columns, ``_file`` / ``_row``, file list."""

    frame: pl.DataFrame
    files: list[Path]
    columns: dict[str, str]  # role -> source column name (for messages)

    @staticmethod
    def concat(parts: Sequence[Raw]) -> Raw:
        files: list[Path] = []
        frames = []
        columns: dict[str, str] = {}
        for part in parts:
            frames.append(part.frame.with_columns((pl.col("_file") + len(files)).cast(pl.Int32)))
            files.extend(part.files)
            for k, v in part.columns.items():
                columns.setdefault(k, v)
        return Raw(pl.concat(frames, how="diagonal_relaxed"), files, columns)


def with_origin(df: pl.DataFrame, file_index: int = 0) -> pl.DataFrame:
    return df.with_columns(pl.lit(file_index, dtype=pl.Int32).alias("_file"))


def clean_text(expr: pl.Expr, null_values: Sequence[str] = ()) -> pl.Expr:
    """Utf8, stripped, with empty strings and the given tokens as null."""
    e = expr.cast(pl.Utf8).str.strip_chars()
    nulls = ["", *null_values]
    return pl.when(~e.is_in(nulls)).then(e)


class _Locator:
    def __init__(self, raw: Raw) -> None:
        self.raw = raw

    def error(self, mask: pl.Series, role: str, message: str) -> ChronorecError:
        """Error at the first row where ``mask`` holds; ``{n}`` / ``{value}`` are filled in."""
        df = self.raw.frame
        idx = int(mask.arg_true()[0])
        file = self.raw.files[int(df["_file"][idx])] if "_file" in df.columns else self.raw.files[0]
        row = int(df["_row"][idx]) if "_row" in df.columns else None
        value = str(df[role][idx]) if role in df.columns else ""
        value = value if len(value) <= 60 else value[:57] + "..."
        same_file = df["_file"] == df["_file"][idx] if "_file" in df.columns else None
        n = int(mask.sum()) if same_file is None else int((mask & same_file).sum())
        text = message.format(n=n, value=value, s="" if n == 1 else "s")
        return ChronorecError(text, file=file, column=self.raw.columns.get(role, role), row=row)


def _nan_ids(ids: pl.Series) -> pl.Series:
    """Where a numeric id column holds NaN written as text (``nan``, ``NaN``: a float column saved
    as text), a missing id rather than an id named "nan". Text ids are left alone."""
    nan = (ids.str.to_lowercase() == "nan").fill_null(False)
    if not nan.any():
        return nan
    numeric = ids.cast(pl.Float64, strict=False).is_not_null() | ids.is_null()
    return nan if bool(numeric.all()) else pl.repeat(False, ids.len(), eager=True)  # text ids: 'nan' is a name


def _check_ids(raw: Raw, drop: bool) -> Raw:
    df = raw.frame.with_columns(clean_text(pl.col("user")), clean_text(pl.col("item")))
    raw = Raw(df, raw.files, raw.columns)
    for role in ("user", "item"):
        checks = ((raw.frame[role].is_null(), "empty", ""),
                  (_nan_ids(raw.frame[role]), "NaN", " in a numeric id column"))
        for mask, what, where in checks:
            if mask.any():
                if not drop:
                    raise _Locator(raw).error(mask, role, f"{what} {role} id{where} ({{n}} row{{s}} in this file)")
                warn(f"dropped {int(mask.sum())} rows with an {what} {role} id")
                raw = Raw(raw.frame.filter(~mask), raw.files, raw.columns)
    return raw


def _check_time(raw: Raw, unit: TimeUnit, drop: bool) -> tuple[Raw, bool]:
    parsed = parse_time(raw.frame["ts"], unit)
    loc = _Locator(raw)
    want = UNIT_WORDS.get(parsed.unit, parsed.unit)
    if parsed.invalid.any():
        raise loc.error(
            parsed.invalid,
            "ts",
            f"'{{value}}' is not a valid time ({{n}} such row{{s}}; column read as {want})",
        )
    if parsed.missing.any():
        if not drop:
            raise loc.error(parsed.missing, "ts", "missing or NaN time ({n} row{s} in this file)")
        warn(f"dropped {int(parsed.missing.sum())} rows with a missing or NaN time")
    sec = parsed.seconds
    neg = sec.fill_null(0) < 0
    if neg.any():
        raise loc.error(neg, "ts", f"negative time '{{value}}' ({{n}} row{{s}}; column read as {want})")
    limit = int(time.time()) + FUTURE_SLACK
    future = sec.fill_null(0) > limit
    if future.any():
        raise loc.error(
            future, "ts", f"time '{{value}}' is in the far future ({{n}} row{{s}}; column read as {want})"
        )
    df = raw.frame.with_columns(sec.alias("ts"))
    if parsed.missing.any():
        df = df.filter(~parsed.missing)
    return Raw(df, raw.files, raw.columns), parsed.subsecond


def _check_numbers(raw: Raw) -> Raw:
    df = raw.frame
    if "rating" in df.columns and df["rating"].dtype != pl.Float64:
        text = df["rating"].cast(pl.Utf8).str.strip_chars()
        val = text.cast(pl.Float64, strict=False)
        bad = text.is_not_null() & (text != "") & val.is_null()
        if bad.any():
            raise _Locator(raw).error(bad, "rating", "rating '{value}' is not a number ({n} row{s})")
        df = df.with_columns(val.alias("rating"))
    if "label" in df.columns:
        text = df["label"].cast(pl.Utf8).str.strip_chars()
        bad = ~text.is_in(["0", "1"]).fill_null(False)
        if bad.any():
            raise _Locator(raw).error(bad, "label", "label '{value}' is not 0 or 1 ({n} row{s})")
        df = df.with_columns(text.cast(pl.Int8).alias("label"))
    return Raw(df, raw.files, raw.columns)


def order_columns(df: pl.DataFrame, side: Sequence[str]) -> pl.DataFrame:
    head = [c for c in _ORDER_HEAD if c in df.columns]
    sides = [c for c in side if c in df.columns]
    tail = [c for c in _ORDER_TAIL if c in df.columns]
    rest = [c for c in df.columns if c not in (*head, *sides, *tail) and not c.startswith("_")]
    return df.select(*head, *sides, *rest, *tail)


def finish(
    raw: Raw, side: Sequence[str], *, time_unit: TimeUnit = "auto", options: Mapping | None = None
) -> tuple[pl.DataFrame, bool]:
    """Check and canonicalise; returns (table, had sub-second times)."""
    drop = bool((options or {}).get("drop_invalid", False))
    raw = _check_ids(raw, drop)
    raw, subsecond = _check_time(raw, time_unit, drop)
    raw = _check_numbers(raw)
    texts = [
        c for c in raw.frame.columns if c not in (*_ORDER_HEAD, "rating", "label") and not c.startswith("_")
    ]
    df = raw.frame.with_columns(clean_text(pl.col(c)) for c in texts)
    df = df.with_columns(pl.col("ts").cast(pl.Int64))
    return order_columns(df, side), subsecond


def granularity(ts: pl.Series, subsecond: bool) -> str:
    if subsecond:
        return "millisecond-truncated"
    if len(ts) and bool((ts % 86_400 == 0).all()):
        return "day"
    return "second"


def unique_attrs(
    table: pl.DataFrame, file: Path, columns: Mapping[str, str], key: str = "item"
) -> pl.DataFrame:
    """One row per item; an item given two different non-null values of an attribute is an error.

    ``table`` holds ``key``, the attribute columns (already cleaned) and ``_row``.
    """
    attrs = [c for c in table.columns if c not in (key, "_row")]
    for col in attrs:
        firsts = (
            table.filter(pl.col(col).is_not_null())
            .group_by(key, maintain_order=True)
            .agg(pl.col(col).first().alias("_v"), pl.col("_row").first().alias("_r0"))
        )
        clash = (
            table.join(firsts, on=key)
            .filter(pl.col(col).is_not_null() & (pl.col(col) != pl.col("_v")))
            .sort("_row")
            .head(1)
        )
        if clash.height:
            r = clash.row(0, named=True)
            raise ChronorecError(
                f"item '{r[key]}' has two different {col} values: '{r['_v']}' (row {r['_r0']}) and "
                f"'{r[col]}'",
                file=file,
                column=columns.get(col, col),
                row=int(r["_row"]),
            )
    return table.group_by(key, maintain_order=True).agg(pl.col(a).drop_nulls().first() for a in attrs)


def attach_item_attrs(
    events: pl.DataFrame,
    attrs: pl.DataFrame,
    file: Path,
    columns: Mapping[str, str],
    *,
    what: str = "attributes",
) -> pl.DataFrame:
    """Left-join per-item attributes onto the events (replacing same-named columns)."""
    table = unique_attrs(attrs, file, columns)
    names = [c for c in table.columns if c != "item"]
    joined = events.drop([c for c in names if c in events.columns]).join(
        table, on="item", how="left", maintain_order="left"
    )
    known = table["item"].implode()
    missing = events.filter(~pl.col("item").is_in(known))
    if missing.height:
        n_items = missing["item"].n_unique()
        warn(
            f"{file}: {n_items} of {events['item'].n_unique()} event items ({missing.height} events) have no "
            f"{what} there; their {'/'.join(names)} is null"
        )
    return joined


def build(
    name: str,
    raw: Raw,
    side: Sequence[str],
    *,
    time_unit: TimeUnit = "auto",
    options: Mapping | None = None,
    impressions: Raw | None = None,
) -> SourceData:
    """Run :func:`finish` on the events (and impressions) and wrap the result in :class:`SourceData`."""
    events, subsecond = finish(raw, side, time_unit=time_unit, options=options)
    files = list(dict.fromkeys(raw.files))
    imps = None
    if impressions is not None:
        imps, _ = finish(impressions, side, time_unit=time_unit, options=options)
        files.extend(f for f in impressions.files if f not in files)
    present = [s for s in side if s in events.columns]
    return SourceData(name, events, present, files, imps, granularity(events["ts"], subsecond))

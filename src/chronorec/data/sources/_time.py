"""Time columns to Int64 seconds since the Unix epoch (UTC), with the unit detected or stated.

``time_unit="auto"`` decides once per column:

1. A Parquet column of Datetime / Date dtype is converted exactly; any other numeric dtype is
   numeric. A text column is numeric when at least half of its non-empty values parse as numbers,
   otherwise ISO; values that do not fit the chosen kind are errors naming the first such row
   (so text in a timestamp column is reported, never silently dropped).
2. Numeric unit from the *median* magnitude of the values: >= 1e17 nanoseconds, >= 1e14
   microseconds, >= 1e11 milliseconds, else seconds. 1e11 seconds is the year 5138 while 1e11 ms
   is March 1973, so no real log is ambiguous (a millisecond log from before 1973 must state
   ``ms``). The median, not the maximum, so one corrupt value cannot rescale a whole column; it
   fails the far-future check instead.
3. Fractions (float seconds, milliseconds, ISO fractions) are floored to whole seconds; when any
   value had a fractional second the source granularity is "millisecond-truncated".

ISO strings: ``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]HH:MM[:SS[.fff...]]`` with an optional ``Z`` or
``+HH:MM`` offset; naive times are taken as UTC. ``time_unit`` ``s`` / ``ms`` / ``iso`` skips
detection. Empty cells and ``NaN`` are *missing* (reported with a count); anything else that does
not parse is *invalid*.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from chronorec.data.sources.base import TimeUnit

_DIVISOR = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_ISO_FORMATS: tuple[tuple[str, bool], ...] = (
    ("%Y-%m-%d %H:%M:%S%.f%:z", True),
    ("%Y-%m-%d %H:%M:%S%.f", False),
    ("%Y-%m-%d %H:%M%:z", True),
    ("%Y-%m-%d %H:%M", False),
    ("%Y-%m-%d", False),
)
UNIT_WORDS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "iso": "ISO dates",
}


@dataclass
class ParsedTime:
    seconds: pl.Series  # Int64, null where missing or invalid
    missing: pl.Series  # Boolean: empty, null or NaN
    invalid: pl.Series  # Boolean: present but not a time of the detected kind
    unit: str  # "s", "ms", "us", "ns" or "iso" (for messages)
    subsecond: bool  # some value had a fractional second (truncated)


def numeric_unit(magnitude: float) -> str:
    if magnitude >= 1e17:
        return "ns"
    if magnitude >= 1e14:
        return "us"
    if magnitude >= 1e11:
        return "ms"
    return "s"


def _numeric(f: pl.Series, ints: pl.Series, missing: pl.Series, unit: str) -> ParsedTime:
    invalid = ~missing & (f.is_null() | f.is_infinite()).fill_null(True)
    ok = ~missing & ~invalid
    if unit == "auto":
        mag = f.filter(ok).abs().median()
        unit = numeric_unit(float(mag)) if mag is not None else "s"  # type: ignore[arg-type]
    div = _DIVISOR[unit]
    frame = pl.DataFrame({"f": f, "i": ints, "ok": ok})
    out = frame.select(
        sec=pl.when(~pl.col("ok"))
        .then(None)
        .when(pl.col("i").is_not_null())
        .then(pl.col("i") // div)
        .otherwise((pl.col("f") / div).floor().cast(pl.Int64, strict=False)),
        frac=pl.col("ok")
        & pl.when(pl.col("i").is_not_null())
        .then(pl.col("i") % div != 0)
        .otherwise((pl.col("f") / div) != (pl.col("f") / div).floor()),
    )
    sec = out["sec"]
    overflow = ok & sec.is_null()  # too large for Int64 seconds
    return ParsedTime(sec, missing, invalid | overflow, unit, bool(out["frac"].any()))


def _iso(text: pl.Series, missing: pl.Series) -> ParsedTime:
    norm = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[T ]", "$1 ").str.replace(r"[Zz]$", "+00:00")
    attempts = []
    for fmt, aware in _ISO_FORMATS:
        dtype = pl.Datetime("us", "UTC") if aware else pl.Datetime("us")
        attempts.append(norm.str.strptime(dtype, fmt, strict=False).dt.epoch("us"))
    us = pl.DataFrame({str(k): a for k, a in enumerate(attempts)}).select(pl.coalesce(pl.all()))[:, 0]
    invalid = ~missing & us.is_null()
    sec = us // 1_000_000
    frac = bool((us % 1_000_000 != 0).any())
    return ParsedTime(sec, missing, invalid, "iso", frac)


def _constant(value: object, n: int, dtype: pl.DataType) -> pl.Series:
    return pl.repeat(value, n, dtype=dtype, eager=True)


def parse_time(s: pl.Series, unit: TimeUnit = "auto") -> ParsedTime:
    """Convert a raw time column (Utf8 or numeric / temporal dtype) to Int64 seconds."""
    dtype, n = s.dtype, len(s)
    never = _constant(False, n, pl.Boolean())
    if dtype == pl.Date:
        return ParsedTime(s.cast(pl.Int64) * 86_400, s.is_null(), never, "iso", False)
    if isinstance(dtype, pl.Datetime):
        us = s.dt.epoch("us")
        return ParsedTime(us // 1_000_000, s.is_null(), never, "iso", bool((us % 1_000_000 != 0).any()))
    if dtype.is_numeric():
        if unit == "iso":
            return ParsedTime(_constant(None, n, pl.Int64()), s.is_null(), s.is_not_null(), "iso", False)
        f = s.cast(pl.Float64)
        ints = s.cast(pl.Int64, strict=False) if dtype.is_integer() else _constant(None, n, pl.Int64())
        return _numeric(f, ints, s.is_null() | f.is_nan().fill_null(False), unit)
    if unit != "iso" and dtype == pl.Utf8:
        ints = s.cast(pl.Int64, strict=False)
        if ints.null_count() == s.null_count():  # every value an integer: the numeric path, no text copy
            return parse_time(ints, unit)
    text = s.cast(pl.Utf8).str.strip_chars()
    f = text.cast(pl.Float64, strict=False)
    missing = text.is_null() | (text == "").fill_null(False) | f.is_nan().fill_null(False)
    if unit == "auto":
        present = int((~missing).sum())
        numeric = int((~missing & f.is_not_null()).sum())
        unit = "s" if present == 0 or numeric * 2 >= present else "iso"
        unit = "auto" if unit == "s" else unit  # numeric magnitude still to be detected
    if unit == "iso":
        return _iso(text, missing)
    ints = text.cast(pl.Int64, strict=False)
    return _numeric(f, ints, missing, unit)

"""Session-based click logs: ``yoochoose`` (RecSys Challenge 2015) and ``diginetica`` (CIKM Cup 2016).

Sessions have no user, so the session is the user.

``yoochoose`` reads either layout:

- prepared (session-rec ``rsc15``): ``SessionId<TAB>ItemId<TAB>Time`` with a header, float unix
  seconds (fractions truncated: granularity "millisecond-truncated"). A folder means its
  ``*_train_full.txt`` followed by ``*_test.txt`` (the two are session-disjoint; ``_train_tr`` /
  ``_train_valid`` are subsets of ``_train_full`` and are not read).
- raw ``yoochoose-clicks.dat``: no header, ``session,ISO time,item,category``; the category
  ``0`` means "missing" in that release -> null (``S`` = special offer and brand ids are kept).

A file whose first field of the first line is numeric is taken as raw ``.dat``. ``user`` =
the session id; there is no separate ``session`` column.

``diginetica``: ``train-item-views.csv`` (``sessionId;userId;itemId;timeframe;eventdate``):
``ts`` = ``eventdate`` (UTC midnight) + ``timeframe`` milliseconds (floored to seconds);
``user`` = ``userId`` when present, else ``session:<sessionId>`` (prefixed so that a session id
never collides with a user id; ``NA`` and empty mean absent); ``session`` = ``sessionId``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from chronorec.data.sources._columns import resolve
from chronorec.data.sources._finish import Raw, build, clean_text, with_origin
from chronorec.data.sources._io import (
    check_dir_or_file,
    check_file,
    find,
    first_lines,
    head_bytes,
    open_delimited,
)
from chronorec.data.sources._time import parse_time
from chronorec.data.sources.base import Request, SourceData, register
from chronorec.data.sources.generic import read_table
from chronorec.errors import ChronorecError

PREPARED = {"user": ("SessionId",), "item": ("ItemId",), "time": ("Time",)}
DAT_NAMES = ["session", "time", "item", "category"]


def _is_raw_dat(path: Path) -> bool:
    lines = first_lines(head_bytes(check_file(path)), 1)
    first = lines[0].replace("\t", ",").split(",")[0].strip() if lines else ""
    return first.isdigit()


def _yoochoose_files(path: Path) -> list[Path]:
    path = check_dir_or_file(path)
    if path.is_file():
        return [path]
    full, test = find(path, ["*_train_full.txt"]), find(path, ["*_test.txt"])
    if full and test:
        return [full, test]
    dat = find(path, ["*clicks*.dat", "*clicks*.dat.gz"])
    if dat:
        return [dat]
    raise ChronorecError(
        "expected *_train_full.txt + *_test.txt or a *clicks*.dat file in this folder", file=path
    )


def _read_dat(path: Path, sep: str | None) -> Raw:
    table = open_delimited(path, sep=sep or ",", names=DAT_NAMES)
    df = table.read(
        {"user": "session", "ts": "time", "item": "item", "category": "category"},
        required=("user", "item", "ts"),
    )
    df = df.with_columns(clean_text(pl.col("category"), ["0"]))
    return Raw(
        with_origin(df), [path], {"user": "session", "ts": "time", "item": "item", "category": "category"}
    )


@register(
    "yoochoose",
    "YOOCHOOSE clicks: prepared SessionId/ItemId/Time TSV or raw clicks .dat",
    takes_mapping=False,
)
def load_yoochoose(req: Request) -> SourceData:
    parts = []
    for f in _yoochoose_files(req.path):
        if _is_raw_dat(f):
            parts.append(_read_dat(f, req.sep))
        else:
            parts.append(read_table(f, sep=req.sep, optional=(), defaults=PREPARED))
    raw = Raw.concat(parts)
    side = ["category"] if "category" in raw.frame.columns else []
    return build(req.name, raw, side, time_unit=req.time_unit, options=req.options)


DIGI = {
    "session": ("sessionId",),
    "user": ("userId",),
    "item": ("itemId",),
    "timeframe": ("timeframe",),
    "eventdate": ("eventdate",),
}


def _bad(df: pl.DataFrame, mask: pl.Series, path: Path, column: str, what: str) -> ChronorecError:
    idx = int(mask.arg_true()[0])
    return ChronorecError(
        f"{what} ({int(mask.sum())} rows)", file=path, column=column, row=int(df["_row"][idx])
    )


@register(
    "diginetica", "DIGINETICA item views: sessionId;userId;itemId;timeframe;eventdate", takes_mapping=False
)
def load_diginetica(req: Request) -> SourceData:
    path = check_dir_or_file(req.path)
    if path.is_dir():
        found = find(path, ["*item-views*.csv", "*item-views*.csv.gz"])
        if found is None:
            raise ChronorecError("no *item-views*.csv in this folder", file=path)
        path = found
    table = open_delimited(path, sep=req.sep)
    cols = resolve(
        table.header,
        file=path,
        required=("session", "item", "timeframe", "eventdate"),
        optional=("user",),
        defaults=DIGI,
    )
    df = table.read(cols, required=("session", "item"))
    day = parse_time(df.select(clean_text(pl.col("eventdate"))).to_series(), "iso")
    if (day.invalid | day.missing).any():
        raise _bad(
            df, day.invalid | day.missing, path, cols["eventdate"], "eventdate is not a YYYY-MM-DD date"
        )
    frame_text = df["timeframe"].str.strip_chars()
    ms = frame_text.cast(pl.Int64, strict=False)
    if ms.is_null().any() or (ms < 0).any():
        raise _bad(
            df,
            ms.is_null() | (ms < 0),
            path,
            cols["timeframe"],
            "timeframe is not a non-negative integer (ms)",
        )
    session = clean_text(pl.col("session"))
    user = clean_text(pl.col("user"), ["NA"]) if "user" in df.columns else pl.lit(None, dtype=pl.Utf8)
    out = df.with_columns(ts=(day.seconds + ms // 1000).cast(pl.Utf8)).select(
        "_row",
        pl.coalesce(user, pl.lit("session:") + session).alias("user"),
        "item",
        "ts",
        session.alias("session"),
    )
    names = {
        "user": cols.get("user", cols["session"]),
        "item": cols["item"],
        "ts": cols["eventdate"],
        "session": cols["session"],
    }
    raw = Raw(with_origin(out), [path], names)
    data = build(req.name, raw, [], time_unit="s", options=req.options)
    if bool((ms % 1000 != 0).any()):
        data = dataclasses.replace(data, time_granularity="millisecond-truncated")
    return data

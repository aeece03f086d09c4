"""Generic tables: ``csv``, ``tsv`` and ``parquet``, one file of one event per row.

Columns are found by name (see :mod:`._columns`: ``user_id``/``userId``/``user``, ``item_id``/
``movieId``/``asin``/``item``, ``timestamp``/``time``/``ts``/``unixReviewTime``, ``category``/
``cate_id``/``genre``, ``brand``, ``rating``, ``session_id``...) or given by a mapping
``{"user": "userId", "item": "movieId", "time": "timestamp", "category": "genre"}``. Any other
mapped key (``{"city": "city_name"}``) becomes an extra categorical item side feature with that
name. ``side`` is ``category``, ``brand`` (when present), then the extras in mapping order.

The separator is sniffed unless given (``tsv`` defaults to tab); gzip is detected by content. Time
may be seconds, milliseconds, float seconds or ISO strings, detected per :mod:`._time` unless
``time_unit`` says. Options: ``encoding`` (default utf-8, e.g. ``latin-1``), ``null_values``
(tokens meaning "unknown" in side columns, e.g. ``["0"]``), ``drop_invalid``.

:func:`read_table` is also the building block of the layout-specific single-table sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from chronorec.data.sources._columns import CANONICAL, resolve
from chronorec.data.sources._finish import Raw, build, clean_text, with_origin
from chronorec.data.sources._io import (
    PARQUET_MAGIC,
    check_file,
    collect_parquet,
    open_delimited,
    read_parquet,
)
from chronorec.data.sources.base import Request, SourceData, register
from chronorec.errors import ChronorecError

OPTIONAL = ("category", "brand", "rating", "session")
GENERIC_OPTIONS = {
    "encoding": "text encoding of the file (default utf-8), e.g. latin-1",
    "null_values": "tokens meaning 'unknown' in side columns, e.g. ['0', 'NULL']",
}


def out_name(role: str) -> str:
    return "ts" if role == "time" else role


def is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    with open(path, "rb") as fh:
        return fh.read(4) == PARQUET_MAGIC


def _parquet_text(
    df: pl.DataFrame, keep_raw: Sequence[str], path: Path, columns: Mapping[str, str]
) -> pl.DataFrame:
    """Parquet columns to Utf8 (integral floats as integers, so id 3.0 reads '3'); ``keep_raw`` untouched.

    Nested or binary columns (lists, structs, bytes) cannot be ids or categories: an error.
    """
    exprs = []
    for name, dtype in df.schema.items():
        if dtype.is_nested() or dtype in (pl.Binary, pl.Object):
            raise ChronorecError(
                f"column has type {dtype}; expected text, numbers or times",
                file=path,
                column=columns.get(name, name),
            )
        if name in keep_raw or name == "_row" or dtype == pl.Utf8:
            continue
        col = pl.col(name)
        if dtype.is_float():
            integral = (col.fill_null(0).fill_nan(0) == col.fill_null(0).fill_nan(0).floor()).all()
            col = (
                pl.when(integral)
                .then(col.cast(pl.Int64, strict=False).cast(pl.Utf8))
                .otherwise(col.cast(pl.Utf8))
            )
        exprs.append(col.cast(pl.Utf8).alias(name))
    return df.with_columns(exprs)


def read_table(
    path: Path,
    *,
    mapping: Mapping[str, str] | None = None,
    sep: str | None = None,
    required: Sequence[str] = ("user", "item", "time"),
    optional: Sequence[str] = OPTIONAL,
    defaults: Mapping[str, Sequence[str]] | None = None,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
) -> Raw:
    """Read one table file into a :class:`Raw` frame (role-named Utf8 columns, ``ts`` raw)."""
    path = check_file(Path(path))
    req_out = [out_name(r) for r in required]
    if is_parquet(path):
        lf, header = read_parquet(path)
        cols = resolve(
            header, file=path, required=required, optional=optional, mapping=mapping, defaults=defaults
        )
        lf = lf.with_row_index("_row", offset=1).select(
            pl.col("_row").cast(pl.Int64), *[pl.col(c).alias(out_name(r)) for r, c in cols.items()]
        )
        names = {out_name(r): c for r, c in cols.items()}
        df = _parquet_text(collect_parquet(lf, path), ("ts",), path, names)
    else:
        table = open_delimited(path, sep=sep, encoding=encoding, names=names)
        cols = resolve(
            table.header, file=path, required=required, optional=optional, mapping=mapping, defaults=defaults
        )
        df = table.read({out_name(r): c for r, c in cols.items()}, required=req_out)
    return Raw(with_origin(df), [path], {out_name(r): c for r, c in cols.items()})


def side_of(columns: Sequence[str], mapping: Mapping[str, str] | None = None) -> list[str]:
    """Side features in embedding order: category, brand, then extra mapped keys."""
    extras = [k for k in (mapping or {}) if k not in CANONICAL and k != "ts"]
    return [c for c in ("category", "brand", *extras) if c in columns]


def null_side(raw: Raw, side: Sequence[str], tokens: Sequence[str]) -> Raw:
    if not tokens:
        return raw
    exprs = [clean_text(pl.col(c), [str(t) for t in tokens]) for c in side if c in raw.frame.columns]
    return Raw(raw.frame.with_columns(exprs), raw.files, raw.columns)


def _generic(req: Request, sep: str | None) -> SourceData:
    raw = read_table(req.path, mapping=req.mapping, sep=sep, encoding=req.option("encoding", "utf-8"))
    side = side_of(raw.frame.columns, req.mapping)
    raw = null_side(raw, side, req.option("null_values", ()))
    return build(req.name, raw, side, time_unit=req.time_unit, options=req.options)


@register(
    "csv", "one delimited file (separator sniffed), columns by name or mapping", options=GENERIC_OPTIONS
)
def load_csv(req: Request) -> SourceData:
    return _generic(req, req.sep)


@register("tsv", "one tab-separated file, columns by name or mapping", options=GENERIC_OPTIONS)
def load_tsv(req: Request) -> SourceData:
    return _generic(req, req.sep or "\t")


@register(
    "parquet",
    "one Parquet file, columns by name or mapping",
    options={"null_values": GENERIC_OPTIONS["null_values"]},
)
def load_parquet(req: Request) -> SourceData:
    read_parquet(Path(req.path))  # a Parquet file whatever its name, or a one-line error
    return _generic(req, None)

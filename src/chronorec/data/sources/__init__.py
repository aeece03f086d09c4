"""Source loaders: raw logs in published layouts -> one canonical events table.

>>> from chronorec.data.sources import load_source, list_sources
>>> data = load_source("amazon-csv", "../shared/data/amazon-grocery")   # doctest: +SKIP
>>> data.events.columns, data.side, data.time_granularity                 # doctest: +SKIP
(['user', 'item', 'ts', 'category'], ['category'], 'day')

Every loader returns :class:`SourceData` whose ``events`` follow :mod:`chronorec.data.schema`
(user / item Utf8, ts Int64 seconds, optional category / brand / extra Utf8 side columns, rating
Float64, session Utf8), in source order. Sources, one module per layout family:

=================  ================================================================================
``csv`` ``tsv``    generic table, columns by name or ``mapping`` (:mod:`.generic`)
``parquet``        generic Parquet table (:mod:`.generic`)
``movielens-dat``  ml-1m ``ratings.dat`` (+ ``movies.dat``: first genre) (:mod:`.movielens`)
``ml-latest``      ml-latest ``ratings.csv`` + ``movies.csv`` (first genre + all genres) (:mod:`.movielens`)
``atomic``         RecBole atomic ``.inter`` (+ ``.item``) (:mod:`.atomic`)
``amazon-json``    McAuley 2014 reviews JSON lines + metadata (deepest category, brand) (:mod:`.amazon`)
``amazon-csv``     ReChorus Grocery layout or DIN-style single CSV (:mod:`.amazon`)
``lines``          per-user item lines + parallel timestamp lines (:mod:`.lines`)
``taobao``         DSIN Alibaba display-ad layout: behaviors + labelled impressions (:mod:`.taobao`)
``mobilerec``      MobileRec app interactions (:mod:`.apps`)
``lsapp``          LSApp app usage, "Opened" events only (:mod:`.apps`)
``studentlife``    StudentLife running-app snapshots -> app-open events (:mod:`.apps`)
``yoochoose``      RecSys 2015 clicks, prepared TSV or raw ``.dat`` (:mod:`.sessions`)
``diginetica``     CIKM Cup 2016 item views (:mod:`.sessions`)
=================  ================================================================================

Every problem with the input is a one-line :class:`~chronorec.errors.ChronorecError` naming the file
(and column and 1-based data row where known); repaired problems are warnings with counts.
Options every source accepts: ``drop_invalid`` (drop rows with an empty id or a missing time, with
a warning, instead of failing); with ``item_attrs``: ``attr_mapping`` (roles -> columns of the
attribute table) and ``attr_null`` (category tokens meaning unknown, default ``["0"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from chronorec.data.sources import amazon, apps, atomic, generic, lines, movielens, sessions, taobao
from chronorec.data.sources._columns import check_mapping
from chronorec.data.sources._finish import attach_item_attrs, clean_text, order_columns
from chronorec.data.sources.base import REGISTRY, TIME_UNITS, Request, SourceData, TimeUnit, get_spec
from chronorec.errors import ChronorecError

__all__ = ["SourceData", "describe_sources", "list_sources", "load_item_attrs", "load_source"]
_MODULES = (amazon, apps, atomic, generic, lines, movielens, sessions, taobao)  # imported to register

COMMON_OPTIONS = {
    "drop_invalid": "drop rows with an empty id or missing time (warning with counts) instead of failing",
    "attr_mapping": "with item_attrs: roles -> columns of the attribute table, e.g. {'category': 'cate_last'}",
    "attr_null": "with item_attrs: category tokens meaning unknown (default ['0'])",
}
ATTR_CATEGORY_NAMES = ("cate_last", "category", "cate_id", "i_category", "cate", "genre", "class")


def list_sources() -> list[str]:
    """Registered source names, sorted."""
    return sorted(REGISTRY)


def describe_sources() -> dict[str, str]:
    """Source name -> one-line description."""
    return {name: REGISTRY[name].description for name in list_sources()}


def source_options(name: str) -> dict[str, str]:
    """Options a source accepts (its own and the common ones) with one-line meanings."""
    return {**get_spec(name).options, **COMMON_OPTIONS}


def load_item_attrs(
    path: str | Path, options: dict[str, Any] | None = None
) -> tuple[pl.DataFrame, dict[str, str]]:
    """An item-attribute table (CSV/TSV/Parquet): item id plus category (and brand when present).

    The category column is found among ``cate_last``, ``category``, ``cate_id``, ``i_category``,
    ``cate``, ``genre``, ``class`` unless ``attr_mapping`` names it; ``attr_null`` tokens (default
    ``"0"``, the s3rec / ReChorus convention for "no category") become null. Returns the frame
    (``item``, ``category``[, ``brand``], ``_row``) and role -> source column names.
    """
    opts = options or {}
    raw = generic.read_table(
        Path(path),
        mapping=opts.get("attr_mapping"),
        required=("item", "category"),
        optional=("brand",),
        defaults={"category": ATTR_CATEGORY_NAMES},
    )
    tokens = [str(t) for t in opts.get("attr_null", ["0"])]
    attrs = [c for c in ("category", "brand") if c in raw.frame.columns]
    df = raw.frame.with_columns(clean_text(pl.col("item")), *[clean_text(pl.col(c), tokens) for c in attrs])
    return df.filter(pl.col("item").is_not_null()).select("item", *attrs, "_row"), raw.columns


def load_source(
    name: str,
    path: str | Path,
    *,
    mapping: dict[str, str] | None = None,
    time_unit: TimeUnit = "auto",
    sep: str | None = None,
    item_attrs: str | Path | None = None,
    options: dict | None = None,
) -> SourceData:
    """Load ``path`` with the source ``name`` into the canonical events table.

    ``mapping`` maps roles (user, item, time, category, brand, rating, session, or any extra side
    feature name) to column names; ``time_unit`` is ``auto`` (detected, see
    :mod:`chronorec.data.sources._time`), ``s``, ``ms`` or ``iso``; ``sep`` overrides the sniffed
    separator; ``item_attrs`` is a per-item attribute table whose category (and brand) replace the
    source's own; ``options`` are source-specific (see :func:`source_options`).
    """
    spec = get_spec(name)
    if time_unit not in TIME_UNITS:
        raise ChronorecError(f"time unit '{time_unit}' is not one of {', '.join(TIME_UNITS)}")
    if sep is not None and len(sep) != 1:
        raise ChronorecError(f"separator must be one character, got {sep!r}")
    opts = dict(options or {})
    allowed = {**spec.options, **COMMON_OPTIONS}
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ChronorecError(
            f"source '{name}' has no option {', '.join(map(repr, unknown))}; options: {', '.join(sorted(allowed))}"
        )
    if mapping and not spec.takes_mapping:
        raise ChronorecError(f"source '{name}' has a fixed layout and takes no column mapping; use 'csv'")
    check_mapping(mapping)
    req = Request(name, Path(path).expanduser(), dict(mapping) if mapping else None, time_unit, sep, opts)
    data = spec.loader(req)
    if item_attrs is not None:
        data = _with_item_attrs(data, Path(item_attrs).expanduser(), opts)
    return data


def _with_item_attrs(data: SourceData, path: Path, options: dict) -> SourceData:
    attrs, columns = load_item_attrs(path, options)
    events = attach_item_attrs(data.events, attrs, path, columns)
    side = ["category", *(["brand"] if "brand" in attrs.columns else [])]
    side += [s for s in data.side if s not in side]
    imps = data.impressions
    if imps is not None:
        imps = order_columns(
            attach_item_attrs(imps, attrs, path, columns, what="attributes (impressions)"), side
        )
    files = [*data.files, path] if path not in data.files else data.files
    return SourceData(data.name, order_columns(events, side), side, files, imps, data.time_granularity)

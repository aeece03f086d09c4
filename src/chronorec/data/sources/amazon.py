"""Amazon review layouts: ``amazon-json`` (McAuley 2014 download) and ``amazon-csv`` (prepared CSVs).

``amazon-json``: reviews as JSON lines (``reviews_<Cat>_5.json[.gz]``; fields ``reviewerID``,
``asin``, ``unixReviewTime`` (seconds), ``overall`` -> user, item, ts, rating; a mapping may name
other fields) plus the metadata file ``meta_<Cat>.json[.gz]``, one object per line, often a
Python-literal dict (single quotes) rather than JSON: each line is parsed with ``json.loads``,
falling back to ``ast.literal_eval`` (never ``eval``). Only lines whose ``asin`` occurs in the
reviews are parsed (found by a vectorised regex first), so a full-category metadata dump costs
little. ``categories`` is a list of category paths; ``category`` = the last entry of the deepest
(longest) path, the first such path on ties (DIN/TIN's rule). ``brand`` is kept when any reviewed
item has one (then ``side = ["category", "brand"]``). ``path`` is the reviews file or a folder; the
metadata is ``options["meta"]``, else ``meta_<Cat>.json[.gz]`` beside it, else the only
``meta_*`` file there. Without metadata the events have no category (warning).

``amazon-csv``:

- a folder in the ReChorus Grocery layout: ``train.csv`` + ``dev.csv`` + ``test.csv``
  (``user_id,item_id,time``; tab or comma; extra columns such as ``neg_items`` ignored) merged in
  that order, with ``category`` from ``item_meta.csv`` (``item_id,i_category,...``); or, without
  the split files, ``interactions_with_category.csv`` (``user_id,item_id,cate_id,timestamp``).
  In both, category ``0`` is ReChorus's "no level-2 category" (it maps NaN to 0) -> null, so the
  shared Grocery copy has 56 named categories plus null (57 values counting the unknown bucket,
  which holds 8,349 of 8,713 items). Option ``layout`` = ``split`` / ``merged`` forces one.
- a single CSV file: the DIN-style ``user_id,item_id,time,cate_id`` (Electronics) or any file with
  those roles; there category ``0`` is a real id (DIN numbers categories from 0), unless the file
  is named ``interactions_with_category.csv`` or ``null_values`` says otherwise.
"""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path
from typing import Any

import polars as pl

from chronorec.data.sources._finish import (
    Raw,
    attach_item_attrs,
    build,
    clean_text,
    order_columns,
    with_origin,
)
from chronorec.data.sources._io import check_dir_or_file, check_file, decode, find, read_bytes
from chronorec.data.sources.base import Request, SourceData, register
from chronorec.data.sources.generic import null_side, read_table, side_of
from chronorec.errors import ChronorecError, warn

REVIEW_FIELDS = {"user": "reviewerID", "item": "asin", "ts": "unixReviewTime", "rating": "overall"}
REVIEW_PATTERNS = ("reviews_*.json.gz", "reviews_*.json", "*_5.json.gz", "*_5.json", "*review*.json*")
_ASIN = r"""['"]asin['"]\s*:\s*['"]([^'"]+)['"]"""


def parse_object(line: str) -> Any:
    """One metadata line: JSON, else a Python literal (``ast.literal_eval``, never ``eval``).

    On failure raises ValueError naming the column where the parser that got further stopped.
    """
    try:
        return json.loads(line)
    except json.JSONDecodeError as json_err:
        where = (json_err.colno, f"{json_err.msg} at column {json_err.colno}")
    try:
        return ast.literal_eval(line)
    except SyntaxError as lit_err:
        if (lit_err.offset or 0) > where[0]:
            where = (lit_err.offset or 0, f"{lit_err.msg} at column {lit_err.offset}")
    except (ValueError, TypeError, MemoryError, RecursionError) as lit_err:
        where = (where[0], f"{where[1]}; not a literal either ({type(lit_err).__name__})")
    raise ValueError(where[1])


def deepest_category(categories: Any) -> str | None:
    """Last entry of the longest category path (first longest on ties); None when there is none."""
    if not isinstance(categories, list):
        return None
    paths = [p for p in categories if isinstance(p, list) and p]
    if not paths:
        return None
    best = max(paths, key=len)  # max keeps the first of equal lengths
    return str(best[-1]).strip() or None


def _json_error(data: bytes, path: Path) -> ChronorecError:
    for lineno, raw in enumerate(io.BytesIO(data), 1):
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        try:
            obj = parse_object(text)
        except ValueError as err:
            return ChronorecError(f"line is not a JSON object ({err})", file=path, row=lineno)
        if not isinstance(obj, dict):
            return ChronorecError("line is not a JSON object", file=path, row=lineno)
    return ChronorecError("cannot parse as JSON lines", file=path)


def read_reviews(path: Path, mapping: dict[str, str] | None) -> Raw:
    fields = {**REVIEW_FIELDS, **{("ts" if k == "time" else k): v for k, v in (mapping or {}).items()}}
    data = read_bytes(path)
    decode(data, path)  # names the first invalid UTF-8 byte, if any
    try:
        df = pl.read_ndjson(
            io.BytesIO(data),
            schema=dict.fromkeys(fields.values(), pl.Utf8),
            row_index_name="_row",
            row_index_offset=1,
        )
    except pl.exceptions.PolarsError:
        raise _json_error(data, path) from None
    if df.height == 0:
        raise ChronorecError("no reviews in this file", file=path)
    for role in ("user", "item", "ts"):
        if df[fields[role]].null_count() == df.height:
            try:
                first = parse_object(data.lstrip().split(b"\n", 1)[0].decode("utf-8"))
            except ValueError:
                first = None
            keys = ", ".join(map(str, first)) if isinstance(first, dict) else "?"
            raise ChronorecError(
                f"no '{fields[role]}' field in any line; line 1 has: {keys}", file=path, column=fields[role]
            )
    df = df.select(pl.col("_row").cast(pl.Int64), *[pl.col(v).alias(k) for k, v in fields.items()])
    return Raw(with_origin(df), [path], fields)


def read_meta(path: Path, items: pl.Series) -> pl.DataFrame:
    """Metadata of the given items: item, category, brand, _row (metadata line number)."""
    text = decode(read_bytes(path), path)
    lines = pl.DataFrame({"line": text.splitlines()}).with_row_index("_row", offset=1)
    lines = lines.with_columns(pl.col("line").str.extract(_ASIN, 1).alias("item"))
    wanted = lines.filter(pl.col("item").is_in(items.unique().implode()))
    rows: list[tuple[str | None, str | None]] = []
    for row, line in zip(wanted["_row"], wanted["line"], strict=True):
        try:
            obj = parse_object(line)
        except ValueError as err:
            raise ChronorecError(
                f"metadata line is neither JSON nor a Python literal ({err})",
                file=path,
                row=int(row),
            ) from None
        if not isinstance(obj, dict):
            raise ChronorecError("metadata line is not an object", file=path, row=int(row))
        brand = obj.get("brand")
        rows.append((deepest_category(obj.get("categories")), str(brand).strip() if brand else None))
    meta = pl.DataFrame(rows, schema={"category": pl.Utf8, "brand": pl.Utf8}, orient="row")
    out = pl.concat([wanted.select("item", pl.col("_row").cast(pl.Int64)), meta], how="horizontal")
    return out.select("item", clean_text(pl.col("category")), clean_text(pl.col("brand")), "_row")


def _meta_for(reviews: Path, meta: str | None) -> Path | None:
    if meta is not None:
        return check_file(Path(meta))
    stem = reviews.name.split(".json")[0]
    cat = stem.removeprefix("reviews_").removesuffix("_5")
    for name in (f"meta_{cat}.json.gz", f"meta_{cat}.json"):
        if (reviews.parent / name).exists():
            return reviews.parent / name
    hits = sorted(reviews.parent.glob("meta_*.json*"))
    return hits[0] if len(hits) == 1 else None


@register(
    "amazon-json",
    "Amazon 2014 reviews JSON lines + metadata (deepest category, brand)",
    options={"meta": "the metadata file, when not found beside the reviews"},
)
def load_amazon_json(req: Request) -> SourceData:
    path = check_dir_or_file(req.path)
    reviews = find(path, REVIEW_PATTERNS) if path.is_dir() else path
    if reviews is None:
        raise ChronorecError("no reviews file (reviews_*.json[.gz]) in this folder", file=path)
    raw = read_reviews(check_file(reviews), req.mapping)
    extras = side_of(raw.frame.columns, req.mapping)  # extra mapped review fields
    data = build(req.name, raw, extras, time_unit=req.time_unit, options=req.options)
    meta = _meta_for(reviews, req.option("meta"))
    if meta is None:
        warn(f"{reviews}: no metadata file (meta_*.json) found; events have no category")
        return data
    attrs = read_meta(meta, data.events["item"])
    events = attach_item_attrs(
        data.events, attrs, meta, {"category": "categories", "brand": "brand"}, what="metadata"
    )
    side = ["category", "brand"] if events["brand"].null_count() < events.height else ["category"]
    if "brand" not in side:
        events = events.drop("brand")
    side += [s for s in extras if s not in side]
    return SourceData(
        data.name, order_columns(events, side), side, [reviews, meta], None, data.time_granularity
    )


CSV_DEFAULTS = {"time": ("time", "timestamp"), "category": ("cate_id", "i_category", "category")}


def _rechorus(req: Request, folder: Path) -> SourceData:
    layout = req.option("layout")
    splits = [folder / f"{s}.csv" for s in ("train", "dev", "test")]
    merged = folder / "interactions_with_category.csv"
    has_split = all(p.exists() for p in splits)
    if layout not in (None, "split", "merged"):
        raise ChronorecError(f"option layout must be 'split' or 'merged', got {layout!r}")
    tokens = req.option("null_values", ["0"])
    if has_split and layout != "merged":
        parts = [read_table(p, sep=req.sep, optional=(), defaults=CSV_DEFAULTS) for p in splits]
        data = build(req.name, Raw.concat(parts), [], time_unit=req.time_unit, options=req.options)
        meta = check_file(folder / "item_meta.csv")
        attrs = read_table(meta, required=("item", "category"), optional=(), defaults=CSV_DEFAULTS)
        table = attrs.frame.select(clean_text(pl.col("item")), clean_text(pl.col("category"), tokens), "_row")
        events = attach_item_attrs(data.events, table, meta, attrs.columns, what="item_meta rows")
        return SourceData(data.name, events, ["category"], [*splits, meta], None, data.time_granularity)
    if layout != "split" and merged.exists():
        raw = null_side(
            read_table(merged, sep=req.sep, optional=("category",), defaults=CSV_DEFAULTS),
            ["category"],
            tokens,
        )
        return build(req.name, raw, ["category"], time_unit=req.time_unit, options=req.options)
    split_files = "train.csv, dev.csv, test.csv (+ item_meta.csv)"
    want = {"split": split_files, "merged": merged.name}.get(layout, f"{split_files} or {merged.name}")
    raise ChronorecError(f"expected {want} in this folder", file=folder)


@register(
    "amazon-csv",
    "Amazon CSVs: ReChorus train/dev/test + item_meta, merged CSV, or DIN-style user_id,item_id,time,cate_id",
    options={
        "layout": "for a folder: 'split' (train/dev/test + item_meta) or 'merged' (interactions_with_category)",
        "null_values": "category tokens meaning unknown (default ['0'] for the ReChorus files, none otherwise)",
    },
)
def load_amazon_csv(req: Request) -> SourceData:
    path = check_dir_or_file(req.path)
    if path.is_dir():
        if req.mapping:
            raise ChronorecError("a column mapping needs a single file, not a folder", file=path)
        return _rechorus(req, path)
    default_null = ["0"] if path.name == "interactions_with_category.csv" else []
    raw = read_table(
        path,
        mapping=req.mapping,
        sep=req.sep,
        optional=("category", "brand", "rating"),
        defaults=CSV_DEFAULTS,
    )
    side = side_of(raw.frame.columns, req.mapping)
    raw = null_side(raw, side, req.option("null_values", default_null))
    return build(req.name, raw, side, time_unit=req.time_unit, options=req.options)

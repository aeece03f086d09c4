"""RecBole atomic files: ``atomic``.

``<name>.inter`` is tab-separated with typed headers ``field:type`` (``user_id:token
item_id:token rating:float timestamp:float``); types are ``token``, ``token_seq``, ``float``,
``float_seq``. Roles are found on the field names (``user_id``, ``item_id``, ``timestamp``,
``rating`` by default; a mapping may name others, without the ``:type`` suffix). ``path`` is the
``.inter`` file or a folder holding exactly one.

The optional ``<name>.item`` beside it gives ``category`` = the first token of ``class:token_seq``
(``Animation Children's Comedy`` -> ``Animation``), or, without a ``class`` field, of the first
``token_seq`` / ``token`` field other than the item id (option ``category_field`` names another
field); a ``brand`` field, when present, becomes ``brand``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from chronorec.data.sources._columns import resolve
from chronorec.data.sources._finish import (
    Raw,
    attach_item_attrs,
    build,
    clean_text,
    order_columns,
    with_origin,
)
from chronorec.data.sources._io import check_dir_or_file, check_file, open_delimited
from chronorec.data.sources.base import Request, SourceData, register
from chronorec.data.sources.generic import out_name, side_of
from chronorec.errors import ChronorecError

DEFAULTS = {"user": ("user_id",), "item": ("item_id",), "time": ("timestamp",), "rating": ("rating",)}


def _field(header: str) -> tuple[str, str]:
    name, _, typ = header.partition(":")
    return name, typ


def _inter_file(path: Path) -> Path:
    path = check_dir_or_file(path)
    if path.is_file():
        return check_file(path)
    hits = sorted(path.glob("*.inter"))
    if len(hits) != 1:
        found = ", ".join(p.name for p in hits) or "none"
        raise ChronorecError(f"expected exactly one .inter file in this folder, found {found}", file=path)
    return check_file(hits[0])


def _category_field(
    fields: list[tuple[str, str]], item_field: str, wanted: str | None, file: Path
) -> tuple[str, str]:
    names = [n for n, _ in fields]
    if wanted is not None:
        if wanted not in names:
            raise ChronorecError(
                f"no field '{wanted}'; fields are: {', '.join(names)}", file=file, column=wanted
            )
        return next(f for f in fields if f[0] == wanted)
    for f in fields:
        if f[0] == "class":
            return f
    for f in fields:
        if f[0] != item_field and f[1] in ("token_seq", "token"):
            return f
    raise ChronorecError(f"no token field to use as category; fields are: {', '.join(names)}", file=file)


@register(
    "atomic",
    "RecBole atomic .inter (+ .item: first token of class as category)",
    options={"category_field": "field of the .item file to take the category from (default class)"},
)
def load_atomic(req: Request) -> SourceData:
    inter = _inter_file(req.path)
    table = open_delimited(inter, sep=req.sep or "\t")
    typed = table.header
    plain = [_field(h)[0] for h in typed]
    back = dict(zip(plain, typed, strict=True))
    roles = resolve(
        plain,
        file=inter,
        required=("user", "item", "time"),
        optional=("rating",),
        mapping=req.mapping,
        defaults=DEFAULTS,
    )
    df = table.read({out_name(r): back[c] for r, c in roles.items()}, required=("user", "item", "ts"))
    raw = Raw(with_origin(df), [inter], {out_name(r): c for r, c in roles.items()})
    side = side_of(df.columns, req.mapping)
    data = build(req.name, raw, side, time_unit=req.time_unit, options=req.options)
    item_file = inter.with_suffix(".item")
    if not item_file.exists():
        return data
    items = open_delimited(item_file, sep=req.sep or "\t")
    fields = [_field(h) for h in items.header]
    item_field = roles["item"] if roles["item"] in {n for n, _ in fields} else "item_id"
    if item_field not in {n for n, _ in fields}:
        raise ChronorecError(
            f"no '{item_field}' field; fields are: {', '.join(n for n, _ in fields)}", file=item_file
        )
    cat_name, cat_type = _category_field(fields, item_field, req.option("category_field"), item_file)
    typed_items = dict(zip([n for n, _ in fields], items.header, strict=True))
    cols = {"item": typed_items[item_field], "category": typed_items[cat_name]}
    if "brand" in typed_items and cat_name != "brand":
        cols["brand"] = typed_items["brand"]
    attrs = items.read(cols, required=("item",))
    first = (
        pl.col("category").str.strip_chars().str.split(" ").list.first()
        if cat_type.endswith("_seq")
        else pl.col("category")
    )
    attrs = attrs.select(
        clean_text(pl.col("item")).alias("item"),
        clean_text(first).alias("category"),
        *([clean_text(pl.col("brand")).alias("brand")] if "brand" in cols else []),
        "_row",
    )
    events = attach_item_attrs(
        data.events, attrs, item_file, {"category": cat_name, "brand": "brand"}, what="item"
    )
    side = [s for s in ("category", "brand") if s in attrs.columns] + [
        s for s in data.side if s not in ("category", "brand")
    ]
    return SourceData(
        data.name, order_columns(events, side), side, [inter, item_file], None, data.time_granularity
    )

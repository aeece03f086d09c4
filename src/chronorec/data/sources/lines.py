"""Per-user line files: ``lines``.

Two parallel text files, one line per user, whitespace-separated (the TiCoSeRec / S3-Rec layout)::

    Beauty_item_org_rank.txt:  1 7873 6846 4585 1 5406          (user id, then items in order)
    Beauty_time_org_rank.txt:  1 1318896000 1318896000 ...     (the same user id, then their times)

Line k of the items file pairs with line k of the times file: the user ids must agree and both
lines must have the same number of entries, else a :class:`ChronorecError` names the times file
and the line. Blank lines are skipped (in both files alike). ``path`` is the items file (the
times file is the same name with ``_item_`` -> ``_time_``, or option ``times``) or a folder with
exactly one ``*_item_*`` / ``*_time_*`` pair. Events keep file order (user by user, in the order
given), which ``prepare``'s stable sort preserves for same-time ties.

Items usually come without categories; pass ``item_attrs=`` a table such as
``item_attributes_from_s3rec.csv`` (``item_id, ..., cate_last``; ``cate_last`` 0 = unknown -> null).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from chronorec.data.sources._finish import Raw, build, with_origin
from chronorec.data.sources._io import check_dir_or_file, check_file, read_lines
from chronorec.data.sources.base import Request, SourceData, register
from chronorec.errors import ChronorecError


def _pair(path: Path, times: str | None) -> tuple[Path, Path]:
    path = check_dir_or_file(path)
    if path.is_dir():
        items = sorted(p for p in path.glob("*_item_*") if p.is_file())
        stamps = sorted(p for p in path.glob("*_time_*") if p.is_file())
        if len(items) != 1 or (len(stamps) != 1 and times is None):
            found = ", ".join(p.name for p in [*items, *stamps]) or "none"
            raise ChronorecError(
                f"expected one *_item_* file and one *_time_* file in this folder, found: {found}", file=path
            )
        return check_file(items[0]), check_file(Path(times) if times else stamps[0])
    if times is not None:
        return check_file(path), check_file(Path(times))
    if "_item_" not in path.name:
        raise ChronorecError(
            "cannot find the timestamps file: name the items file *_item_* (times *_time_*) or pass "
            "options={'times': PATH}",
            file=path,
        )
    stamps = path.with_name(path.name.replace("_item_", "_time_", 1))
    if not stamps.exists():
        raise ChronorecError(f"timestamps file {stamps.name} not found beside the items file", file=path)
    return check_file(path), check_file(stamps)


def _tokens(path: Path) -> pl.DataFrame:
    df = read_lines(path)
    line = pl.col("line").str.strip_chars()
    if df.select(pl.col("line").str.contains(r"[\t\f\v]| {2}").any()).item():
        line = line.str.replace_all(r"\s+", " ")  # only pay for the regex when separators vary
    df = df.with_columns(line.str.split(" ").alias("_parts"))
    return df.select(
        "_row",
        pl.col("_parts").list.first().alias("user"),
        pl.col("_parts").list.slice(1).alias("values"),
    )


@register(
    "lines",
    "per-user lines 'user item1 item2 ...' + parallel timestamp lines",
    options={"times": "the timestamps file, when not found by name"},
    takes_mapping=False,
)
def load_lines(req: Request) -> SourceData:
    items_file, times_file = _pair(req.path, req.option("times"))
    items = _tokens(items_file)
    stamps = _tokens(times_file)
    if items.height != stamps.height:
        short, n = (times_file, stamps.height) if stamps.height < items.height else (items_file, items.height)
        raise ChronorecError(
            f"has {n} user lines but {items_file.name} has {items.height} and {times_file.name} {stamps.height}",
            file=short,
            row=n + 1 if short == times_file else None,
        )
    # line k pairs with line k: the frames are aligned row by row (same height, checked above)
    df = pl.concat(
        [items, stamps.select(_trow="_row", _tuser="user", _times="values")], how="horizontal"
    )
    df = df.with_columns(
        pl.col("values").list.len().alias("_n"),
        pl.col("_times").list.len().alias("_nt"),
    )
    bad_user = df.filter(pl.col("user") != pl.col("_tuser")).head(1)
    if bad_user.height:
        r = bad_user.row(0, named=True)
        raise ChronorecError(
            f"user id '{r['_tuser']}' differs from '{r['user']}' on line {r['_row']} of {items_file.name}",
            file=times_file,
            row=int(r["_trow"]),
        )
    bad_len = df.filter(pl.col("_n") != pl.col("_nt")).head(1)
    if bad_len.height:
        r = bad_len.row(0, named=True)
        raise ChronorecError(
            f"user '{r['user']}' has {r['_nt']} timestamps but {r['_n']} items on line {r['_row']} of "
            f"{items_file.name}",
            file=times_file,
            row=int(r["_trow"]),
        )
    events = (
        df.filter(pl.col("_n") > 0)
        .select(
            "user",
            pl.col("_trow").alias("_row"),
            pl.col("values").alias("item"),
            pl.col("_times").alias("ts"),
        )
        .explode(["item", "ts"])
    )
    raw = Raw(
        with_origin(events, 1),
        [items_file, times_file],
        {"user": "user id", "item": "items", "ts": "timestamps"},
    )
    return build(req.name, raw, [], time_unit=req.time_unit, options=req.options)

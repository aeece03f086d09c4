"""MovieLens layouts: ``movielens-dat`` (ml-1m / ml-10m ``.dat``) and ``ml-latest`` (CSV).

``movielens-dat``: ``ratings.dat`` lines ``UserID::MovieID::Rating::Timestamp`` (seconds), no
header; rows are line numbers. ``path`` is the folder or the ratings file; ``movies.dat`` beside it
(``MovieID::Title::Genres``, latin-1 by default, option ``encoding``) is optional and gives
``category`` = the first genre of ``Genres`` (``Action|Comedy`` -> ``Action``). Titles may contain
colons, so a movie line is split at its first and last ``::``.

``ml-latest``: ``ratings.csv`` (``userId,movieId,rating,timestamp``) + ``movies.csv``
(``movieId,title,genres``, genres ``A|B|C``) -> ``category`` = first genre and side column
``genres`` = the full genre string (``(no genres listed)`` -> null for both). ``path`` is the
folder or the ratings file. Rated movies absent from ``movies.csv`` get null genres and a warning.
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
from chronorec.data.sources._io import check_dir_or_file, check_file, open_delimited, read_lines
from chronorec.data.sources.base import Request, SourceData, register
from chronorec.data.sources.generic import read_table
from chronorec.errors import ChronorecError

NO_GENRES = "(no genres listed)"


def _pick(path: Path, name: str, what: str) -> tuple[Path, Path]:
    """(the main file, its folder): ``path`` is the file itself or a folder holding ``name``."""
    path = check_dir_or_file(path)
    if path.is_dir():
        main = path / name
        if not main.exists():
            raise ChronorecError(f"no {name} in this folder (the {what} layout needs it)", file=path)
        return check_file(main), path
    return check_file(path), path.parent


def _split_dat(lines: pl.DataFrame, file: Path, names: list[str], shown: list[str]) -> pl.DataFrame:
    parts = pl.col("line").str.strip_chars().str.split("::")
    df = lines.with_columns(parts.alias("_parts"))
    bad = df.filter(pl.col("_parts").list.len() != len(names)).head(1)
    if bad.height:
        n = bad["_parts"].list.len()[0]
        raise ChronorecError(
            f"line has {n} '::'-separated field(s), expected {len(names)} ({'::'.join(shown)})",
            file=file,
            row=int(bad["_row"][0]),
        )
    return df.select("_row", *[pl.col("_parts").list.get(k).alias(name) for k, name in enumerate(names)])


def _first_genre(col: str) -> pl.Expr:
    return pl.col(col).str.split("|").list.first()


@register(
    "movielens-dat",
    "MovieLens ml-1m ratings.dat (+ movies.dat: first genre as category)",
    options={"encoding": "encoding of movies.dat (default latin-1)"},
    takes_mapping=False,
)
def load_movielens_dat(req: Request) -> SourceData:
    ratings, folder = _pick(req.path, "ratings.dat", "ml-1m")
    columns = {"user": "UserID", "item": "MovieID", "rating": "Rating", "ts": "Timestamp"}
    df = _split_dat(read_lines(ratings), ratings, list(columns), list(columns.values()))
    raw = Raw(with_origin(df), [ratings], columns)
    movies = folder / "movies.dat"
    data = build(req.name, raw, [], time_unit=req.time_unit, options=req.options)
    if not movies.exists():
        return data
    lines = read_lines(movies, encoding=req.option("encoding", "latin-1"))
    parsed = lines.with_columns(
        pl.col("line").str.strip_chars().str.extract_groups(r"^([^:]+)::(.*)::([^:]*)$")
    )
    parsed = parsed.unnest("line")
    bad = parsed.filter(pl.col("1").is_null()).head(1)
    if bad.height:
        raise ChronorecError("line is not MovieID::Title::Genres", file=movies, row=int(bad["_row"][0]))
    attrs = parsed.select(
        clean_text(pl.col("1")).alias("item"),
        clean_text(_first_genre("3"), [NO_GENRES]).alias("category"),
        "_row",
    )
    events = attach_item_attrs(data.events, attrs, movies, {"category": "Genres"}, what="movie")
    return SourceData(
        data.name,
        events.select("user", "item", "ts", "category", "rating"),
        ["category"],
        [ratings, movies],
        None,
        data.time_granularity,
    )


@register(
    "ml-latest",
    "MovieLens latest ratings.csv + movies.csv (first genre as category, all genres as 'genres')",
    takes_mapping=False,
)
def load_ml_latest(req: Request) -> SourceData:
    ratings, folder = _pick(req.path, "ratings.csv", "ml-latest")
    raw = read_table(
        ratings, sep=req.sep, optional=("rating",), defaults={"user": ("userId",), "item": ("movieId",)}
    )
    data = build(req.name, raw, [], time_unit=req.time_unit, options=req.options)
    movies = folder / "movies.csv"
    if not movies.exists():
        raise ChronorecError("no movies.csv beside the ratings (ml-latest needs it for genres)", file=folder)
    table = open_delimited(movies, sep=req.sep)
    cols = resolve(
        table.header,
        file=movies,
        required=("item", "genres"),
        defaults={"item": ("movieId",), "genres": ("genres",)},
    )
    genres = clean_text(pl.col("genres"), [NO_GENRES])
    attrs = table.read(cols, required=("item",)).select(
        clean_text(pl.col("item")).alias("item"),
        _first_genre("genres").pipe(clean_text, [NO_GENRES]).alias("category"),
        genres.alias("genres"),
        "_row",
    )
    events = attach_item_attrs(data.events, attrs, movies, cols, what="movie")
    side = ["category", "genres"]
    return SourceData(
        data.name, order_columns(events, side), side, [ratings, movies], None, data.time_granularity
    )

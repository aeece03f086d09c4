"""Mobile-app usage logs: ``mobilerec``, ``lsapp`` and ``studentlife`` (INTERPOS's setting).

``mobilerec`` (MobileRec, Maqbool et al. 2023): one interaction per row with ``uid`` (or
``user_id``), ``app_package``, ``unix_timestamp`` and optionally ``app_category``, ``rating``
(the published CSV also has review text, votes and dates, ignored) -> item = ``app_package``,
category = ``app_category`` when present. A mapping may rename any role.

``lsapp`` (LSApp, Aliannejadi et al. 2021): ``user_id, session_id, timestamp, app_name,
event_type`` (tab-separated in the release; ISO datetimes without zone, read as UTC). Only
app-open events are kept (``event_type == "Opened"``; option ``event`` picks another type);
item = ``app_name``, session = ``session_id``.

``studentlife`` (StudentLife 2013 running-app snapshots): every ~20 minutes the phone logged all
running tasks, one row per task (``userId, timestamp, ..., RUNNING_TASKS_topActivity_mPackage``).
These are snapshots, not opens, so app-open events are derived with this rule:

    a package is *opened* at snapshot time t when it is the top activity of some task in the
    user's snapshot at t and of no task in that user's previous snapshot.

The user's first snapshot has no predecessor, so it yields no events (option ``include_first``
counts its packages as opens). Several opens in one snapshot share its time; they are ordered
least recent first (Android lists running tasks most recent first), so the task on screen comes
last. There is no gap limit: after a logging gap the first snapshot is compared with the last one
before it. Option ``exclude`` ignores packages (e.g. ``["com.android.launcher"]``). A file
without a user column (the original per-user ``running_app_u00.csv``) takes the user from the
``u\\d+`` in its name; ``path`` may be a file or a folder of ``running_app*.csv[.gz]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from chronorec.data.sources._finish import Raw, build, order_columns
from chronorec.data.sources._io import check_dir_or_file
from chronorec.data.sources.base import Request, SourceData, register
from chronorec.data.sources.generic import read_table, side_of
from chronorec.errors import ChronorecError

MOBILEREC = {
    "user": ("uid", "user_id"),
    "item": ("app_package", "package"),
    "time": ("unix_timestamp", "timestamp", "formated_date"),
    "category": ("app_category",),
}


@register("mobilerec", "MobileRec app interactions: uid, app_package, unix_timestamp, app_category")
def load_mobilerec(req: Request) -> SourceData:
    raw = read_table(
        req.path, mapping=req.mapping, sep=req.sep, optional=("category", "rating"), defaults=MOBILEREC
    )
    return build(
        req.name, raw, side_of(raw.frame.columns, req.mapping), time_unit=req.time_unit, options=req.options
    )


LSAPP = {
    "user": ("user_id",),
    "session": ("session_id",),
    "time": ("timestamp",),
    "item": ("app_name",),
    "event": ("event_type",),
}


@register(
    "lsapp",
    "LSApp app usage: user_id, session_id, timestamp, app_name, event_type (Opened events only)",
    options={"event": "event type to keep (default 'Opened')"},
)
def load_lsapp(req: Request) -> SourceData:
    raw = read_table(
        req.path,
        mapping=req.mapping,
        sep=req.sep,
        required=("user", "item", "time", "event"),
        optional=("session",),
        defaults=LSAPP,
    )
    keep = str(req.option("event", "Opened"))
    event = raw.frame["event"].str.strip_chars()
    if not (event == keep).any():
        kinds = ", ".join(sorted(event.drop_nulls().unique().to_list())[:10])
        raise ChronorecError(
            f"no '{keep}' events; event types present: {kinds}",
            file=raw.files[0],
            column=raw.columns["event"],
        )
    raw = Raw(raw.frame.filter(event == keep).drop("event"), raw.files, raw.columns)
    return build(
        req.name, raw, side_of(raw.frame.columns, req.mapping), time_unit=req.time_unit, options=req.options
    )


SNAPSHOT = {
    "user": ("userId", "uid"),
    "item": ("RUNNING_TASKS_topActivity_mPackage",),
    "time": ("timestamp",),
}


def _snapshot_files(path: Path) -> list[Path]:
    path = check_dir_or_file(path)
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob("running_app*.csv*") if p.is_file())
    if not files:
        raise ChronorecError("no running_app*.csv[.gz] files in this folder", file=path)
    return files


def _read_snapshots(path: Path, sep: str | None) -> Raw:
    raw = read_table(path, sep=sep, required=("item", "time"), optional=("user",), defaults=SNAPSHOT)
    if "user" in raw.frame.columns:
        return raw
    match = re.search(r"u\d+", path.name)
    if match is None:
        raise ChronorecError("no userId column and no user (u00, u01, ...) in the file name", file=path)
    return Raw(
        raw.frame.with_columns(pl.lit(match.group(0)).alias("user")),
        raw.files,
        {**raw.columns, "user": "file name"},
    )


def snapshot_opens(
    snap: pl.DataFrame, include_first: bool = False, exclude: Sequence[str] = ()
) -> pl.DataFrame:
    """Apply the open rule to snapshot rows (user, item, ts in file order) -> open events.

    Snapshots are numbered per user before ``exclude`` drops packages, so a snapshot holding only
    excluded packages still separates its neighbours.
    """
    snap = snap.with_row_index("_pos").with_columns(pl.col("ts").rank("dense").over("user").alias("_k"))
    if exclude:
        snap = snap.filter(~pl.col("item").is_in(list(exclude)))
    pairs = snap.group_by("user", "_k", "item").agg(pl.col("_pos").min(), pl.col("ts").first())
    prev = pairs.select("user", (pl.col("_k") + 1).alias("_k"), "item")
    opens = pairs.join(prev, on=["user", "_k", "item"], how="anti")
    if not include_first:
        opens = opens.filter(pl.col("_k") > 1)
    first_seen = snap.group_by("user").agg(pl.col("_pos").min().alias("_upos"))
    opens = opens.join(first_seen, on="user").sort(["_upos", "_k", "_pos"], descending=[False, False, True])
    return opens.drop("_pos", "_k", "_upos")


@register(
    "studentlife",
    "StudentLife running-app snapshots -> app-open events (package newly on top since the previous snapshot)",
    options={
        "include_first": "count the packages of each user's first snapshot as opens (default False)",
        "exclude": "packages to ignore, e.g. ['com.android.launcher']",
    },
    takes_mapping=False,
)
def load_studentlife(req: Request) -> SourceData:
    raw = Raw.concat([_read_snapshots(f, req.sep) for f in _snapshot_files(req.path)])
    data = build(req.name, raw, [], time_unit=req.time_unit, options=req.options)
    exclude = [str(x) for x in req.option("exclude", [])]
    opens = snapshot_opens(
        data.events.select("user", "item", "ts"), bool(req.option("include_first", False)), exclude
    )
    events = order_columns(opens, [])
    if events.height == 0:
        raise ChronorecError(
            "no app-open events derived (fewer than two snapshots per user?)", file=raw.files[0]
        )
    return SourceData(data.name, events, [], data.files, None, data.time_granularity)

"""``prepare``: a loaded source -> a prepared dataset folder (see :mod:`chronorec.data.schema`).

Stages (pure functions over Polars frames, then vectorised numpy on the sorted events):

1. :func:`~chronorec.data.clean.validate_events`: required columns, dtypes, ts non-null / non-negative / plausible seconds.
2. exact duplicate rows dropped (warning with the count; ``dedupe=False`` keeps them).
3. optional k-core (users and items with >= k events, iterated to a fixed point).
4. users with fewer events than the protocol needs (3 for the leave-out protocols) dropped with a
   warning, or an error when ``short_users="error"``.
5. vocabularies (:mod:`chronorec.data.vocab`: sorted raw strings, PAD 0, UNK 1, real ids from 2);
   each item gets ONE value per side feature (its earliest non-null value; items with conflicting
   values are counted in a warning), used for its events, its samples and its negatives.
6. stable chronological order per user (ties keep source order via a row-number column).
7. the protocol (:mod:`chronorec.data.protocols`), time features and training-only bin edges
   (:mod:`chronorec.data.timefeatures`), activity groups, summary.
8. an atomic write with a manifest carrying the cache key (:mod:`chronorec.data.store`); a repeated
   prepare with the same inputs and options is a no-op.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chronorec.data import store
from chronorec.data.clean import (
    ROW,
    clean_events,
    item_side_table,
    validate_events,
    validate_impressions,
    where_of,
)
from chronorec.data.protocols import (
    EventArrays,
    ProtocolOutput,
    activity_groups,
    ctr_leave_one_out,
    ctr_time_split,
    next_item_last_out,
)
from chronorec.data.schema import FIRST_ID, PAD, UNK, DatasetSchema, Protocol
from chronorec.data.summary import format_summary, summarize
from chronorec.data.timefeatures import EXACT_PAIR_LIMIT, calendar_fields, event_gaps, fit_bin_edges
from chronorec.data.vocab import build_vocab, encode_frame, save_vocab
from chronorec.errors import ChronorecError, first_validation_error, warn

STAGES = ("validate", "clean", "encode", "protocol", "time features", "write")
MIN_EVENTS = {"ctr-leave-one-out": 3, "next-item-last-out": 3, "ctr-time-split": 1}


class PrepareOptions(BaseModel):
    """Resolved prepare options; every field is part of the cache key."""

    model_config = ConfigDict(extra="forbid")

    protocol: Protocol
    kcore: int | None = Field(None, ge=1, description="keep users and items with >= k events (fixed point)")
    max_history: int | None = Field(None, ge=1, description="keep the most recent N behaviors (None = all)")
    n_bins: int = Field(10, ge=2, description="equal-frequency bins for intervals and gaps")
    head_share: float = Field(0.2, gt=0, le=1, description="share of most active users in the head group")
    group_thresholds: list[int] | None = Field(None, description="explicit n_train thresholds, decreasing")
    group_names: list[str] | None = None
    seed: int = 2024
    split_dates: tuple[str, str] | None = Field(
        None, description="ctr-time-split: valid and test start (ISO)"
    )
    history_n: int = Field(50, ge=1, description="ctr-time-split: behaviors before the impression")
    dedupe: bool = True
    min_user_events: int | None = Field(None, ge=1, description="None = the protocol's minimum")
    short_users: Literal["drop", "error"] = "drop"
    interval_max_pairs: int = Field(
        EXACT_PAIR_LIMIT, ge=1000, description="exact interval edges up to this many pairs"
    )
    name: str | None = None

    @model_validator(mode="after")
    def _enough_events_per_user(self) -> PrepareOptions:
        need = MIN_EVENTS[self.protocol]
        if self.min_user_events is not None and self.min_user_events < need:
            # users below the protocol's minimum would be kept and counted but get no sample at all
            raise ValueError(f"min_user_events {self.min_user_events} is below {self.protocol}'s minimum of "
                             f"{need} events per user (leave it unset, or use {need} or more)")
        return self

    @classmethod
    def create(cls, **kwargs: Any) -> PrepareOptions:
        """Like the constructor, but invalid values raise a one-line :class:`ChronorecError`."""
        try:
            return cls(**kwargs)
        except ValidationError as err:
            loc, msg, _ = first_validation_error(err)
            raise ChronorecError(f"invalid prepare option {loc}: {msg}" if loc else f"invalid prepare options: {msg}") from None


@dataclass
class PrepareResult:
    out: Path
    rebuilt: bool  # False: the folder was already up to date and nothing was written
    key: str  # the cache key stored in manifest.json
    schema: DatasetSchema
    summary: dict[str, Any]
    seconds: float

    @property
    def message(self) -> str:
        state = "prepared" if self.rebuilt else "up to date (same inputs and options), nothing to do"
        return f"{self.out}: {state} ({self.seconds:.1f} s)"

    def text(self) -> str:
        return self.message + "\n" + format_summary(self.summary)


def _epoch(date: str, where: str) -> int:
    try:
        d = dt.datetime.fromisoformat(date)
    except ValueError:
        raise ChronorecError(
            f"split date '{date}' is not an ISO date (YYYY-MM-DD[THH:MM])", file=where
        ) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return int(d.timestamp())


def _time_span(ts: np.ndarray) -> tuple[int, int]:
    return (int(ts.min()), int(ts.max())) if ts.size else (0, 0)


def _chronological(df: pl.DataFrame) -> pl.DataFrame:
    """Sorted by user, then time; ties keep source order (``ROW``)."""
    if df[ROW].is_sorted():  # rows still in source order: a stable two-key sort is enough (and 2x faster)
        return df.sort("user", "ts", maintain_order=True)
    return df.sort("user", "ts", ROW)


def _encode(
    events: pl.DataFrame, imps: pl.DataFrame | None, side: list[str], where: str
) -> tuple[dict[str, pl.DataFrame], EventArrays, pl.DataFrame | None]:
    """Vocabularies, the item side tables and the sorted encoded events (and impressions)."""
    sides = item_side_table(events, imps, side, where)
    extra = [imps] if imps is not None else []
    vocabs = {
        "user": build_vocab([f["user"] for f in [events, *extra]]),
        "item": build_vocab([f["item"] for f in [events, *extra]]),
        **{s: build_vocab([sides[s]]) for s in side},
    }
    n_item_vocab = vocabs["item"].height + FIRST_ID
    enc_sides = encode_frame(sides, vocabs)
    tables = {}
    for s in side:
        table = np.full(n_item_vocab, UNK, dtype=np.int32)
        table[PAD] = PAD
        table[enc_sides["item"].to_numpy()] = enc_sides[s].to_numpy()
        tables[s] = table
    ids = {"user": vocabs["user"], "item": vocabs["item"]}
    enc = _chronological(encode_frame(events.select(ROW, "user", "item", "ts"), ids))
    user = enc["user"].to_numpy().astype(np.int32)
    item = enc["item"].to_numpy().astype(np.int32)
    length = np.bincount(user.astype(np.int64) - FIRST_ID, minlength=vocabs["user"].height).astype(np.int64)
    ev = EventArrays(
        user=user,
        item=item,
        ts=enc["ts"].to_numpy().astype(np.int64),
        side={s: t[item] for s, t in tables.items()},
        offset=np.cumsum(length) - length,
        length=length,
        item_side=tables,
        n_item_vocab=n_item_vocab,
    )
    imps_enc = _chronological(encode_frame(imps, ids)) if imps is not None else None
    return vocabs, ev, imps_enc


def _run_protocol(
    ev: EventArrays, imps: pl.DataFrame | None, opts: PrepareOptions, where: str
) -> ProtocolOutput:
    if opts.protocol == "ctr-leave-one-out":
        return ctr_leave_one_out(ev, max_history=opts.max_history, seed=opts.seed)
    if opts.protocol == "next-item-last-out":
        return next_item_last_out(ev, max_history=opts.max_history)
    assert imps is not None and opts.split_dates is not None
    b1, b2 = (_epoch(d, where) for d in opts.split_dates)
    if b1 >= b2:
        raise ChronorecError(f"split dates must increase: {opts.split_dates[0]} >= {opts.split_dates[1]}")
    res = ctr_time_split(ev, imps, boundaries=(b1, b2), history=_history_cap(opts) or opts.history_n)
    for name, frame in res.splits.items():
        if frame.height == 0:
            d0, d1 = (dt.datetime.fromtimestamp(t, dt.UTC).date() for t in _time_span(imps["ts"].to_numpy()))
            raise ChronorecError(
                f"split dates {','.join(opts.split_dates)} leave the {name} split empty "
                f"(impressions span {d0} .. {d1})",
                file=where,
            )
    return res


def _history_cap(opts: PrepareOptions) -> int | None:
    if opts.protocol == "ctr-time-split":
        return min(opts.history_n, opts.max_history or opts.history_n)
    return opts.max_history


def _key(source: Any, side: list[str], opts: PrepareOptions) -> str:
    return store.cache_key(
        {
            "inputs": store.file_fingerprint(list(getattr(source, "files", []) or [])),
            "events": store.frame_digest(source.events),
            "impressions": store.frame_digest(getattr(source, "impressions", None)),
            "source": getattr(source, "name", ""),
            "side": side,
            "granularity": getattr(source, "time_granularity", "second"),
            "options": opts.model_dump(mode="json"),
        }
    )


def prepare(
    source: Any,
    out: Path,
    opts: PrepareOptions,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    request_key: str | None = None,
    consume: bool = False,
) -> PrepareResult:
    """Prepare ``source`` (a ``SourceData``) into the folder ``out``; see the module docstring.

    A no-op (``rebuilt=False``) when ``out`` holds a valid dataset with the same cache key, unless
    ``force``. ``progress`` is called with each stage name of :data:`STAGES`. ``request_key`` (the
    CLI's key of its own arguments) is stored in the manifest so the CLI can skip loading.
    ``consume=True`` lets prepare drop the source's raw string tables (``source.events`` and
    ``source.impressions`` become ``None``) before encoding, so they are not held through the later
    stages (the CLI does this; measured on amazon-beauty: peak 142 -> 139 MB).
    """
    t0 = time.perf_counter()
    step = progress or (lambda _s: None)
    out = store.check_out_dir(Path(out))
    where = where_of(source)
    side = list(getattr(source, "side", []) or [])
    step("validate")
    raw = validate_events(source.events, side, where=where)
    if opts.protocol == "ctr-time-split" and opts.split_dates is None:
        raise ChronorecError("ctr-time-split needs split dates (--split-dates VALID_START,TEST_START)")
    imps = validate_impressions(source, side, where) if opts.protocol == "ctr-time-split" else None
    key = _key(source, side, opts)
    manifest = store.read_manifest(out)
    if not force and manifest is not None and manifest.get("key") == key:
        try:
            store.validate_prepared(out)
            return cached_result(out, key, time.perf_counter() - t0)
        except ChronorecError:
            pass  # damaged folder: rebuild it
    step("clean")
    counts: dict[str, int] = {"input_rows": raw.height}
    events = clean_events(
        raw,
        side,
        dedupe=opts.dedupe,
        kcore=opts.kcore,
        min_events=opts.min_user_events or MIN_EVENTS[opts.protocol],
        short_users=opts.short_users,
        protocol=opts.protocol,
        where=where,
        counts=counts,
    )
    if imps is not None:
        n0 = imps.height
        gone = raw.select("user").unique().join(events.select("user").unique(), on="user", how="anti")
        imps = imps.join(gone, on="user", how="anti", maintain_order="left")
        counts["dropped_impressions"] = n0 - imps.height
        if n0 > imps.height:
            warn(f"{where}: dropped {n0 - imps.height} impression(s) of users removed by filtering")
    del raw  # from here on only the cleaned copies are needed
    if consume:
        source.events = source.impressions = None
    step("encode")
    vocabs, ev, imps_enc = _encode(events, imps, side, where)
    del events, imps  # the raw string tables: everything later works on the encoded arrays
    step("protocol")
    res = _run_protocol(ev, imps_enc, opts, where)
    step("time features")
    gap = event_gaps(ev.ts, ev.user)
    bin_edges, counts["interval_pairs"] = fit_bin_edges(
        ev, res, gap, opts.n_bins, max_pairs=opts.interval_max_pairs, seed=opts.seed
    )
    group, spec = activity_groups(
        res.n_train, head_share=opts.head_share, thresholds=opts.group_thresholds, names=opts.group_names
    )
    step("write")
    hist_len = {k: (f["hist_end"] - f["hist_start"]).to_numpy() for k, f in res.splits.items()}
    for k, f in res.splits.items():
        counts[k] = f.height
        counts[f"{k}_positives"] = int((f["label"] > 0).sum())
    schema = DatasetSchema(
        name=opts.name or getattr(source, "name", "dataset"),
        protocol=opts.protocol,
        task="next_item" if opts.protocol == "next-item-last-out" else "ctr",
        n_users=vocabs["user"].height,
        n_items=vocabs["item"].height,
        n_events=int(ev.ts.size),
        vocab_sizes={f: v.height + FIRST_ID for f, v in vocabs.items()},
        side_features=side,
        bin_edges=bin_edges,
        counts=counts,
        time_span=_time_span(ev.ts),
        max_history=_history_cap(opts),
        max_history_len=max((int(h.max()) for h in hist_len.values() if h.size), default=0),
        groups=spec,
        options={
            **opts.model_dump(mode="json"),
            "time_granularity": getattr(source, "time_granularity", "second"),
        },
    )
    summary = summarize(schema, gap=gap, hist_len=hist_len)
    with store.atomic_dir(out) as tmp:
        _write(tmp, ev, gap, res, group, vocabs)
        schema.save(tmp / store.SCHEMA)
        store.save_json(tmp / "summary.json", summary)
        store.write_manifest(
            tmp, {"key": key, "request_key": request_key, "options": opts.model_dump(mode="json")}
        )
    return PrepareResult(out, True, key, schema, summary, time.perf_counter() - t0)


def _write(
    tmp: Path,
    ev: EventArrays,
    gap: np.ndarray,
    res: ProtocolOutput,
    group: np.ndarray,
    vocabs: dict[str, pl.DataFrame],
) -> None:
    (tmp / "samples").mkdir()
    (tmp / "vocab").mkdir()
    hour, wday, month = calendar_fields(ev.ts)
    side = {s: pl.Series(v, dtype=pl.Int32) for s, v in ev.side.items()}
    events = pl.DataFrame(
        {
            "user": ev.user,
            "item": ev.item,
            **side,
            "ts": ev.ts,
            "gap": gap,
            "hour": hour,
            "wday": wday,
            "month": month,
        }
    )
    store.write_parquet(events, tmp / "events.parquet")
    del events
    users = pl.DataFrame(
        {
            "user": pl.Series(np.arange(ev.n_users) + FIRST_ID, dtype=pl.Int32),
            "offset": pl.Series(ev.offset, dtype=pl.Int64),
            "length": pl.Series(ev.length, dtype=pl.Int32),
            "n_train": pl.Series(res.n_train, dtype=pl.Int32),
            "group": pl.Series(group, dtype=pl.Int8),
        }
    )
    store.write_parquet(users, tmp / "users.parquet")
    items = pl.DataFrame(
        {
            "item": pl.Series(np.arange(ev.n_item_vocab), dtype=pl.Int32),
            **{s: pl.Series(t, dtype=pl.Int32) for s, t in ev.item_side.items()},
        }
    )
    store.write_parquet(items, tmp / "items.parquet")
    for k, f in res.splits.items():
        store.write_parquet(f, tmp / "samples" / f"{k}.parquet")
    for f, v in vocabs.items():
        save_vocab(v, tmp / "vocab" / f"{f}.parquet")


def cached_result(out: Path, key: str, seconds: float) -> PrepareResult:
    """The result of an up-to-date prepared folder, read back without touching the data."""
    schema = DatasetSchema.load(out / store.SCHEMA)
    return PrepareResult(out, False, key, schema, store.load_json(out / "summary.json"), seconds)

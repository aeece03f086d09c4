"""Time features computed once at prepare time, and the bucketing every layer mirrors.

* ``gap``: seconds from an event to the same user's previous event, ``-1`` for a user's first.
* calendar fields of the UTC timestamp: ``hour`` 0-23, ``wday`` 0-6 (Monday = 0), ``month`` 1-12
  (day-granular sources simply have hour 0 everywhere).
* equal-frequency bin edges, fitted on training data only: ``n_bins - 1`` interior quantiles
  (``inverted_cdf``, so every edge is an observed value), duplicates dropped, so day-granular
  data with many zero gaps gets fewer, still meaningful, bins.

Bucketing convention (mirror it in torch with ``torch.bucketize(x, edges, right=False) + 1``)::

    id(x) = 1 + #{edges < x} = searchsorted(edges, x, side="left") + 1   in 1 .. len(edges) + 1

so bin k (1-based) is ``(edges[k-2], edges[k-1]]`` and a value equal to an edge falls in the lower
bin; e.g. every zero interval shares bin 1 when the first edge is 0. Id 0 stays free for padding /
the target's own origin (TIN's ``p[0]``).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from chronorec.data.protocols import EventArrays, ProtocolOutput

SECONDS_PER_DAY = 86_400
EXACT_PAIR_LIMIT = 20_000_000  # above this many (target, behavior) pairs the interval edges use a sample
SAMPLE_PAIRS = 2_000_000  # the size of that sample


def ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` over rows, vectorised (int64)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    row_first = np.cumsum(lengths) - lengths  # position of each row's first element in the output
    out = np.ones(total, dtype=np.int64)
    nz = lengths > 0
    out[row_first[nz]] = starts[nz]
    # at each row start, jump from the previous row's last value to this row's first value
    prev_last = np.concatenate([[0], (starts + lengths - 1)[nz][:-1]])
    out[row_first[nz]] -= prev_last
    return np.cumsum(out)


def calendar_fields(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hour 0-23, weekday 0-6 with Monday = 0, month 1-12) of UTC epoch seconds, as int8 arrays."""
    ts = np.asarray(ts, dtype=np.int64)
    days = np.floor_divide(ts, SECONDS_PER_DAY)
    hour = (ts - days * SECONDS_PER_DAY) // 3600
    wday = (days + 3) % 7  # 1970-01-01 was a Thursday
    month = ts.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    return hour.astype(np.int8), wday.astype(np.int8), month.astype(np.int8)


def event_gaps(ts: np.ndarray, user: np.ndarray) -> np.ndarray:
    """Per event, seconds since the same user's previous event (-1 for the first); rows sorted by (user, ts)."""
    ts = np.asarray(ts, dtype=np.int64)
    gap = np.full(ts.shape, -1, dtype=np.int64)
    if ts.size > 1:
        same = user[1:] == user[:-1]
        gap[1:] = np.where(same, ts[1:] - ts[:-1], -1)
    return gap


def equal_frequency_edges(values: np.ndarray, n_bins: int, *, overwrite: bool = False) -> list[float]:
    """``n_bins - 1`` interior quantile edges of ``values`` (observed values), duplicates dropped.

    The ``inverted_cdf`` quantiles (``np.quantile(values, q, method="inverted_cdf")``): the value at
    sorted position ``ceil(n q) - 1``. ``overwrite=True`` lets it reorder ``values`` in place
    instead of partitioning a copy (the interval pairs of a large dataset are the biggest array
    ``prepare`` holds).
    """
    values = np.asarray(values)
    if values.size == 0 or n_bins < 2:
        return []
    n = values.size
    idx = np.unique(np.ceil(n * np.arange(1, n_bins) / n_bins).astype(np.int64) - 1)  # in [0, n - 1]
    part = values if overwrite else values.copy()
    part.partition(idx)
    return [float(e) for e in np.unique(part[idx])]


def bucketize(values: np.ndarray, edges: list[float] | np.ndarray) -> np.ndarray:
    """Bin ids in ``1 .. len(edges) + 1``: ``searchsorted(edges, x, side="left") + 1`` (see module doc)."""
    e = np.asarray(edges, dtype=np.float64)
    return np.searchsorted(e, np.asarray(values, dtype=np.float64), side="left").astype(np.int64) + 1


def interval_sample(
    hist_start: np.ndarray,
    hist_end: np.ndarray,
    target_ts: np.ndarray,
    event_ts: np.ndarray,
    *,
    max_pairs: int = EXACT_PAIR_LIMIT,
    sample_size: int = SAMPLE_PAIRS,
    seed: int = 0,
    chunk: int = 1 << 16,
) -> np.ndarray:
    """``target_ts - event_ts[j]`` over every (sample, history row j) pair, or a uniform sample.

    Exact when there are at most ``max_pairs`` pairs (computed in chunks of about ``chunk`` pairs
    with a ragged arange per chunk of samples). Otherwise ``sample_size`` pair indices are drawn
    uniformly (seeded, with replacement) and mapped back to (sample, offset) with a searchsorted
    over the cumulative history lengths, so memory stays O(sample_size) however long the
    histories are. Equal-frequency edges from 2M sampled pairs are within ~0.1% of exact quantiles.
    """
    hist_start = np.asarray(hist_start, dtype=np.int64)
    target_ts = np.asarray(target_ts, dtype=np.int64)
    lengths = np.asarray(hist_end, dtype=np.int64) - hist_start
    cum = np.cumsum(lengths)
    total = int(cum[-1]) if cum.size else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    if total > max_pairs:
        rng = np.random.default_rng(seed)
        pair = np.sort(rng.integers(0, total, size=min(sample_size, max_pairs)))
        sample = np.searchsorted(cum, pair, side="right")
        rows = hist_start[sample] + pair - (cum[sample] - lengths[sample])
        return target_ts[sample] - event_ts[rows]
    # every interval lies in [0, latest target - earliest event] (impression targets of
    # ctr-time-split may come after the last event): int32 when that is under 68 years
    fits = int(target_ts.max()) - int(event_ts.min()) <= np.iinfo(np.int32).max
    out = np.empty(total, dtype=np.int32 if fits else np.int64)
    cuts = np.unique(np.concatenate([[0], np.searchsorted(cum, np.arange(chunk, total, chunk)), [cum.size]]))
    for lo, hi in itertools.pairwise(cuts):
        n = lengths[lo:hi]
        rows = ragged_arange(hist_start[lo:hi], n)
        first = 0 if lo == 0 else int(cum[lo - 1])
        out[first : first + rows.size] = np.repeat(target_ts[lo:hi], n) - event_ts[rows]
    return out


def fit_bin_edges(
    ev: EventArrays,
    res: ProtocolOutput,
    gap: np.ndarray,
    n_bins: int,
    *,
    max_pairs: int = EXACT_PAIR_LIMIT,
    seed: int = 0,
) -> tuple[dict[str, list[float]], int]:
    """``prepare``'s training-only edges: ``{"interval": .., "gap": ..}`` and the number of interval pairs.

    Intervals come from the protocol's training (history, target) triples, gaps from each user's
    first ``n_train`` events (events are grouped by user). Consumes ``res``'s fit triples: they and
    the pair array (the largest array of a prepare, 4.7 MB on amazon-beauty) are released here,
    before the write stage, where a prepare's memory peaks.
    """
    runs = np.column_stack([res.n_train, ev.length - res.n_train]).ravel()
    in_train = np.repeat(np.tile(np.array([True, False]), res.n_train.size), runs)
    intervals = interval_sample(
        res.fit_hist_start, res.fit_hist_end, res.fit_target_ts, ev.ts, max_pairs=max_pairs, seed=seed
    )
    res.release_fit()
    edges = {
        "interval": equal_frequency_edges(intervals, n_bins, overwrite=True),
        "gap": equal_frequency_edges(gap[in_train & (gap >= 0)], n_bins, overwrite=True),
    }
    return edges, int(intervals.size)

"""The summary printed after ``prepare`` (and stored as ``summary.json`` in the prepared folder).

Users, items, events; samples and positives per split; the time span as UTC dates; gap statistics
over non-first events (median, share of zero gaps, which day-granular sources have many of); the
history length per split; activity groups; what cleaning removed; how many bin edges survived.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from chronorec.data.schema import SPLITS, DatasetSchema


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()


def _stats(x: np.ndarray) -> dict[str, float]:
    if x.size == 0:
        return {"mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0.0}
    return {
        "mean": round(float(x.mean()), 2),
        "median": float(np.median(x)),
        "p90": float(np.quantile(x, 0.9)),
        "max": float(x.max()),
    }


def summarize(schema: DatasetSchema, *, gap: np.ndarray, hist_len: dict[str, np.ndarray]) -> dict[str, Any]:
    """A JSON-able summary of a freshly prepared dataset."""
    real_gap = gap[gap >= 0]
    c = schema.counts
    return {
        "name": schema.name,
        "protocol": schema.protocol,
        "users": schema.n_users,
        "items": schema.n_items,
        "events": schema.n_events,
        "splits": {s: {"samples": c.get(s, 0), "positives": c.get(f"{s}_positives", 0)} for s in SPLITS},
        "time_span": [_date(schema.time_span[0]), _date(schema.time_span[1])],
        "gap": {
            "median_s": float(np.median(real_gap)) if real_gap.size else 0.0,
            "median_days": round(float(np.median(real_gap)) / 86_400, 3) if real_gap.size else 0.0,
            "zero_share": round(float((real_gap == 0).mean()), 4) if real_gap.size else 0.0,
        },
        "history_length": {s: _stats(h) for s, h in hist_len.items()},
        "groups": {
            "names": schema.groups.names,
            "thresholds": schema.groups.thresholds,
            "user_share": [round(x, 4) for x in schema.groups.user_share],
        },
        "dropped": {k: v for k, v in c.items() if k.startswith("dropped_")},
        "bin_edges": {k: len(v) for k, v in schema.bin_edges.items()},
    }


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable lines of :func:`summarize`'s output."""
    lines = [
        f"{s['name']} ({s['protocol']}): {s['users']:,} users, {s['items']:,} items, {s['events']:,} events",
        f"time span {s['time_span'][0]} .. {s['time_span'][1]}",
    ]
    for split, v in s["splits"].items():
        h = s["history_length"].get(split, {})
        lines.append(
            f"  {split:<5} {v['samples']:>10,} samples ({v['positives']:,} positive); history length "
            f"mean {h.get('mean', 0):.1f}, median {h.get('median', 0):.0f}, p90 {h.get('p90', 0):.0f}, "
            f"max {h.get('max', 0):.0f}"
        )
    g = s["gap"]
    lines.append(
        f"gaps: median {g['median_s']:,.0f} s ({g['median_days']} days), {100 * g['zero_share']:.1f}% zero"
    )
    gr = s["groups"]
    parts = [f"{n} {100 * sh:.1f}%" for n, sh in zip(gr["names"], gr["user_share"], strict=False)]
    lines.append(f"groups (n_train >= {gr['thresholds']}): " + ", ".join(parts))
    lines.append("bin edges: " + ", ".join(f"{k} {n}" for k, n in s["bin_edges"].items()))
    if any(s["dropped"].values()):
        lines.append(
            "dropped: "
            + ", ".join(f"{k.removeprefix('dropped_')} {v:,}" for k, v in s["dropped"].items() if v)
        )
    return "\n".join(lines)

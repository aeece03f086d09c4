"""How a prepared dataset's inter-interaction gaps fall into INTERPOS's rhythm buckets.

INTERPOS discretises the gap before each behavior into a rhythm id; which rule suits a dataset
depends on where its gaps lie. The released code's rule (``scaled_days``: 5-day buckets at scale
0.2) puts a 10-second gap and a 4-day gap in the same bucket, so on a log whose gaps are often
seconds or minutes apart (Yelp: 29% of gaps under an hour) the model sees none of that rhythm.
This analysis measures that before any training:

* the gap distribution (quantiles, zero gaps, shares under a minute / hour / day / week);
* per bucketing rule, computed by the models' own :class:`~chronorec.layers.rhythm.RhythmEmbedding`
  (so what is reported is what a model receives): buckets available and used, the share and gap
  range of the most populated bucket, the entropy of the bucket occupancy (bits, and the
  effective number of buckets ``2**H``), and the share of sub-hour gaps that share a bucket with
  gaps of a day or more (the resolution a rule throws away);
* a histogram of the gaps on a log axis with those reference lines (``gaps.png``).

Gaps are every user's consecutive-event differences in the prepared event table (all splits: what
a model's histories contain); a user's first event has no gap and is left out.

    >>> s = gap_summary(np.array([0, 30, 3_600, 86_400 * 4, 86_400 * 30]), {"log": RhythmEmbedding("log")})
    >>> s["n_gaps"], s["rules"]["log"]["used"]
    (5, 5)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chronorec.data.dataset import PreparedDataset
from chronorec.errors import ChronorecError
from chronorec.layers.rhythm import RhythmEmbedding

MINUTE, HOUR, DAY, WEEK = 60, 3_600, 86_400, 604_800
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def human(seconds: float) -> str:
    """A gap in the largest unit that keeps it >= 1 (``"0 s"``, ``"42 s"``, ``"3.8 d"``)."""
    for unit, size in (("y", 365 * DAY), ("d", DAY), ("h", HOUR), ("min", MINUTE)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def rules_for(dataset: PreparedDataset, scale: float = 0.2, cap: int = 640) -> dict[str, RhythmEmbedding]:
    """The bucketing rules a model on ``dataset`` can use, named as in ``model.rhythm_bucket``."""
    rules = {"scaled_days": RhythmEmbedding("scaled_days", scale=scale, cap=cap), "log": RhythmEmbedding("log")}
    edges = dataset.schema.bin_edges.get("gap")
    if edges:
        rules["equal_freq"] = RhythmEmbedding("equal_freq", edges=edges)
    return rules


def _rule_summary(gaps: np.ndarray, rule: RhythmEmbedding) -> dict[str, Any]:
    b = rule.bucket(torch.from_numpy(gaps)).numpy()
    counts = np.bincount(b, minlength=rule.n_buckets)
    p = counts[counts > 0] / gaps.size
    entropy = float(-(p * np.log2(p)).sum())
    top = int(counts.argmax())
    in_top = gaps[b == top]
    # a bucket "mixes" when it holds a gap of a day or more: sub-hour gaps there lose their scale
    longest = np.zeros(rule.n_buckets, dtype=np.int64)
    np.maximum.at(longest, b, gaps)
    short = b[gaps < HOUR]
    return {
        "buckets": int(rule.n_buckets), "used": int((counts > 0).sum()),
        "top_bucket": top, "top_share": float(counts[top] / gaps.size),
        "top_range_s": [int(in_top.min()), int(in_top.max())],
        "entropy_bits": entropy, "effective_buckets": float(2.0 ** entropy),
        "sub_hour_mixed_with_days": float((longest[short] >= DAY).mean()) if short.size else 0.0,
    }


def gap_summary(gaps: np.ndarray, rules: Mapping[str, RhythmEmbedding]) -> dict[str, Any]:
    """Distribution of ``gaps`` (seconds, >= 0) and how each rule buckets them."""
    gaps = np.asarray(gaps, dtype=np.int64)
    if gaps.size == 0:
        raise ChronorecError("no gaps to analyse: every user has a single event")
    if (gaps < 0).any():
        raise ChronorecError(f"negative gap at position {int(np.argmax(gaps < 0))}: events are not time-sorted")
    return {
        "n_gaps": int(gaps.size),
        "quantiles_s": {str(q): float(np.quantile(gaps, q)) for q in QUANTILES},
        "share": {"zero": float((gaps == 0).mean()), "under_1min": float((gaps < MINUTE).mean()),
                  "under_1h": float((gaps < HOUR).mean()), "under_1d": float((gaps < DAY).mean()),
                  "under_1w": float((gaps < WEEK).mean())},
        "rules": {name: _rule_summary(gaps, r) for name, r in rules.items()},
    }


def dataset_gaps(dataset: PreparedDataset) -> np.ndarray:
    """Every consecutive-event gap of every user (seconds); first events (gap -1) left out."""
    g = dataset.events.gap[: dataset.events.n]
    return np.ascontiguousarray(g[g >= 0])


RULE_HEADER = ["rule", "buckets used / available", "largest bucket: share (gap range)",
               "entropy bits (effective buckets)", "sub-hour gaps sharing a bucket with gaps >= 1 day"]


def share_line(summary: Mapping[str, Any]) -> str:
    """One sentence: gap count, quantiles and the shares under a minute / hour / day / week."""
    s, q = summary["share"], summary["quantiles_s"]
    return (f"{summary['n_gaps']:,} gaps; " + ", ".join(f"p{round(100 * float(k))} {human(v)}" for k, v in q.items())
            + "; " + ", ".join(f"{100 * s[k]:.1f}% {label}" for k, label in (
                ("zero", "zero"), ("under_1min", "< 1 min"), ("under_1h", "< 1 h"), ("under_1d", "< 1 day"),
                ("under_1w", "< 1 week"))))


def rule_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """One row per bucketing rule, in :data:`RULE_HEADER`'s columns."""
    rows = []
    for name, r in summary["rules"].items():
        lo, hi = r["top_range_s"]
        rows.append([name, f"{r['used']} / {r['buckets']}", f"{100 * r['top_share']:.1f}% ({human(lo)} – {human(hi)})",
                     f"{r['entropy_bits']:.2f} ({r['effective_buckets']:.1f})", f"{100 * r['sub_hour_mixed_with_days']:.1f}%"])
    return rows


def markdown(summary: Mapping[str, Any], title: str) -> str:
    """The summary as a sentence and a Markdown table."""
    lines = [f"# Gaps between consecutive interactions: {title}", "", share_line(summary), "",
             "| " + " | ".join(RULE_HEADER) + " |", "|" + "---|" * len(RULE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rule_rows(summary)]
    return "\n".join(lines) + "\n"


def analyse(data: Path, scale: float = 0.2, cap: int = 640) -> tuple[dict[str, Any], np.ndarray]:
    """``(summary, gaps)`` of the prepared dataset ``data``; nothing is written."""
    dataset = PreparedDataset.open(data)
    gaps = dataset_gaps(dataset)
    summary = gap_summary(gaps, rules_for(dataset, scale=scale, cap=cap))
    summary["dataset"] = dataset.schema.name
    summary["scaled_days"] = {"scale": scale, "cap": cap}
    return summary, gaps


def figure(summary: Mapping[str, Any], gaps: np.ndarray, path: Path) -> Path:
    """The gap histogram with the summary's ``scaled_days`` first bucket shaded (``gaps.png``)."""
    from chronorec.analysis.plots import gap_distribution

    rule = RhythmEmbedding("scaled_days", **summary["scaled_days"])
    return gap_distribution(gaps, rule.width, path, title=summary["dataset"])


def run_gaps(data: Path, out: Path, scale: float = 0.2, cap: int = 640) -> dict[str, Any]:
    """Write ``gaps.json``, ``gaps.md`` and ``gaps.png`` for the prepared dataset ``data`` into ``out``."""
    summary, gaps = analyse(data, scale=scale, cap=cap)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gaps.json").write_text(json.dumps(summary, indent=2))
    (out / "gaps.md").write_text(markdown(summary, summary["dataset"]))
    figure(summary, gaps, out / "gaps.png")
    return summary

"""Markdown tables of multi-seed results in the layouts of the TIN and INTERPOS papers.

Pure functions over plain metric dicts (one dict per seed, as in a run's ``metrics.json["test"]``),
so they are unit-tested on fake numbers and reused by anything that collects runs.

* :func:`table1` — TIN paper Table 1: model, component code (TI, TA, TR), Logloss, Δ%, GAUC, Δ%
  (mean ± std over seeds; Δ% relative to the baseline row, Avg Pooling & Concat).
* :func:`table3` — Table 3: GAUC by history-length range, TTE-P vs COE, and their Δ%; with
  ``header="History time span (days)"`` the same layout by time span, TTE-P vs TTE-T (the paper's
  reason for TTE-T's gain on Amazon: behaviors spread over years).
* :func:`table4` — Table 4: temporal encodings (TTE-P, TTE-T, timestamp encoding), Δ% vs TTE-P.
* :func:`ranking_table` — INTERPOS: NDCG/HIT@10/20, MRR@10 and Δ% NDCG@20 vs each variant's base.

Δ% = (value − baseline) / baseline × 100 of the means; std is the sample standard deviation (ddof 1)
and 0 for a single seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from chronorec.metrics.ctr import gauc

DEFAULT_LENGTH_EDGES = (1, 5, 10, 15, 20)
# history time span (target time - first behavior time) in days: < 3 months, < 1, 2, 4 years, longer
DEFAULT_SPAN_EDGES_DAYS = (0, 90, 365, 730, 1460)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; 0 for one value); NaN values are ignored; (nan, nan) if none."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt_ms(values: Sequence[float], digits: int = 4) -> str:
    """``0.8629 ± 9.0e-04``; the mean alone for one value (its std is undefined, not 0); ``–`` for none."""
    m, s = mean_std(values)
    if math.isnan(m):
        return "–"
    if sum(1 for x in values if x is not None and not math.isnan(x)) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {s:.1e}"


def delta_pct(value: float, base: float) -> str:
    """Signed relative change in percent, ``+0.92`` / ``-1.71``; ``–`` when undefined."""
    if any(math.isnan(x) for x in (value, base)) or base == 0:
        return "–"
    return f"{(value - base) / base * 100:+.2f}"


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _metric(runs: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in runs if key in r and r[key] is not None]


def table1(results: dict[str, list[dict[str, Any]]], codes: dict[str, str], baseline: str) -> str:
    """Rows in ``results`` order (label -> per-seed test metrics); ``codes`` label -> e.g. ``✓✓✓``."""
    base = results.get(baseline, [])
    base_ll, base_g = mean_std(_metric(base, "logloss"))[0], mean_std(_metric(base, "gauc"))[0]
    rows = []
    for label, runs in results.items():
        ll, g = _metric(runs, "logloss"), _metric(runs, "gauc")
        same = label == baseline
        rows.append([label, codes.get(label, ""), fmt_ms(ll), "–" if same else delta_pct(mean_std(ll)[0], base_ll),
                     fmt_ms(g), "–" if same else delta_pct(mean_std(g)[0], base_g), str(len(runs))])
    return markdown(["Model", "Code (TI TA TR)", "Logloss", "Δ%", "GAUC", "Δ%", "seeds"], rows)


def length_buckets(lengths: np.ndarray, edges: Sequence[int] = DEFAULT_LENGTH_EDGES) -> tuple[np.ndarray, list[str]]:
    """Bucket index per sample and bucket labels ``[1, 5)``, ..., ``[20, max]``; -1 below the first edge."""
    lengths = np.asarray(lengths)
    top = int(lengths.max()) if lengths.size else edges[-1]
    labels = [f"[{a}, {b})" for a, b in itertools.pairwise(edges)] + [f"[{edges[-1]}, {top}]"]
    idx = np.searchsorted(np.asarray(edges), lengths, side="right") - 1
    return idx, labels


def gauc_by_length(labels: np.ndarray, scores: np.ndarray, users: np.ndarray, lengths: np.ndarray,
                   edges: Sequence[int] = DEFAULT_LENGTH_EDGES) -> dict[str, float]:
    """GAUC of the samples in each history-length range (the range label -> GAUC).

    Any per-sample integer works as ``lengths`` with matching ``edges``: the history's time span in
    whole days with :data:`DEFAULT_SPAN_EDGES_DAYS` gives the by-span table.
    """
    idx, names = length_buckets(lengths, edges)
    out = {}
    for k, name in enumerate(names):
        sel = idx == k
        out[name] = gauc(labels[sel], scores[sel], users[sel]) if sel.any() else float("nan")
    return out


def table3(by_length: dict[str, list[dict[str, float]]], base: str = "TTE-P", other: str = "COE",
           header: str = "Range of sequence lengths") -> str:
    """GAUC per range (columns) for ``base`` and ``other`` (rows, mean ± std), then Δ% of ``other``."""
    ranges = list(dict.fromkeys(k for runs in by_length.values() for r in runs for k in r))
    rows = []
    for label in (base, other):
        runs = by_length.get(label, [])
        rows.append([label, *[fmt_ms(_metric(runs, k)) for k in ranges]])
    b, o = by_length.get(base, []), by_length.get(other, [])
    rows.append([f"Δ% (GAUC, {other} vs {base})",
                 *[delta_pct(mean_std(_metric(o, k))[0], mean_std(_metric(b, k))[0]) for k in ranges]])
    return markdown([header, *ranges], rows)


def table4(results: dict[str, list[dict[str, Any]]], base: str = "TTE-P") -> str:
    """Encodings (rows in ``results`` order): Logloss, Δ%, GAUC, Δ% relative to ``base``."""
    b = results.get(base, [])
    b_ll, b_g = mean_std(_metric(b, "logloss"))[0], mean_std(_metric(b, "gauc"))[0]
    rows = []
    for label, runs in results.items():
        ll, g = _metric(runs, "logloss"), _metric(runs, "gauc")
        same = label == base
        rows.append([label, fmt_ms(ll), "–" if same else delta_pct(mean_std(ll)[0], b_ll),
                     fmt_ms(g), "–" if same else delta_pct(mean_std(g)[0], b_g)])
    return markdown(["Encoding", "Logloss", "Δ%", "GAUC", "Δ%"], rows)


RANKING_COLUMNS = ("ndcg@10", "ndcg@20", "hit@10", "hit@20", "mrr@10")


def ranking_table(results: dict[str, list[dict[str, Any]]], bases: dict[str, str],
                  columns: Sequence[str] = RANKING_COLUMNS, delta_metric: str = "ndcg@20") -> str:
    """Next-item metrics (mean ± std) per row; Δ% of ``delta_metric`` vs ``bases[label]`` when given."""
    rows = []
    for label, runs in results.items():
        base = bases.get(label)
        d = "–"
        if base is not None and base != label and base in results:
            d = delta_pct(mean_std(_metric(runs, delta_metric))[0], mean_std(_metric(results[base], delta_metric))[0])
        rows.append([label, *[fmt_ms(_metric(runs, c)) for c in columns], d, str(len(runs))])
    header = ["Model", *[c.upper() for c in columns], f"Δ% {delta_metric.upper()} vs base", "seeds"]
    return markdown(header, rows)

"""The TIN paper's analysis figures as PNG files (matplotlib ``Figure`` objects, Agg canvas; no
pyplot state, so plotting is safe in servers and tests).

* :func:`heatmaps` — Figures 1 and 3: ground-truth CTC beside each model's learned correlation for
  one target category (history categories × positions 1..P), Pearson r of the target's own row.
* :func:`interval_distribution` — Figure 4: target-behavior intervals on a log axis with the TTE-T
  equal-frequency bin edges.
* :func:`pearson_bins` — Figure 6: share of target categories per Pearson bin, per model.
* :func:`sequences` — Figure 7: ground truth vs learned correlation per behavior of sampled sequences.
* :func:`gauc_by_length` — Table 3 as bars: GAUC per history-length bucket, per model.
* :func:`gap_distribution` — INTERPOS's input: gaps between consecutive interactions on a log axis,
  with the first ``scaled_days`` rhythm bucket shaded (``chronorec analyze gaps``).

Each panel of a heatmap is min-max scaled to [0, 1] like the authors' released plots (Pearson r is
unaffected by that scaling); cells without any behavior are grey.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_DAY = 86_400.0
_BIN_COLORS = {"strong": "#2e7d32", "medium": "#f9a825", "poor": "#c62828", "undefined": "#9e9e9e"}


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _minmax(grid: np.ndarray) -> np.ndarray:
    finite = np.isfinite(grid)
    if not finite.any():
        return grid
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    return (grid - lo) / (hi - lo) if hi > lo else np.where(finite, 0.0, np.nan)


def heatmaps(gt: np.ndarray, learned: Mapping[str, np.ndarray], row_labels: Sequence[str],
             target_label: str, target_row: int | None, pearson: Mapping[str, float], path: Path) -> Path:
    """Figure 1/3: one panel for the ground truth and one per model, rows = history categories."""
    panels = [("ground truth CTC (MI)", gt), *((f"{k} (r = {pearson.get(k, np.nan):.2f})", v)
                                             for k, v in learned.items())]
    P = gt.shape[1]
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    fig = Figure(layout="constrained", figsize=(4.6 * ncols, 0.45 * len(row_labels) * nrows + 1.6 * nrows))
    for k, (title, grid) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        im = ax.imshow(np.ma.masked_invalid(_minmax(grid)), aspect="auto",
                       cmap=colormaps["Blues"].with_extremes(bad="#dddddd"), vmin=0, vmax=1)
        ax.set_xticks(range(P), [str(p) for p in range(1, P + 1)])
        ax.set_yticks(range(len(row_labels)), list(row_labels))
        if target_row is not None:
            ax.get_yticklabels()[target_row].set_fontweight("bold")
        ax.set_xlabel("position (1 = most recent)")
        ax.set_ylabel("history category")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="min-max scaled")
    fig.suptitle(f"Semantic-temporal correlation, target category {target_label}")
    return _save(fig, path)


def interval_distribution(intervals: np.ndarray, edges: Sequence[float], path: Path, title: str = "") -> Path:
    """Figure 4: histogram of target-behavior intervals (days, log axis) and the TTE-T bin edges."""
    days = np.asarray(intervals, dtype=np.float64) / _DAY
    zero_share = float(np.mean(days <= 0)) if days.size else 0.0
    pos = days[days > 0]
    fig = Figure(layout="constrained", figsize=(8, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    if pos.size:
        lo = max(pos.min(), 1e-3)
        bins = np.logspace(np.log10(lo), np.log10(pos.max() * 1.01), 60)
        ax.hist(pos, bins=bins, color="#5c6bc0", alpha=0.85, label="intervals > 0")
    ax.set_xscale("log")
    for k, e in enumerate(e for e in edges if e > 0):
        ax.axvline(e / _DAY, color="#d84315", lw=1, ls="--", label="TTE-T bin edges" if k == 0 else None)
    ax.set_xlabel("time interval target − behavior (days, log scale)")
    ax.set_ylabel("number of behaviors")
    ax.set_title(f"{title}: {days.size:,} intervals, {100 * zero_share:.1f}% are 0 (same timestamp)"
                 if title else f"{100 * zero_share:.1f}% of intervals are 0")
    ax.legend(loc="upper left")
    return _save(fig, path)


def gap_distribution(gaps: np.ndarray, first_bucket_s: float, path: Path, title: str = "") -> Path:
    """Histogram of consecutive-interaction gaps (seconds, log axis); zero gaps counted in the title.

    Reference lines at a minute, an hour, a day and a week; the span of ``scaled_days``' first
    rhythm bucket (``[0, first_bucket_s)``, every gap there gets the same id) is shaded.
    """
    g = np.asarray(gaps, dtype=np.float64)
    pos = g[g > 0]
    fig = Figure(layout="constrained", figsize=(8, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    if pos.size:
        bins = np.logspace(np.log10(pos.min()), np.log10(pos.max() * 1.01), 70)
        ax.hist(pos, bins=bins, color="#5c6bc0", alpha=0.85, label="gaps > 0")
        ax.axvspan(pos.min(), first_bucket_s, color="#d84315", alpha=0.12,
                   label=f"one scaled_days bucket (< {first_bucket_s / _DAY:g} days)")
    ax.set_xscale("log")
    for sec, name in ((60, "1 min"), (3_600, "1 h"), (_DAY, "1 day"), (7 * _DAY, "1 week")):
        ax.axvline(sec, color="#424242", lw=0.8, ls=":")
        ax.text(sec, 1.0, f" {name}", transform=ax.get_xaxis_transform(), va="top", fontsize=8)
    ax.set_xlabel("gap to the previous interaction of the same user (seconds, log scale)")
    ax.set_ylabel("number of gaps")
    zero = 100 * float(np.mean(g <= 0)) if g.size else 0.0
    ax.set_title(f"{title + ': ' if title else ''}{g.size:,} gaps, {zero:.1f}% are 0 (same timestamp)")
    ax.legend(loc="best")
    return _save(fig, path)


def pearson_bins(summaries: Mapping[str, Mapping], path: Path,
                 settings: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Figure 6: grouped bars of the share of target categories per Pearson bin, per model.

    With ``settings`` (name -> run labels, the seeds of one setting) a bar is the mean share over
    the setting's runs, with the sample std as an error bar when it has more than one.
    """
    groups = {n: list(v) for n, v in (settings or {n: [n] for n in summaries}).items()}
    names = list(groups)
    bins = ["strong", "medium", "poor", "undefined"]
    fig = Figure(layout="constrained", figsize=(max(7.0, 1.3 * len(names) + 2), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(bins)
    x = np.arange(len(names))
    for k, b in enumerate(bins):
        per = [np.array([summaries[lb]["share"][b] for lb in groups[n]]) * 100 for n in names]
        share = np.array([v.mean() for v in per])
        err = np.array([v.std(ddof=1) if v.size > 1 else 0.0 for v in per])
        bars = ax.bar(x + (k - 1.5) * width, share, width, label=b, color=_BIN_COLORS[b],
                      yerr=err if err.any() else None, capsize=2, error_kw={"elinewidth": 0.8})
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    seeds = [len(groups[n]) for n in names]
    ticks = [f"{n}\n({s} seeds)" if s > 1 else n for n, s in zip(names, seeds, strict=True)]
    ax.set_xticks(x, ticks, rotation=20, ha="right")
    ax.set_ylabel("% of target categories" + (" (mean ± std over seeds)" if max(seeds, default=1) > 1 else ""))
    ax.set_ylim(0, 105)
    n = max((summaries[k]["n_targets"] for k in summaries), default=0)
    ax.set_title(f"Pearson r of ground-truth vs learned same-category curves\n({n} target categories)",
                 fontsize=10)
    ax.legend(title="Pearson bin", fontsize=8)
    return _save(fig, path)


def sequences(examples: Sequence[Mapping], path: Path) -> Path:
    """Figure 7: per example, rows = ground truth and each model, columns = the last P behaviors.

    Each example holds ``title``, ``labels`` (category of each behavior, position 1 first),
    ``same`` (bool per behavior: same category as the target), ``gt`` and ``learned`` (name -> [P]).
    """
    fig = Figure(layout="constrained", figsize=(10, sum(0.5 * (1 + len(e["learned"])) + 1.4 for e in examples)))
    heights = [1 + len(e["learned"]) for e in examples]
    gs = fig.add_gridspec(len(examples), 1, height_ratios=heights)
    for k, ex in enumerate(examples):
        ax = fig.add_subplot(gs[k])
        rows = [np.asarray(ex["gt"], dtype=np.float64), *(np.asarray(v, np.float64) for v in ex["learned"].values())]
        grid = np.stack([_minmax(r) for r in rows])
        im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto",
                       cmap=colormaps["Oranges"].with_extremes(bad="#dddddd"), vmin=0, vmax=1)
        P = grid.shape[1]
        ax.set_xticks(range(P), [f"{p}\n{lab}" for p, lab in zip(range(1, P + 1), ex["labels"], strict=True)],
                      fontsize=7)
        for j, same in enumerate(ex["same"]):
            if same:
                ax.get_xticklabels()[j].set_color("#c62828")
        ax.set_yticks(range(len(rows)), ["ground truth", *ex["learned"].keys()], fontsize=8)
        ax.set_xlabel("position (1 = most recent) / behavior category (red = target's category)", fontsize=8)
        ax.set_title(ex["title"], fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="row min-max")
    return _save(fig, path)


def gauc_by_length(table: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Table 3 as grouped bars: test GAUC per history-length bucket, one bar per model."""
    names = list(table)
    buckets = list(next(iter(table.values()))) if table else []
    fig = Figure(layout="constrained", figsize=(max(6.0, 1.4 * len(buckets) + 2), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(buckets))
    vals = np.array([[table[n][b] for b in buckets] for n in names], dtype=np.float64)
    for k, n in enumerate(names):
        ax.bar(x + (k - (len(names) - 1) / 2) * width, vals[k], width, label=n)
    finite = vals[np.isfinite(vals)]
    if finite.size:
        lo, hi = finite.min(), finite.max()
        pad = max(0.01, 0.15 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
    ax.set_xticks(x, buckets)
    ax.set_xlabel("history length (behaviors before the target)")
    ax.set_ylabel("test GAUC")
    ax.set_title("GAUC by history length (TIN paper, Table 3)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def training_curves(curves: Mapping[str, Mapping[int, float]], metric: str, path: Path) -> Path:
    """Validation ``metric`` per epoch, one line per run group."""
    fig = Figure(layout="constrained", figsize=(7, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for name, c in curves.items():
        ax.plot(list(c), list(c.values()), marker="o", ms=3, label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"valid {metric}")
    ax.set_title(f"Validation {metric} during training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)

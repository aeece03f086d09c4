"""Agreement between ground-truth and learned correlation (TIN paper App. A.2, Figure 6).

For each target category ``c_t`` the two curves over positions ``1..P`` of behaviors of the
target's *own* category (``c = c_t``) are compared by Pearson's r, which is binned as

    poor   [-1, 0.2]      medium (0.2, 0.8]      strong (0.8, 1]

and the share of target categories per bin is reported per model (the paper: 90% strong for TIN
on Amazon Electronics). Positions where the learned curve is undefined (no sample of ``c_t`` has a
``c_t`` behavior there) are left out of that category's r. A category whose r is undefined is
never dropped silently: it falls in the ``undefined`` bin with its reason — ``constant curve``
(zero variance of either curve over the usable positions) or ``too few positions`` (< 3).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chronorec.analysis.runs import fmt_mean_std

BINS = ("strong", "medium", "poor")
UNDEFINED = "undefined"
MIN_POSITIONS = 3
_REL_EPS = 1e-12


def pearson_rows(a: np.ndarray, b: np.ndarray, usable: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise Pearson r of ``[K, P]`` curves over the ``usable`` positions.

    Returns ``(r [K], reason [K])`` with ``reason`` "" where r is defined, else
    ``"too few positions"`` or ``"constant curve"`` (and r NaN).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    usable = np.isfinite(a) & np.isfinite(b) if usable is None else usable & np.isfinite(a) & np.isfinite(b)
    n = usable.sum(axis=1)
    w = usable.astype(np.float64)
    a0, b0 = np.where(usable, a, 0.0), np.where(usable, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a0.sum(1) / n
        mb = b0.sum(1) / n
        da = (a0 - ma[:, None]) * w
        db = (b0 - mb[:, None]) * w
        saa, sbb, sab = (da * da).sum(1), (db * db).sum(1), (da * db).sum(1)
        r = np.clip(sab / np.sqrt(saa * sbb), -1.0, 1.0)

    def scale(x: np.ndarray) -> np.ndarray:
        return np.max(np.abs(np.where(usable, x, 0.0)), axis=1)

    const = (np.sqrt(saa) <= _REL_EPS * np.maximum(scale(a), 1e-300)) | \
        (np.sqrt(sbb) <= _REL_EPS * np.maximum(scale(b), 1e-300))
    reason = np.full(a.shape[0], "", dtype=object)
    few = n < MIN_POSITIONS
    reason[~few & const] = "constant curve"
    reason[few] = "too few positions"
    r = np.where(reason == "", r, np.nan)
    return r, reason


def pearson_bin(r: np.ndarray) -> np.ndarray:
    """The paper's bins: poor [-1, 0.2], medium (0.2, 0.8], strong (0.8, 1]; NaN -> undefined."""
    r = np.asarray(r, dtype=np.float64)
    out = np.full(r.shape, UNDEFINED, dtype=object)
    ok = np.isfinite(r)
    out[ok & (r <= 0.2)] = "poor"
    out[ok & (r > 0.2) & (r <= 0.8)] = "medium"
    out[ok & (r > 0.8)] = "strong"
    return out


def summarize(r: np.ndarray, reason: np.ndarray) -> dict[str, Any]:
    """Counts and shares per bin over all selected target categories (undefined included), shares
    over the categories with a defined r, the reasons for undefined r, and mean / median r."""
    bins = pearson_bin(r)
    k = int(r.shape[0])
    counts = {b: int(np.sum(bins == b)) for b in (*BINS, UNDEFINED)}
    defined = k - counts[UNDEFINED]
    finite = r[np.isfinite(r)]
    reasons, n_reasons = np.unique(reason[reason != ""].astype(str), return_counts=True)
    return {
        "n_targets": k,
        "counts": counts,
        "share": {b: (counts[b] / k if k else float("nan")) for b in (*BINS, UNDEFINED)},
        "share_of_defined": {b: (counts[b] / defined if defined else float("nan")) for b in BINS},
        "undefined_reasons": {str(a): int(c) for a, c in zip(reasons, n_reasons, strict=True)},
        "mean_r": float(finite.mean()) if finite.size else float("nan"),
        "median_r": float(np.median(finite)) if finite.size else float("nan"),
    }


def markdown_table(summaries: dict[str, dict[str, Any]]) -> str:
    """The Figure 6 numbers as a Markdown table, one row per model."""
    lines = [
        "| model | targets | strong | medium | poor | undefined (r NaN) | mean r |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summaries.items():
        sh, ct = s["share"], s["counts"]
        why = ", ".join(f"{v} {k}" for k, v in s["undefined_reasons"].items())
        lines.append(
            f"| {name} | {s['n_targets']} | {_pct(sh['strong'])} | {_pct(sh['medium'])} | {_pct(sh['poor'])} "
            f"| {ct[UNDEFINED]}{f' ({why})' if why else ''} | {s['mean_r']:.3f} |"
        )
    lines.append("")
    lines.append("Shares are of all selected target categories; Pearson r over positions 1..P of "
                 "behaviors of the target's own category. Bins: poor [-1, 0.2], medium (0.2, 0.8], "
                 "strong (0.8, 1].")
    return "\n".join(lines) + "\n"


SETTINGS_HEADER = ["setting", "seeds", "strong", "medium", "poor", "mean r"]


def settings_rows(summaries: dict[str, dict[str, Any]], settings: dict[str, list[str]]) -> list[list[str]]:
    """Figure 6 per setting: mean ± sample std over its seeds' runs (``settings``: name -> labels)."""
    def pct(values: list[float | None]) -> str:
        text = fmt_mean_std([None if v is None else 100 * v for v in values], digits=1)
        return text if text == "–" else f"{text}%"

    out = []
    for name, labels in settings.items():
        rows = [summaries[lb] for lb in labels if lb in summaries]
        if rows:  # JSON stores NaN as null: fmt_mean_std skips both
            shares = [pct([r["share"][b] for r in rows]) for b in BINS]
            out.append([name, str(len(rows)), *shares, fmt_mean_std([r["mean_r"] for r in rows], digits=3)])
    return out


def settings_table(summaries: dict[str, dict[str, Any]], settings: dict[str, list[str]]) -> str:
    """:func:`settings_rows` as a Markdown table."""
    lines = ["| " + " | ".join(SETTINGS_HEADER) + " |", "|---|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(row) + " |" for row in settings_rows(summaries, settings)]
    return "\n".join(lines) + "\n"


def _pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:.1f}%"

"""Inputs of the secondary figures: interval samples (Fig. 4), example sequences (Fig. 7), the
heatmap's rows (Fig. 1/3) and GAUC per history-length bucket (Table 3). All vectorised."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from chronorec.analysis.prepared import Samples
from chronorec.data.schema import FIRST_ID
from chronorec.metrics.ctr import gauc

DEFAULT_LENGTH_EDGES = (1, 5, 10, 15, 20)  # the TIN paper's Table 3 buckets: [1,5) ... [20, max]


def ragged_rows(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, rows)``: every global event row of ``[start, end)`` per sample and its sample index."""
    n = np.maximum(end - start, 0)
    owner = np.repeat(np.arange(start.shape[0]), n)
    first = np.repeat(np.cumsum(n) - n, n)
    rows = np.repeat(start, n) + (np.arange(owner.shape[0]) - first)
    return owner, rows


def sample_intervals(samples: Samples, event_ts: np.ndarray, max_intervals: int = 2_000_000,
                     seed: int = 0) -> np.ndarray:
    """Target-behavior intervals ``t_T - t_i`` (seconds) of every behavior of a random subset of
    samples holding at most ``max_intervals`` behaviors (all samples when they fit)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(samples))
    cum = np.cumsum(samples.hist_len[order])
    keep = order[: int(np.searchsorted(cum, max_intervals, side="right"))]
    owner, rows = ragged_rows(samples.hist_start[keep], samples.hist_end[keep])
    return samples.ts[keep][owner] - event_ts[rows]


def heatmap_rows(target: int, target_cat: np.ndarray, pos_cat: np.ndarray, n_rows: int) -> np.ndarray:
    """The ``n_rows`` most frequent history categories (positions 1..P) among samples of ``target``,
    always including ``target`` itself (the paper's Fig. 1 shows the top-5 categories)."""
    cats = pos_cat[target_cat == target]
    cats = cats[cats >= FIRST_ID]
    uniq, counts = np.unique(cats, return_counts=True)
    top = uniq[np.lexsort((uniq, -counts))][:n_rows]
    if target not in top:
        top = np.append(top[: n_rows - 1], target)
    return np.sort(top)


def pick_examples(samples: Samples, target_cat: np.ndarray, pos_cat: np.ndarray, selected: np.ndarray,
                  n: int = 2, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` random samples for Fig. 7: selected target category, a full window of P
    behaviors, positive label, and a window mixing behaviors of the target's category with others
    (like the paper's two examples); conditions are relaxed in turn when no sample meets them."""
    rng = np.random.default_rng(seed)
    full = selected & (samples.hist_len >= pos_cat.shape[1])
    is_same = pos_cat == target_cat[:, None]  # [N, P]
    same, mixed = is_same.any(axis=1), is_same.any(axis=1) & ~is_same.all(axis=1)
    pos = samples.label > 0.5
    for cond in (full & pos & mixed, full & mixed, full & pos & same, full & same, full, selected):
        idx = np.flatnonzero(cond)
        if idx.size:
            return np.sort(rng.choice(idx, size=min(n, idx.size), replace=False))
    return np.empty(0, dtype=np.int64)


def length_bucket_labels(edges: Sequence[int], max_len: int) -> list[str]:
    """``[1, 5)``, ..., ``[20, max]`` labels of the buckets delimited by ``edges``."""
    labels = [f"[{a}, {b})" for a, b in itertools.pairwise(edges)]
    labels.append(f"[{edges[-1]}, {max(max_len, edges[-1])}]")
    return labels


def gauc_by_length(hist_len: np.ndarray, labels: np.ndarray, scores: np.ndarray, users: np.ndarray,
                   edges: Sequence[int] = DEFAULT_LENGTH_EDGES) -> dict[str, dict[str, float]]:
    """GAUC (and sample count) per history-length bucket (TIN paper, Table 3)."""
    names = length_bucket_labels(edges, int(hist_len.max(initial=0)))
    bucket = np.searchsorted(np.asarray(edges), hist_len, side="right") - 1  # -1 = below the first edge
    out: dict[str, dict[str, float]] = {}
    for k, name in enumerate(names):
        sel = bucket == k
        out[name] = {"gauc": gauc(labels[sel], scores[sel], users[sel]) if sel.any() else float("nan"),
                     "n": int(sel.sum())}
    return out

"""Ground-truth semantic-temporal correlation: the Category-wise Target-aware Correlation (CTC).

TIN paper (Zhou et al., WWW'24 Companion), §2.1, Definition 1 / Eq. (1)::

    Cor(c_t, c, p) = MI( X = [the sample has a behavior of category c at position p],
                         Y = the label )      over the samples whose target has category c_t

with position ``p = 1`` the most recent behavior (TTE-P numbering, §3.1.1). Following
``design/METHODS.md`` §1 every labelled sample of the chosen splits counts, positives and
negatives alike (the paper's Amazon negatives replace the target by a random item, footnote 1).
The unknown category (UNK: items the source gives no category) is not a category: it is never a
target category, and an UNK behavior is "no behavior of category c" for every c.

Everything is vectorised: the ``[N, P]`` matrix of categories at positions ``1..P`` is one index
gather from the events column (row ``hist_end - p``), and the 2×2 contingency table of every
``(c_t, c, p)`` cell comes from one :func:`numpy.bincount` over the combined key
``((t * C + c) * P + (p - 1)) * 2 + y``. Mutual information is in nats (natural log), the
convention of :func:`sklearn.metrics.mutual_info_score`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from chronorec.data.schema import FIRST_ID, PAD

# above this many combined keys, count with a sort (np.unique) instead of a dense bincount
_DENSE_KEY_LIMIT = 50_000_000


def position_matrix(event_values: np.ndarray, hist_start: np.ndarray, hist_end: np.ndarray,
                    n_positions: int) -> np.ndarray:
    """``[N, P]`` values at positions ``1..P`` (column ``p - 1``; 1 = most recent), PAD where the
    history is shorter than ``p``."""
    p = np.arange(1, n_positions + 1)
    rows = hist_end[:, None] - p[None, :]  # [N, P] global event rows
    valid = rows >= hist_start[:, None]
    return np.where(valid, event_values[np.where(valid, rows, 0)], PAD)


def select_targets(target_cat: np.ndarray, top_k: int | None, min_samples: int) -> np.ndarray:
    """Target categories ordered by number of samples (desc, ties by id), keeping those with at
    least ``min_samples`` samples and at most ``top_k`` of them (the paper's top-200, App. A.2).

    The unknown category (UNK, an item without a category in the source) is not a category and is
    never selected."""
    cats, counts = np.unique(target_cat[target_cat >= FIRST_ID], return_counts=True)
    order = np.lexsort((cats, -counts))
    cats, counts = cats[order], counts[order]
    cats = cats[counts >= min_samples]
    return cats if top_k is None else cats[:top_k]


def target_index(target_cat: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``[N]`` index of each sample's target category in ``targets``, -1 when not selected."""
    size = int(max(target_cat.max(initial=0), targets.max(initial=0))) + 1
    lookup = np.full(size, -1, dtype=np.int64)
    lookup[targets] = np.arange(targets.shape[0])
    return lookup[target_cat]


def cell_sums(keys: np.ndarray, space: int, weights: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(unique_keys, counts, weight_sums)`` over the non-empty keys of ``[0, space)``."""
    w = None if weights is None else weights.astype(np.float64, copy=False)
    if space <= _DENSE_KEY_LIMIT:
        counts = np.bincount(keys, minlength=space)
        nz = np.flatnonzero(counts)
        sums = counts[nz].astype(np.float64) if w is None else np.bincount(keys, w, minlength=space)[nz]
        return nz, counts[nz], sums
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = counts.astype(np.float64) if w is None else np.bincount(inverse, w, minlength=uniq.shape[0])
    return uniq, counts, sums


def cell_keys(tidx: np.ndarray, pos_cat: np.ndarray, n_categories: int) -> tuple[np.ndarray, np.ndarray]:
    """Combined ``(t, c, p)`` keys of every behavior at positions 1..P: ``(keys, valid)`` where
    ``keys[valid]`` are the keys of the behaviors with a known category of a selected target
    (``valid = [N, P]``; padding and UNK-category behaviors count as "no category c" for every c)."""
    P = pos_cat.shape[1]
    keys = (tidx[:, None] * n_categories + pos_cat) * P + np.arange(P)[None, :]  # [N, P]
    valid = (pos_cat >= FIRST_ID) & (tidx[:, None] >= 0)
    return keys, valid


def binary_mi(n11: np.ndarray, n10: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray) -> np.ndarray:
    """Mutual information (nats) of a binary X and binary Y from per-cell counts.

    ``n11`` = #(X=1, Y=1), ``n10`` = #(X=1, Y=0), ``n_pos`` / ``n_neg`` = #(Y=1) / #(Y=0).
    ``MI = sum_{x,y} p(x,y) log(p(x,y) / (p(x) p(y)))`` with ``0 log 0 = 0``.
    """
    n11, n10 = n11.astype(np.float64), n10.astype(np.float64)
    n_pos, n_neg = n_pos.astype(np.float64), n_neg.astype(np.float64)
    n01, n00 = n_pos - n11, n_neg - n10
    n = n_pos + n_neg
    nx1, nx0 = n11 + n10, n01 + n00
    mi = np.zeros(np.broadcast(n11, n10, n_pos, n_neg).shape)
    for nxy, nx, ny in ((n11, nx1, n_pos), (n10, nx1, n_neg), (n01, nx0, n_pos), (n00, nx0, n_neg)):
        with np.errstate(divide="ignore", invalid="ignore"):
            term = nxy / n * np.log(nxy * n / (nx * ny))
        mi += np.where(nxy > 0, term, 0.0)
    return np.maximum(mi, 0.0)  # clip rounding noise below zero


def ctc_table(target_cat: np.ndarray, label: np.ndarray, pos_cat: np.ndarray, targets: np.ndarray,
              n_categories: int) -> pl.DataFrame:
    """The CTC of every non-empty ``(c_t, c, p)`` cell (Eq. 1) as a long table.

    Args:
        target_cat: ``[N]`` category of each sample's target.
        label: ``[N]`` labels in {0, 1}.
        pos_cat: ``[N, P]`` history categories at positions 1..P (:func:`position_matrix`).
        targets: selected target categories (:func:`select_targets`).
        n_categories: category vocabulary size (ids < n_categories).

    Returns columns ``target_category, category, position, mi, n_x1_pos, n_x1_neg, n_target_pos,
    n_target_neg``; a cell missing from the table has X = 0 for every sample, hence MI = 0.
    """
    P = pos_cat.shape[1]
    K = targets.shape[0]
    tidx = target_index(target_cat, targets)
    y = (label > 0.5).astype(np.int64)
    keys, valid = cell_keys(tidx, pos_cat, n_categories)
    keys = keys * 2 + y[:, None]
    uniq, counts, _ = cell_sums(keys[valid], K * n_categories * P * 2)
    sel = tidx >= 0
    n_ty = np.bincount(tidx[sel] * 2 + y[sel], minlength=K * 2).reshape(K, 2)  # [K, 2] (neg, pos)

    cell, yk = uniq // 2, uniq % 2
    cells = np.unique(cell)
    at = np.searchsorted(cells, cell)
    n_pos_x1 = np.bincount(at, counts * yk, minlength=cells.shape[0]).astype(np.int64)
    n_neg_x1 = np.bincount(at, counts * (1 - yk), minlength=cells.shape[0]).astype(np.int64)
    t = cells // (n_categories * P)
    c = (cells // P) % n_categories
    p = cells % P + 1
    mi = binary_mi(n_pos_x1, n_neg_x1, n_ty[t, 1], n_ty[t, 0])
    return pl.DataFrame({
        "target_category": targets[t].astype(np.int32),
        "category": c.astype(np.int32),
        "position": p.astype(np.int16),
        "mi": mi,
        "n_x1_pos": n_pos_x1,
        "n_x1_neg": n_neg_x1,
        "n_target_pos": n_ty[t, 1],
        "n_target_neg": n_ty[t, 0],
    })


def dense_grid(table: pl.DataFrame, value: str, target: int, categories: np.ndarray, n_positions: int,
               fill: float = 0.0) -> np.ndarray:
    """``[len(categories), P]`` grid of ``value`` for one target category (``fill`` where absent)."""
    grid = np.full((categories.shape[0], n_positions), fill, dtype=np.float64)
    sub = table.filter((pl.col("target_category") == target) & pl.col("category").is_in(categories.tolist()))
    if sub.height:
        row = _index_of(categories, sub["category"].to_numpy())
        grid[row, sub["position"].to_numpy().astype(np.int64) - 1] = sub[value].to_numpy()
    return grid


def same_category_curves(table: pl.DataFrame, value: str, targets: np.ndarray, n_positions: int,
                         fill: float = 0.0) -> np.ndarray:
    """``[K, P]`` curve of ``value`` over positions for behaviors of the target's own category."""
    out = np.full((targets.shape[0], n_positions), fill, dtype=np.float64)
    sub = table.filter(pl.col("target_category") == pl.col("category"))
    if sub.height:
        row = _index_of(targets, sub["target_category"].to_numpy())
        keep = row >= 0
        pos = sub["position"].to_numpy().astype(np.int64) - 1
        out[row[keep], pos[keep]] = sub[value].to_numpy()[keep]
    return out


def lookup_cells(table: pl.DataFrame, value: str, target_cat: np.ndarray, pos_cat: np.ndarray,
                 n_categories: int, fill: float = 0.0) -> np.ndarray:
    """Per-behavior ``[N, P]`` value of the cell ``(target_cat, pos_cat, p)`` (Fig. 7 of the paper)."""
    P = pos_cat.shape[1]
    if table.height == 0:
        return np.full(pos_cat.shape, fill, dtype=np.float64)
    tkeys = table["target_category"].to_numpy().astype(np.int64)
    key_tab = (tkeys * n_categories + table["category"].to_numpy()) * P + table["position"].to_numpy() - 1
    q = (target_cat[:, None].astype(np.int64) * n_categories + pos_cat) * P + np.arange(P)[None, :]
    at = _index_of(key_tab, q.reshape(-1)).reshape(q.shape)  # [N, P]
    vals = table[value].to_numpy().astype(np.float64)
    return np.where((at >= 0) & (pos_cat >= FIRST_ID), vals[np.maximum(at, 0)], fill)


def _index_of(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Index of each needle in ``haystack`` (-1 when absent)."""
    order = np.argsort(haystack)
    srt = haystack[order]
    at = np.clip(np.searchsorted(srt, needles), 0, max(srt.shape[0] - 1, 0))
    found = srt[at] == needles if srt.shape[0] else np.zeros(needles.shape, dtype=bool)
    return np.where(found, order[at], -1)

"""A seeded synthetic behavior log with a planted semantic-temporal pattern.

Used by tests, by ``make demo`` when the real data is absent, and by the correlation analysis
test, because its ground truth is known. The generative story (all parameters in
:class:`SyntheticConfig`):

* Items belong to ``n_categories`` categories (item k -> category k mod C, so every category has
  items); within a category, items are drawn with Zipf(``item_zipf``) popularity.
* Users have long-tailed activity: n_u ~ LogNormal with median ``mean_events`` (clipped to
  ``[min_events, max_events]``), and their own mean gap ~ LogNormal around ``mean_gap_days``; gaps
  are exponential. ``day_granular`` floors every timestamp to midnight UTC (like Amazon).
* **The planted pattern.** Before event t the user has a *category affinity*

      S_t(c) = sum_{j < t} position_decay^(t-1-j) * exp(-(ts_t - ts_j) / time_decay) * [c_j = c]

  i.e. behaviors of category c count more the more recent they are, both by position (TTE-P)
  and by elapsed time (TTE-T; ``time_decay_days=None`` turns the time factor off). The next
  category is drawn with P(c) proportional to ``1 + strength * S_t(c)``: the target's category
  is predicted by same-category behaviors at recent positions, with an influence that decays with
  recency; a random negative's category is not. That is exactly the signal TIN's category-wise
  target-aware correlation measures.
* Labelled impressions (for ``ctr-time-split``): before event t, with probability
  ``impression_rate``, an impression of a uniformly random item at a time strictly between the
  previous event and event t, clicked with probability
  ``sigmoid(click_bias + click_strength * S(c_item))`` evaluated at the impression's time.

Vectorised over users; the only Python loop is over positions (``max_events`` steps).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from chronorec.data.sources import SourceData

DAY = 86_400


class SyntheticConfig(BaseModel):
    """Parameters of :func:`synthetic_source` (defaults: a few thousand events, seconds resolution)."""

    n_users: int = Field(300, ge=1)
    n_items: int = Field(200, ge=2)
    n_categories: int = Field(8, ge=1)
    mean_events: float = Field(20.0, gt=0, description="median events per user")
    activity_sigma: float = Field(0.8, ge=0, description="log-normal spread of events per user")
    min_events: int = Field(4, ge=1)
    max_events: int = Field(200, ge=1)
    strength: float = Field(4.0, ge=0, description="pull of recent same-category behaviors")
    position_decay: float = Field(0.6, gt=0, le=1, description="weight ratio of consecutive positions")
    time_decay_days: float | None = Field(14.0, gt=0, description="e-folding age of a behavior; None = off")
    mean_gap_days: float = Field(2.0, gt=0)
    item_zipf: float = Field(1.0, ge=0, description="within-category popularity exponent (0 = uniform)")
    start: int = 1_500_000_000  # 2017-07-14 UTC
    day_granular: bool = False
    impression_rate: float = Field(0.5, ge=0, le=1)
    click_bias: float = -1.5
    click_strength: float = 2.0
    seed: int = 0


def planted_position_weights(cfg: SyntheticConfig, max_pos: int = 10) -> np.ndarray:
    """Weight of a same-category behavior at positions 1..max_pos (1 = most recent), time factor aside."""
    return cfg.position_decay ** np.arange(max_pos, dtype=np.float64)


def _item_tables(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item -> category; items grouped by category and ``category + popularity CDF`` per item.

    The second array is increasing over the whole catalog (category c's CDF lives in (c, c + 1]),
    so one ``searchsorted(cdf, c + u)`` with u in (0, 1] draws an item of category c.
    """
    item_cat = np.arange(cfg.n_items) % cfg.n_categories
    rng.shuffle(item_cat)
    order = np.argsort(item_cat, kind="stable")
    cdf = np.empty(cfg.n_items)
    for c in range(cfg.n_categories):
        m = np.flatnonzero(item_cat[order] == c)
        w = 1.0 / np.arange(1, m.size + 1) ** cfg.item_zipf
        cdf[m] = c + np.cumsum(w) / w.sum()
        cdf[m[-1]] = c + 1.0
    return item_cat, order, cdf


def _ids(prefix: str, values: np.ndarray, width: int = 5) -> pl.Series:
    """Raw string ids like ``u00042``, built column-wise."""
    return prefix + pl.Series(values, dtype=pl.Int64).cast(pl.Utf8).str.zfill(width)


def synthetic_source(cfg: SyntheticConfig | None = None, **overrides: object) -> SourceData:
    """Generate the log; ``synthetic_source(n_users=50, seed=3)`` overrides single fields."""
    cfg = (cfg or SyntheticConfig()).model_copy(update=overrides)
    cfg = SyntheticConfig.model_validate(cfg.model_dump())
    rng = np.random.default_rng(cfg.seed)
    U, C = cfg.n_users, cfg.n_categories
    item_cat, members, cdf = _item_tables(cfg, rng)
    n = np.exp(np.log(cfg.mean_events) + cfg.activity_sigma * rng.standard_normal(U))
    n = np.clip(np.round(n), cfg.min_events, max(cfg.min_events, cfg.max_events)).astype(np.int64)
    mean_gap = cfg.mean_gap_days * DAY * np.exp(0.5 * rng.standard_normal(U))
    tau = cfg.time_decay_days * DAY if cfg.time_decay_days else np.inf
    T = int(n.max())
    items = np.zeros((U, T), dtype=np.int64)
    ts = np.zeros((U, T), dtype=np.int64)
    state = np.zeros((U, C))
    now = cfg.start + rng.integers(0, 30 * DAY, size=U)
    imps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for t in range(T):
        alive = t < n
        gap = rng.exponential(mean_gap) if t else np.zeros(U)
        gap = np.maximum(np.round(gap), 0).astype(np.int64)
        new_now = now + gap
        if t:
            # an impression strictly between the previous event and this one
            has = alive & (rng.random(U) < cfg.impression_rate) & (gap >= 2)
            at = now + 1 + (rng.random(U) * (gap - 1)).astype(np.int64)
            cand = rng.integers(0, cfg.n_items, size=U)
            aff = state[np.arange(U), item_cat[cand]] * np.exp(-(at - now) / tau)
            p = 1.0 / (1.0 + np.exp(-(cfg.click_bias + cfg.click_strength * aff)))
            click = rng.random(U) < p
            u = np.flatnonzero(has)
            imps.append((u, cand[u], at[u], click[u].astype(np.int64)))
            state = state * np.exp(-gap / tau)[:, None]  # age the affinity to this event's time
        probs = 1.0 + cfg.strength * state
        cum = np.cumsum(probs, axis=1)
        cat = (cum < rng.random(U)[:, None] * cum[:, -1:]).sum(axis=1)
        it = members[np.searchsorted(cdf, cat + (1.0 - rng.random(U)))]
        items[:, t] = np.where(alive, it, 0)
        ts[:, t] = np.where(alive, new_now, 0)
        # this behavior becomes position 1 for the next event; older ones move one position back
        onehot = np.zeros((U, C))
        onehot[np.arange(U), cat] = 1.0
        state = np.where(alive[:, None], cfg.position_decay * state + onehot, state)
        now = np.where(alive, new_now, now)
    mask = np.arange(T)[None, :] < n[:, None]
    uid = np.broadcast_to(np.arange(U)[:, None], (U, T))[mask]
    ev_ts = ts[mask]
    imp_u, imp_i, imp_t, imp_l = (
        np.concatenate(x) if imps else np.zeros(0, np.int64) for x in zip(*imps, strict=True)
    )
    if cfg.day_granular:
        ev_ts, imp_t = ev_ts // DAY * DAY, imp_t // DAY * DAY
    events = pl.DataFrame(
        {
            "user": _ids("u", uid),
            "item": _ids("i", items[mask]),
            "ts": pl.Series(ev_ts, dtype=pl.Int64),
            "category": _ids("c", item_cat[items[mask]], 2),
        }
    )
    impressions = pl.DataFrame(
        {
            "user": _ids("u", imp_u),
            "item": _ids("i", imp_i),
            "ts": pl.Series(imp_t, dtype=pl.Int64),
            "label": pl.Series(imp_l, dtype=pl.Int64),
            "category": _ids("c", item_cat[imp_i], 2),
        }
    ).sort("ts", maintain_order=True)
    return SourceData(
        name="synthetic",
        events=events,
        side=["category"],
        files=[],
        impressions=impressions,
        time_granularity="day" if cfg.day_granular else "second",
    )

"""What every chronorec next-item model shares: config, embeddings, rhythm, batch preparation.

A :class:`SequenceRecommender` is a :class:`~chronorec.models.base.NextItemModel` with two extra
hooks the :class:`~chronorec.train.nextitem_task.NextItemTask` calls before ``forward``:

* ``prepare_batch(batch, training) -> Batch`` keeps the most recent ``max_len`` behaviors of each
  row (vectorised gathers, no per-row Python) and trims the batch to its own longest row. BERT4Rec
  overrides it to build its cloze batch (training) or append a ``[MASK]`` slot (evaluation).
* After preparation the hidden state that scores a row's next item sits at position
  ``lengths - 1``; training targets sit where ``target_item != 0``. The task relies on nothing else.

Rhythm (INTERPOS, see :mod:`chronorec.layers.rhythm`) and the optional target-time term are built
here so every model gets them the same way.

Target time (``target_time: true``, off by default). TIN's TTE-T encodes ``t_T - t_i``, which needs a
target; in full ranking every item is a candidate but they share one time, the moment the
recommendation is asked for. chronorec therefore encodes the elapsed time from the user's last
known behavior to that moment, bucketed with the rhythm rule, and adds its embedding ``T`` to the
hidden state: ``score(i) = <h_j + T[f(t_T - t_j)], e_i> = <h_j, e_i> + <T[f(.)], e_i>``. The second
term is a per-elapsed-time prior over items (what people pick after a short vs. a long absence), so
it re-ranks every candidate at the cost of one lookup. It uses the time of the event being
predicted (the request time), the same information TIN's TTE-T uses in CTR; leave-last-out
next-item protocols normally hide it, which is why it is off by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import FIRST_ID, DatasetSchema
from chronorec.layers.rhythm import BucketRule, FusionKind, PositionRhythmFusion, RhythmEmbedding
from chronorec.models.base import ModelOutput, NextItemModel


class SeqRecConfig(BaseModel):
    """Options every next-item model shares (RecBole / INTERPOS defaults)."""

    model_config = ConfigDict(extra="forbid")

    dim: int = Field(64, gt=0, description="item embedding / hidden size")
    max_len: int = Field(50, gt=0, description="most recent behaviors kept per sequence")
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    init_std: float = Field(0.02, gt=0.0, description="std of the normal initialiser")
    rhythm: FusionKind = "none"
    rhythm_bucket: BucketRule = "scaled_days"
    rhythm_scale: float = Field(0.2, gt=0.0, description="scaled_days: buckets per day")
    rhythm_cap: int = Field(640, ge=0, description="scaled_days: largest bucket (641 buckets)")
    rhythm_control: Literal["none", "constant"] = Field(
        "none", description="constant: every gap in one bucket, a control that keeps the fusion's parameters "
        "and removes the gaps' information")
    target_time: bool = False
    item_bias: bool = Field(
        False, description="a learnt per-item score bias, <h, E[i]> + b[i] (RecBole BERT4Rec's output_bias)")

    @model_validator(mode="after")
    def _control_needs_a_time_term(self) -> SeqRecConfig:
        if self.rhythm_control != "none" and self.rhythm == "none" and not self.target_time:
            raise ValueError("rhythm_control=constant blinds the rhythm, but this model has none: "
                             "set rhythm=bf|mf|gf (or target_time=true)")
        return self


class TransformerConfig(SeqRecConfig):
    n_layers: int = Field(2, gt=0)
    heads: int = Field(2, gt=0)
    inner: int = Field(256, gt=0)
    act: Literal["gelu", "relu", "silu", "tanh"] = "gelu"


class EncoderConfig(TransformerConfig):
    """Options of the models built on :class:`chronorec.layers.transformer.TransformerEncoder` (SASRec, BERT4Rec).

    ``ffn_dropout``: dropout on the feed-forward's inner activations. None = ``dropout``, the SASRec
    paper's layout and chronorec's default; 0 = RecBole's ``FeedForward``, which has none.
    """

    ffn_dropout: float | None = Field(None, ge=0, lt=1)


def _gather_rows(t: Tensor, idx: Tensor, keep: Tensor, fill: int) -> Tensor:
    """``t [B, L, ...]`` gathered at ``idx [B, W]`` along dim 1; ``fill`` where ``keep`` is False."""
    extra = t.shape[2:]
    ix = idx.view(*idx.shape, *([1] * len(extra))).expand(*idx.shape, *extra)
    out = t.gather(1, ix)  # [B, W, ...]
    k = keep.view(*keep.shape, *([1] * len(extra)))
    return torch.where(k, out, torch.full_like(out, fill))


def window_batch(batch: Batch, max_len: int) -> Batch:
    """Keep each row's most recent ``min(len, max_len)`` behaviors, trimmed to the longest row.

    Per-position training targets move with their positions. Vectorised: one gather per field.
    """
    L = batch.max_len
    longest = int(batch.lengths.max()) if len(batch) else 0
    W = max(min(max_len, longest), 1)
    if longest <= max_len:
        if W == L:
            return batch
        return _take_columns(batch, None, W)
    return _take_columns(batch, (batch.lengths - W).clamp_min(0), W)


def truncate_rows(batch: Batch, lengths: Tensor) -> Batch:
    """Keep each row's first ``lengths [B]`` behaviors (at most its own); the rest become padding.

    Width is unchanged; per-position targets past the new end are zeroed with the behaviors.
    """
    lengths = torch.minimum(lengths, batch.lengths)
    keep = torch.arange(batch.max_len, device=lengths.device)[None, :] < lengths[:, None]  # [B, L]

    def cut(t: Tensor, fill: int) -> Tensor:
        k = keep.view(*keep.shape, *([1] * (t.dim() - 2)))
        return torch.where(k, t, torch.full_like(t, fill))

    return _map_positions(batch, cut, keep, lengths)


def _take_columns(batch: Batch, offset: Tensor | None, W: int) -> Batch:
    """Columns ``offset_b .. offset_b + W - 1`` of every [B, L] field (a plain slice if no offset)."""
    lengths = batch.lengths.clamp_max(W)
    ar = torch.arange(W, device=lengths.device)
    mask = ar[None, :] < lengths[:, None]  # [B, W]
    if offset is not None:
        idx = (offset[:, None] + ar[None, :]).clamp_max(batch.max_len - 1)  # [B, W]

    def cut(t: Tensor, fill: int) -> Tensor:
        if offset is None:
            return t[:, :W]  # a slice keeps a view, no copy
        return _gather_rows(t, idx, mask, fill)

    return _map_positions(batch, cut, mask, lengths)


def _map_positions(batch: Batch, f: Callable[[Tensor, int], Tensor], mask: Tensor, lengths: Tensor) -> Batch:
    """``batch`` with ``f(t, padding value)`` applied to every ``[B, L, ...]`` field (per-position
    targets included) and the given ``mask`` / ``lengths``."""
    per_pos = batch.per_position_targets
    return replace(
        batch,
        hist_item=f(batch.hist_item, 0), hist_side={k: f(v, 0) for k, v in batch.hist_side.items()},
        hist_ts=f(batch.hist_ts, 0), hist_gap=f(batch.hist_gap, -1), hist_calendar=f(batch.hist_calendar, 0),
        mask=mask, lengths=lengths,
        target_item=f(batch.target_item, 0) if per_pos else batch.target_item,
        target_side={k: f(v, 0) for k, v in batch.target_side.items()} if per_pos else batch.target_side,
        target_ts=f(batch.target_ts, 0) if per_pos else batch.target_ts,
    )


def append_step(
    batch: Batch, take: Tensor, item: Tensor, ts: Tensor, gap: Tensor, side: dict[str, Tensor]
) -> Batch:
    """Write one behavior right after the last real one of the rows where ``take [B]`` is True.

    The batch grows by one column; ``item``, ``ts``, ``gap`` are ``[B]`` and ``side`` maps names to ``[B]``.
    Per-position targets of the new column are 0 (the caller sets them if it needs them).
    """
    B = len(batch)
    rows = torch.arange(B, device=batch.lengths.device)
    col = batch.lengths  # [B]: first padded column of each row

    def grow(t: Tensor, value: Tensor, fill: int) -> Tensor:
        out = torch.cat([t, torch.full_like(t[:, :1], fill)], dim=1)  # [B, L+1, ...]
        out[rows[take], col[take]] = value[take].to(out.dtype)
        return out

    lengths = batch.lengths + take.long()
    L1 = batch.max_len + 1
    per_pos = batch.per_position_targets
    zeros = torch.zeros(B, dtype=torch.long, device=col.device)
    return replace(
        batch,
        hist_item=grow(batch.hist_item, item, 0),
        hist_side={k: grow(v, side.get(k, zeros), 0) for k, v in batch.hist_side.items()},
        hist_ts=grow(batch.hist_ts, ts, 0), hist_gap=grow(batch.hist_gap, gap, -1),
        hist_calendar=torch.cat([batch.hist_calendar, batch.hist_calendar[:, :1] * 0], dim=1),
        mask=torch.arange(L1, device=col.device)[None, :] < lengths[:, None], lengths=lengths,
        target_item=torch.cat([batch.target_item, zeros[:, None]], 1) if per_pos else batch.target_item,
        target_side={k: torch.cat([v, zeros[:, None]], 1) for k, v in batch.target_side.items()}
        if per_pos else batch.target_side,
        target_ts=torch.cat([batch.target_ts, zeros[:, None]], 1) if per_pos else batch.target_ts,
    )


def init_normal(module: nn.Module, std: float) -> None:
    """RecBole's initialiser: N(0, std) for Linear/Embedding, zero biases and padding rows, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SequenceRecommender(NextItemModel):
    """Base of chronorec's next-item models: item table, (morphed) positions, target time, windowing.

    Subclasses implement ``encode(batch) -> [B, L, D]``; ``forward`` adds the target-time term.
    """

    plain_positions: ClassVar[bool] = True  # False: the model has no position term without rhythm

    def __init__(self, schema: DatasetSchema, cfg: SeqRecConfig, extra_item_rows: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_items = schema.item_vocab
        # extra rows (BERT4Rec's [MASK]) sit after the real items so item_weights() is a prefix view
        self.item_emb = nn.Embedding(self.n_items + extra_item_rows, cfg.dim, padding_idx=0)
        self.rhythm_ids = RhythmEmbedding(
            cfg.rhythm_bucket, scale=cfg.rhythm_scale, cap=cfg.rhythm_cap,
            edges=schema.bin_edges.get("gap") if cfg.rhythm_bucket == "equal_freq" else None,
            constant=cfg.rhythm_control == "constant",
        )
        self.positions = (
            PositionRhythmFusion(cfg.rhythm, cfg.dim, cfg.max_len, self.rhythm_ids.n_ids)
            if cfg.rhythm != "none" or self.plain_positions else None
        )
        self.elapsed_emb = nn.Embedding(self.rhythm_ids.n_ids, cfg.dim, padding_idx=0) if cfg.target_time else None
        # item_bias: one more column in the scored table and a constant 1 in every state, so each
        # consumer of (states, item_weights()) -- losses, ranking, serving, plugins -- adds b[i] as is
        self.item_bias = nn.Parameter(torch.zeros(self.n_items)) if cfg.item_bias else None

    def item_weights(self) -> Tensor:
        w = self.item_emb.weight
        # the table itself when it has no extra rows: a slice's backward writes a zero table and copies into it
        w = w if w.shape[0] == self.n_items else w[: self.n_items]  # [n_items, D], row 0 = padding
        return w if self.item_bias is None else torch.cat([w, self.item_bias[:, None]], dim=1)  # [n_items, D+1]

    def prepare_batch(self, batch: Batch, training: bool) -> Batch:
        return window_batch(batch, self.cfg.max_len)

    def morphed_positions(self, batch: Batch, rhythm_ids: Tensor | None = None) -> Tensor:
        """``[B|1, L, D]``: positions, morphed by the rhythm of each behavior when configured."""
        if self.positions is None:
            raise RuntimeError(f"{type(self).__name__} has no position term without rhythm")
        if self.cfg.rhythm != "none" and rhythm_ids is None:
            rhythm_ids = self.rhythm_ids(batch.hist_gap, batch.mask)  # [B, L]
        return self.positions(rhythm_ids, batch.max_len)

    def elapsed_seconds(self, batch: Batch) -> Tensor:
        """``[B, L]`` seconds from behavior ``j`` to the time of the item its hidden state predicts."""
        tt = batch.target_ts if batch.per_position_targets else batch.target_ts[:, None]  # [B, L|1]
        return torch.where(tt > 0, tt - batch.hist_ts, torch.full_like(batch.hist_ts, -1))  # [B, L]

    def read_positions(self, batch: Batch) -> Tensor | None:
        """``[B, L]`` positions whose states the training loss reads (its per-position targets), so an
        encoder can skip the rest in its last layer; None (read everything) outside training."""
        if not self.training or not batch.per_position_targets:
            return None
        return batch.target_item >= FIRST_ID  # [B, L]

    def encode(self, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, batch: Batch) -> ModelOutput:
        h = self.encode(batch)  # [B, L, D]
        if self.elapsed_emb is not None:
            dt = self.elapsed_seconds(batch)  # [B, L]
            known = batch.mask & (dt >= 0)
            h = h + self.elapsed_emb(self.rhythm_ids(dt, known))  # [B, L, D]; unknown time adds nothing
        if self.item_bias is not None:
            h = torch.cat([h, batch.mask[..., None].to(h.dtype)], dim=-1)  # [B, L, D+1]: 1 picks the bias
        return ModelOutput(logits=h)

"""BERT4Rec with optional INTERPOS rhythm.

Paper: Sun et al., *BERT4Rec: Sequential Recommendation with Bidirectional Encoder Representations
from Transformer* (CIKM 2019); layout as RecBole's ``BERT4Rec``:

    x_j = Dropout(LN(E[item_j] + M_j))      item_j may be [MASK]; M_j position or BF/MF/GF morph
    H   = TransformerEncoder_bidirectional(x)
    O_j = LN(GELU(W H_j + b))               output head
    score(j, i) = <O_j, E[i]>               tied item table, trained at the masked slots only

How it trains from chronorec's next-item batches (``prepare_batch``, vectorised, no row loops):

* training: the batch's sequence ``x_0..x_{n-2}`` plus its last per-position target ``x_{n-1}`` is
  the full training sequence; the most recent ``max_len`` items are kept; every real item is
  replaced by ``[MASK]`` with probability ``mask_ratio`` (rows that drew no mask get their last
  item masked, which also rehearses the evaluation case). ``target_item [B, L]`` becomes the
  original item at masked slots and 0 elsewhere, so the task's loss at ``target != 0`` applies as is.
  With ``ft_ratio`` > 0 that share of batches (drawn per batch from torch's seeded generator, as
  RecBole draws per batch) is a fine-tuning batch instead: only each row's last item is masked, the
  evaluation case. RecBole's default is 0.5; chronorec's is 0, because with disjoint windows (few per
  epoch) it costs accuracy; with ``train.window_stride=5`` it takes ml-100k from 34% to 12% below
  RecBole's converged accuracy (the mean of two RecBole seeds; docs/benchmark-results.md §4-s23, §4-s24).
  ``cut`` ends training rows early: each row is cut after one of its trained targets, drawn uniformly
  (its last ``window_stride`` with overlapping windows), in fine-tuning batches (``"ft"``) or in every
  batch (``"all"``). RecBole trains every prefix of a sequence; a stride-s window stands for s of
  them, and a cut samples one of those per epoch, so over epochs every target is the end of a
  training row (a fine-tuning case), not only the window ends, for a stride-s epoch's cost. On ml-100k
  (stride 5, 5 seeds; docs/benchmark-results.md §4-s26) ``cut="ft"`` was +0.0021 test NDCG@10, an
  interval including 0, and ``"all"`` lower (it early-stops sooner), so the default is ``"none"``.
* evaluation: the most recent ``max_len - 1`` behaviors are kept and a ``[MASK]`` is appended
  after them; its output (position ``lengths - 1`` of the prepared batch) scores the next item.

Rhythm: rhythm morphs positions as in SASRec. A masked slot hides its item and, unless
``target_time`` is on, its time too: its rhythm id is the reserved "unknown time" id, in training and
at the appended evaluation slot alike (at evaluation its gap would be the target's time). With
``target_time`` on, masked slots keep their true gap and the target-time term
(:mod:`chronorec.models.nextitem.common`) uses that same gap.

Defaults (RecBole): hidden 64, 2 layers, 2 heads, inner 256, dropout 0.2, mask_ratio 0.2, max_len 50
(including the appended [MASK] slot).

Deviations: no per-item output bias unless ``item_bias=true`` (RecBole's ``output_bias``; off by
default, as for the other next-item models); one dropout rate for hidden and attention dropout; the
[MASK] row sits after the real items in the item table and is never scored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.dropout import Dropout
from chronorec.layers.rhythm import RHYTHM_UNKNOWN
from chronorec.layers.transformer import TransformerEncoder
from chronorec.models.nextitem.common import (
    EncoderConfig,
    SequenceRecommender,
    append_step,
    init_normal,
    truncate_rows,
    window_batch,
)
from chronorec.models.registry import register_model


class BERT4RecConfig(EncoderConfig):
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    max_len: int = Field(50, ge=2, description="most recent behaviors kept, including the [MASK] slot")
    mask_ratio: float = Field(0.2, gt=0.0, le=1.0, description="share of items masked in training")
    ft_ratio: float = Field(
        0.0, ge=0.0, le=1.0, description="share of training batches that mask only each row's last item (RecBole's ft_ratio)"
    )
    cut: Literal["none", "ft", "all"] = Field(
        "none", description="cut training rows after a uniformly drawn trained target (dropping the behaviors "
        "after it): never, in fine-tuning batches, or in every batch")


@register_model("bert4rec", config=BERT4RecConfig)
class BERT4Rec(SequenceRecommender):
    """BERT4Rec: bidirectional self-attention trained as a cloze task (+ INTERPOS rhythm)."""

    def __init__(self, schema: DatasetSchema, cfg: BERT4RecConfig) -> None:
        super().__init__(schema, cfg, extra_item_rows=1)
        self.mask_id = self.n_items  # the extra row after the real items
        self.ln = nn.LayerNorm(cfg.dim)
        self.drop = Dropout(cfg.dropout)
        self.encoder = TransformerEncoder(
            cfg.n_layers, cfg.dim, cfg.heads, cfg.inner, cfg.dropout, cfg.act, cfg.ffn_dropout
        )
        self.head = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.GELU(), nn.LayerNorm(cfg.dim))
        init_normal(self, cfg.init_std)

    # ---- batch preparation -------------------------------------------------------------------
    def prepare_batch(self, batch: Batch, training: bool) -> Batch:
        return self._cloze(batch) if training else self._append_mask(batch)

    def _last(self, t: Tensor, lengths: Tensor) -> Tensor:
        """``t [B, L]`` at each row's last real position (0 for empty rows)."""
        v = t.gather(1, (lengths - 1).clamp_min(0)[:, None])[:, 0]  # [B]
        return torch.where(lengths > 0, v, torch.zeros_like(v))

    def _append_mask(self, batch: Batch) -> Batch:
        b = window_batch(batch, self.cfg.max_len - 1)
        last_ts = self._last(b.hist_ts, b.lengths)  # [B]
        tts = b.target_ts if not b.per_position_targets else self._last(b.target_ts, b.lengths)  # [B]
        gap = torch.where((tts > 0) & (b.lengths > 0), tts - last_ts, torch.full_like(tts, -1))  # [B]
        take = torch.ones(len(b), dtype=torch.bool, device=tts.device)
        return append_step(b, take, torch.full_like(tts, self.mask_id), tts, gap, {})

    def _cloze(self, batch: Batch) -> Batch:
        L = batch.lengths
        if batch.per_position_targets:  # recover the sequence's last item from its last target
            item = self._last(batch.target_item, L)  # [B]
            ts = self._last(batch.target_ts, L)
            side = {k: self._last(v, L) for k, v in batch.target_side.items()}
        else:
            item, ts, side = batch.target_item, batch.target_ts, batch.target_side
        gap = torch.where(L > 0, ts - self._last(batch.hist_ts, L), torch.full_like(ts, -1))  # [B]
        b = window_batch(append_step(batch, item != 0, item, ts, gap, side), self.cfg.max_len)
        # no draw at ft_ratio 0, so runs without fine-tuning batches keep their random stream
        ft = self.cfg.ft_ratio > 0 and float(torch.rand(())) < self.cfg.ft_ratio
        if self.cfg.cut == "all" or (ft and self.cfg.cut == "ft"):  # end each row at one of its trained targets
            # the row's trained targets: the last n items of the sequence once its last target is appended
            n = (batch.target_item != 0).sum(1) if batch.per_position_targets else torch.ones_like(L)
            back = (torch.rand(len(b), device=b.lengths.device) * n.clamp_max(b.lengths).clamp_min(1)).long()
            b = truncate_rows(b, (b.lengths - back).clamp_min(0))
        real = b.mask  # [B, W]
        last = torch.arange(b.max_len, device=real.device)[None, :] == (b.lengths - 1)[:, None]  # [B, W]
        if ft:
            masked = last & real  # a fine-tuning batch: the evaluation case, next item after the row
        else:
            masked = (torch.rand(real.shape, device=real.device) < self.cfg.mask_ratio) & real  # [B, W]
            # rows that drew no mask get their last item masked, so every row trains something
            masked |= last & real & ~masked.any(dim=1, keepdim=True)
        return replace(
            b,
            hist_item=torch.where(masked, torch.full_like(b.hist_item, self.mask_id), b.hist_item),
            target_item=torch.where(masked, b.hist_item, torch.zeros_like(b.hist_item)),  # [B, W]
            target_ts=torch.where(masked, b.hist_ts, torch.zeros_like(b.hist_ts)),
            target_side={k: torch.where(masked, v, torch.zeros_like(v)) for k, v in b.hist_side.items()},
        )

    # ---- model -------------------------------------------------------------------------------
    def elapsed_seconds(self, batch: Batch) -> Tensor:
        # a masked slot's target is the slot itself, so its elapsed time is its own gap
        return torch.where(batch.hist_item == self.mask_id, batch.hist_gap, torch.full_like(batch.hist_gap, -1))

    def encode(self, batch: Batch) -> Tensor:
        ids = None
        if self.cfg.rhythm != "none":
            ids = self.rhythm_ids(batch.hist_gap, batch.mask)  # [B, L]
            if not self.cfg.target_time:  # a masked slot's time is as hidden as its item
                ids = torch.where(batch.hist_item == self.mask_id, torch.full_like(ids, RHYTHM_UNKNOWN), ids)
        x = self.item_emb(batch.hist_item) + self.morphed_positions(batch, ids)  # [B, L, D]
        read = self.read_positions(batch)  # the masked slots in training
        h = self.encoder(self.drop(self.ln(x)), batch.mask, causal=False, read=read)  # [B, L, D]
        return self.head(h) * batch.mask[..., None].to(h.dtype)  # [B, L, D]

"""SASRec with optional INTERPOS rhythm-morphed positions.

Paper: Kang & McAuley, *Self-Attentive Sequential Recommendation* (ICDM 2018); rhythm fusion from
INTERPOS (arXiv 2506.12661). Layout and defaults as RecBole's ``SASRec``:

    x_j = Dropout(LN(E[item_j] + M_j))      M_j = P[j] (plain) or the BF/MF/GF morphed position
    H   = TransformerEncoder_causal(x)      post-LN blocks, padding-masked, query j sees keys <= j
    score(j, i) = <H_j, E[i]>               tied item table; trained at every real position

Defaults: hidden 64, 2 layers, 2 heads, inner 256, dropout 0.5 (RecBole's hidden and attention
dropout), GELU, max_len 50, N(0, 0.02) init. INTERPOS's released SASRec configs use hidden 128;
set ``dim: 128`` to reproduce them.

Deviations: one dropout rate for hidden and attention dropout (the shared encoder has one), which
by default also drops the feed-forward's inner activations as the SASRec paper does
(``ffn_dropout=0``: none, as RecBole);
LayerNorm eps 1e-5 instead of RecBole's 1e-12; every position is trained in one pass where RecBole
re-encodes every prefix. The targets are the same; their context is the same only within the first
``max_len`` events of a history: later, disjoint windows (the default) give a window's first targets
few behaviors, where RecBole's prefixes give each target its ``max_len`` latest.
``train.window_stride=1`` trains exactly RecBole's prefixes (one target per window), with RecBole's
encoder work; on amazon-beauty it is at RecBole's converged test NDCG@10 (two RecBole seeds) where
disjoint windows are 4% below, at 3.4x their epoch time at batch 64 and ~2x at batch 256, which keeps
its accuracy; ``window_stride=3`` at batch 128 with ``train.lr=0.002 train.lr_decay=0.5`` is there too
at 1.2-1.5x (docs/benchmark-results.md §4-s19, §4-s21, §4-s22).
"""

from __future__ import annotations

from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.dropout import Dropout
from chronorec.layers.transformer import TransformerEncoder
from chronorec.models.nextitem.common import EncoderConfig, SequenceRecommender, init_normal
from chronorec.models.registry import register_model


class SASRecConfig(EncoderConfig):
    pass


@register_model("sasrec", config=SASRecConfig)
class SASRec(SequenceRecommender):
    """SASRec: causal self-attention over the sequence (+ INTERPOS rhythm fusion)."""

    def __init__(self, schema: DatasetSchema, cfg: SASRecConfig) -> None:
        super().__init__(schema, cfg)
        self.ln = nn.LayerNorm(cfg.dim)
        self.drop = Dropout(cfg.dropout)
        self.encoder = TransformerEncoder(
            cfg.n_layers, cfg.dim, cfg.heads, cfg.inner, cfg.dropout, cfg.act, cfg.ffn_dropout
        )
        init_normal(self, cfg.init_std)

    def encode(self, batch: Batch) -> Tensor:
        x = self.item_emb(batch.hist_item) + self.morphed_positions(batch)  # [B, L, D]
        x = self.drop(self.ln(x))  # [B, L, D]
        return self.encoder(x, batch.mask, causal=True, read=self.read_positions(batch))  # [B, L, D]

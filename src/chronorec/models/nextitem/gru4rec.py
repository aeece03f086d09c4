"""GRU4Rec with optional INTERPOS rhythm.

Paper: Hidasi et al., *Session-based Recommendations with Recurrent Neural Networks* (ICLR 2016),
in the cross-entropy form of Tan et al. (2016) and RecBole's ``GRU4Rec``:

    x_j = Dropout(E[item_j] + M_j)          M_j = 0 (plain) or the BF/MF/GF morphed position
    s_j = GRU(x_j, s_{j-1})                 hidden state after every behavior
    H_j = W s_j                             back to the embedding size to score with E
    score(j, i) = <H_j, E[i]>

Defaults (RecBole): embedding 64, GRU hidden 128, 1 layer, dropout 0.3; xavier initialisation.

Rhythm: a GRU has no position embedding, so with ``rhythm: bf|mf|gf`` the whole morphed position
(learned position ⊕ rhythm, exactly as in SASRec) is added to the input embedding; with
``rhythm: none`` the model is plain GRU4Rec with no position term. Deviation: BF therefore also
gives the GRU an explicit position signal; use ``mf``/``gf`` to let the model weigh it.

Right padding needs no packing: a GRU is causal, so the padded tail never reaches real positions.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.dropout import Dropout
from chronorec.models.nextitem.common import SeqRecConfig, SequenceRecommender
from chronorec.models.registry import register_model


class GRU4RecConfig(SeqRecConfig):
    hidden: int = Field(128, gt=0, description="GRU state size")
    n_layers: int = Field(1, gt=0)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)


@register_model("gru4rec", config=GRU4RecConfig)
class GRU4Rec(SequenceRecommender):
    """GRU4Rec: a GRU over the sequence, one hidden state per position (+ INTERPOS rhythm)."""

    plain_positions = False

    def __init__(self, schema: DatasetSchema, cfg: GRU4RecConfig) -> None:
        super().__init__(schema, cfg)
        self.drop = Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.dim, cfg.hidden, num_layers=cfg.n_layers, batch_first=True, bias=False)
        self.proj = nn.Linear(cfg.hidden, cfg.dim)
        # RecBole: xavier-uniform GRU weights, xavier-normal embeddings and projections
        for name, p in self.named_parameters():
            if name.startswith("gru"):
                nn.init.xavier_uniform_(p)
            elif p.dim() >= 2:
                nn.init.xavier_normal_(p)
            else:
                nn.init.zeros_(p)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                    m.weight[m.padding_idx].zero_()

    def encode(self, batch: Batch) -> Tensor:
        x = self.item_emb(batch.hist_item)  # [B, L, D]
        if self.cfg.rhythm != "none":
            x = x + self.morphed_positions(batch)  # [B, L, D]
        s, _ = self.gru(self.drop(x))  # [B, L, hidden]
        return self.proj(s) * batch.mask[..., None].to(s.dtype)  # [B, L, D], padded rows zero

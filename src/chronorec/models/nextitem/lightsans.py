"""LightSANs with optional INTERPOS rhythm-morphed positions in the decoupled position branch.

Papers: Fan et al., *Lighter and Better: Low-Rank Decomposed Self-Attention Networks for Next-Item
Recommendation* (SIGIR 2021); INTERPOS (arXiv 2506.12661) for the rhythm. Layout as RecBole's
``LightSANs``: the item branch sees item embeddings only, positions enter only through the
decoupled position-to-position attention of every layer (equations in
:mod:`chronorec.layers.lightsans`):

    x_j = Dropout(LN(E[item_j]))            no position added to the input
    M_j = P[j]  or  BF/MF/GF(P[j], R[r_j])  per-sample morphed position (INTERPOS)
    H   = LightSANsEncoder(x, M)            per-layer logits A_pos = [B, heads, L, L] from M
    score(j, i) = <H_j, E[i]>

Defaults (INTERPOS's LightSANs config / RecBole): hidden 64, k_interests 5, 2 layers, 2 heads,
inner 256, dropout 0.5, GELU, max_len 50.

Deviations: the layer is made causal per prefix and uses the paper's softmax axes, and the
position branch is per sample (see :mod:`chronorec.layers.lightsans`), which is what lets a morphed
position per sample run at all — the released INTERPOS code cannot, as RecBole's layer takes one
position vector per index.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.dropout import Dropout
from chronorec.layers.lightsans import LightSANsEncoder
from chronorec.models.nextitem.common import SequenceRecommender, TransformerConfig, init_normal
from chronorec.models.registry import register_model


class LightSANsConfig(TransformerConfig):
    k_interests: int = Field(5, gt=0, description="latent interests of the low-rank item attention")


@register_model("lightsans", config=LightSANsConfig)
class LightSANs(SequenceRecommender):
    """LightSANs: low-rank item-to-interest attention + decoupled (rhythm-morphed) position attention."""

    def __init__(self, schema: DatasetSchema, cfg: LightSANsConfig) -> None:
        super().__init__(schema, cfg)
        self.ln = nn.LayerNorm(cfg.dim)
        self.drop = Dropout(cfg.dropout)
        self.encoder = LightSANsEncoder(
            cfg.n_layers, cfg.dim, cfg.heads, cfg.k_interests, cfg.inner, cfg.dropout, cfg.act
        )
        init_normal(self, cfg.init_std)

    def encode(self, batch: Batch) -> Tensor:
        x = self.drop(self.ln(self.item_emb(batch.hist_item)))  # [B, L, D]
        pos = self.morphed_positions(batch)  # [B|1, L, D]
        return self.encoder(x, pos, batch.mask)  # [B, L, D]

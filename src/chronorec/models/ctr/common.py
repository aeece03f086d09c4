"""What every CTR model shares: config fields, semantic + temporal embedding, item bias, MLP head.

A CTR model here is an *interest encoder* over ``(e~ [B, L, D], v~ [B, D])`` plus an MLP head:

    e~_i = [item ; side...](x_i) + p(x_i)        FeatureEmbedding + the configured temporal encoding
    v~_T = [item ; side...](x_T) + p(x_T)
    y    = MLP(features) + b[x_T]                 logit; b is the optional per-item bias

Presets (``tin_wo_tte``, ``din_prime``, ...) are the same class registered again with a config
subclass whose defaults differ (:func:`config_preset`), so there is no copied model code.

Serving scores many candidates after ONE history (``/score``). :meth:`CTRBase.score_shared_history`
is that entry point: by default the regular forward; models whose encoder can read the history once
(TIN, DIN) override it using :meth:`CTRBase.encode_shared`, and must equal the forward up to float
rounding (``tests/models/test_ctr_shared.py``).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, create_model
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.embedding import FeatureEmbedding
from chronorec.layers.mlp import MLP, Activation
from chronorec.layers.temporal import TemporalKind, build_temporal
from chronorec.models.base import CTRModel, Explanation


class CTRConfig(BaseModel):
    """Fields every CTR model has (defaults: the TIN paper's Amazon setting)."""

    model_config = ConfigDict(extra="forbid")

    dim: int = Field(64, gt=0, description="embedding size per feature part (D = dim * n_parts)")
    temporal: TemporalKind = "none"
    mlp: list[int] = Field(default_factory=lambda: [80, 40], description="MLP tower hidden sizes")
    activation: Activation = "sigmoid"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    item_bias: bool = Field(True, description="per-target-item logit bias b[x_T], as in the DIN/TIN code")


class PooledCTRConfig(CTRConfig):
    """DIN-code family (TIN, DIN, AvgPool): the pooled interest u goes through ``affine_u``."""

    affine_u: bool = Field(True, description="u' = Linear_D(scale * u + shift) (the code's inference-mode BN)")


class UserProjection(nn.Module):
    """``u' = Linear_D(scale * u + shift)``: the released DIN/TIN code's inference-mode BatchNorm
    (a fixed per-feature affine map) followed by a D x D dense layer. ``[B, D] -> [B, D]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.shift = nn.Parameter(torch.zeros(dim))
        self.linear = nn.Linear(dim, dim)

    def forward(self, u: Tensor) -> Tensor:
        return self.linear(u * self.scale + self.shift)


def config_preset(base: type[BaseModel], name: str, **defaults: Any) -> type[BaseModel]:
    """A subclass of ``base`` with other default values (e.g. ``temporal="none"``), same validators."""
    fields: dict[str, Any] = {k: (base.model_fields[k].annotation, v) for k, v in defaults.items()}
    return create_model(name, __base__=base, **fields)


class CTRBase(CTRModel):
    """Embeddings, temporal encoding and item bias; subclasses build their encoder and head.

    ``encode(batch) -> (e~ [B, L, D] zero at padding, v~ [B, D])``.
    """

    def __init__(self, schema: DatasetSchema, cfg: CTRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = FeatureEmbedding(schema, cfg.dim)
        self.D = self.embed.out_dim
        self.temporal = build_temporal(cfg.temporal, schema, self.D)
        self.bias = nn.Embedding(schema.item_vocab, 1) if cfg.item_bias else None
        if self.bias is not None:
            nn.init.zeros_(self.bias.weight)

    def semantic(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Semantic embeddings only: ``(e [B, L, D], v [B, D])``."""
        return self.embed.history(batch), self.embed.target(batch)

    def encode(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Semantic + temporal: ``(e~ [B, L, D], v~ [B, D])``, e~ exactly zero at padding."""
        e, v = self.semantic(batch)
        if self.temporal.zero:  # temporal="none": adding zeros would be a whole [B, L, D] pass
            return e, v
        pe, pv = self.temporal(batch)
        # in place: e is this call's own fresh tensor, and one [B, L, D] allocation fewer matters
        # (fresh pages cost page faults, a third of TIN's step CPU with glibc's default malloc)
        return e.add_(pe), v + pv  # [B, L, D], [B, D]

    def encode_shared(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`encode` of a batch whose rows all share row 0's history and ``target_ts``.

        ``-> (e~ [L, D], v~ [C, D], mask [L])``: the history is embedded and temporally encoded
        once (every encoding of it depends on the target only through ``target_ts``).
        """
        one = first_row(batch)
        e, v = self.embed.history(one), self.embed.target(batch)  # [1, L, D], [C, D]
        if not self.temporal.zero:
            e, v = e + self.temporal.history(one), v + self.temporal.target(batch)
        return e[0], v, one.mask[0]

    def score_shared_history(self, batch: Batch) -> Tensor:
        """Logits ``[C]`` of a batch whose C rows share ONE history and ``target_ts`` (serving:
        one user, C candidates). Models that can exploit the sharing override this; the result
        equals ``self(batch).logits`` up to float rounding either way."""
        return self(batch).logits

    def user_projection(self) -> nn.Module:
        """:class:`UserProjection` if the config asks for ``affine_u``, else identity."""
        return UserProjection(self.D) if getattr(self.cfg, "affine_u", False) else nn.Identity()

    def head(self, dim_in: int) -> MLP:
        return MLP(dim_in, self.cfg.mlp, self.cfg.activation, self.cfg.dropout, out_dim=1)

    def logit(self, mlp: nn.Module, features: Tensor, batch: Batch) -> Tensor:
        """``MLP(features) + b[x_T]``. ``features [B, F] -> [B]``."""
        y = mlp(features).squeeze(-1)  # [B]
        if self.bias is not None:
            y = y + self.bias(batch.target_item).squeeze(-1)
        return y


def first_row(batch: Batch) -> Batch:
    """Row 0 of ``batch`` as a 1-row batch of views (no copy)."""
    out: dict[str, Any] = {}
    for f in fields(batch):
        v = getattr(batch, f.name)
        out[f.name] = {k: t[:1] for k, t in v.items()} if isinstance(v, dict) else v[:1]
    return Batch(**out)


def explanation(mask: Tensor, attn_logit: Tensor | None, rep: Tensor) -> Explanation:
    """Table 2 terms with padded positions set to 0: ``attn_logit [B, L] | None``, ``rep [B, L, D]``
    (the per-behavior representation, reduced to its L2 norm here)."""
    attn = None if attn_logit is None else zero_pad(attn_logit, mask)
    return Explanation(attn_logit=attn, rep_norm=zero_pad(rep.norm(dim=-1), mask))


def zero_pad(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with padded positions set to exactly 0 (``where``, so NaN/inf junk cannot leak). ``[B, L]``"""
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))

"""TIN — Temporal Interest Network (Zhou, Pan et al., WWW'24 Companion, arXiv 2308.08487).

Equations (notation of ``design/METHODS.md`` §1)::

    e~_i = e_i + p[f(x_i)]                 f = TTE-P (default) | TTE-T | COE | calendar | none
    v~_T = v_T + p[0]                      the target sits at the origin
    z_i  = <v~_T, e~_i> / sqrt(D)          target-aware attention (TA), no projections
    a_i  = softmax_i(z_i) over real behaviors          (attention="mean": a_i = 1/H)
    u    = sum_i a_i e~_i                               (eq2=True: u = sum_i a_i (e~_i * v~_T), Eq. 2)
    u'   = Linear_D(scale * u + shift)                  (affine_u=False: u' = u)
    y    = MLP([u', v~_T, u' * v~_T]) + b[x_T]          target-aware representation (TR)
           MLP([u', v~_T])                              representation="none", or eq2=True (TR is in u)

Ablations (registered names): ``tin_wo_tte`` (no p), ``tin_wo_ta`` (masked mean), ``tin_wo_tr``
(no product term); temporal-encoding variants ``tin_ttet``, ``tin_coe``, ``tin_calendar``.

Training pools with :func:`~chronorec.layers.attention.dot_attention_pool` (one fused backward
for logits, softmax and pooling); serving scores C candidates after one history with
``score_shared_history``: the history is embedded and encoded once (``[L, D]``) and the logits
of all candidates are one ``[C, D] x [D, L]`` GEMM.

``explain`` follows Table 2 of the paper: ``attn_logit = z_i`` (None without TA) and
``rep_norm = ||e~_i * v~_T||_2`` with TR, ``||e~_i||_2`` without it.

Deviations from the paper (following the released code, see METHODS.md):
- ``u`` goes through the released code's fixed affine (its BatchNorm runs in inference mode) and a
  D x D linear layer before the MLP; emulated by a learned per-feature scale/shift (``affine_u``).
- Eq. 2 puts TR inside the sum; the released code multiplies outside (``u' * v~_T``), which is the
  default. Since ``sum_i a_i (e~_i * v~_T) = (sum_i a_i e~_i) * v~_T`` the Eq. 2 variant costs nothing.
- A per-item bias ``b[x_T]`` is added to the logit, as in the released code; no user embedding.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import model_validator
from torch import Tensor

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.attention import (
    attention_pool,
    dot_attention_logits,
    dot_attention_pool,
    masked_softmax,
    mean_weights,
    shared_dot_attention_pool,
)
from chronorec.layers.temporal import TemporalKind
from chronorec.models.base import Explanation, ModelOutput
from chronorec.models.ctr.common import CTRBase, PooledCTRConfig, config_preset, explanation
from chronorec.models.registry import register_model


class TINConfig(PooledCTRConfig):
    temporal: TemporalKind = "ttep"
    attention: Literal["target", "mean"] = "target"
    representation: Literal["product", "none"] = "product"
    eq2: bool = False

    @model_validator(mode="after")
    def _eq2_needs_tr(self) -> TINConfig:
        if self.eq2 and self.representation == "none":
            raise ValueError("eq2=True puts the target-aware representation inside u; it needs representation='product'")
        return self


class TIN(CTRBase):
    """Temporal Interest Network: target-aware temporal encoding, attention and representation."""

    def __init__(self, schema: DatasetSchema, cfg: TINConfig) -> None:
        super().__init__(schema, cfg)
        D = self.D
        self.proj = self.user_projection()
        self.product = cfg.representation == "product" and not cfg.eq2  # product term in the MLP input
        self.mlp = self.head(3 * D if self.product else 2 * D)

    def _weights(self, e: Tensor, v: Tensor, mask: Tensor) -> tuple[Tensor | None, Tensor]:
        """``(logits [B, L] or None, weights [B, L])`` of the configured attention."""
        if self.cfg.attention == "target":
            z = dot_attention_logits(v, e)  # [B, L]
            return z, masked_softmax(z, mask)
        return None, mean_weights(mask, e.dtype)

    def _logit(self, u: Tensor, v: Tensor, batch: Batch) -> Tensor:
        """From the pooled interest ``u [B, D]`` and target ``v [B, D]`` to the logits ``[B]``."""
        if self.cfg.eq2:
            u = u * v  # [B, D] = sum_i a_i (e~_i * v~_T)
        u = self.proj(u)  # [B, D]: u'
        feats = [u, v, u * v] if self.product else [u, v]
        return self.logit(self.mlp, torch.cat(feats, dim=-1), batch)

    def forward(self, batch: Batch) -> ModelOutput:
        e, v = self.encode(batch)  # [B, L, D], [B, D]
        if self.cfg.attention == "target":
            u = dot_attention_pool(v, e, batch.mask)  # [B, D], fused backward
        else:
            u = attention_pool(mean_weights(batch.mask, e.dtype), e)  # [B, D]
        return ModelOutput(logits=self._logit(u, v, batch))

    def score_shared_history(self, batch: Batch) -> Tensor:
        """Serving: one history ``[L, D]`` for C candidates; attention is a ``[C, D] x [D, L]`` GEMM."""
        e, v, mask = self.encode_shared(batch)  # [L, D], [C, D], [L]
        if self.cfg.attention == "target":
            u = shared_dot_attention_pool(v, e, mask)  # [C, D]
        else:
            u = (mean_weights(mask.unsqueeze(0), e.dtype) @ e).expand_as(v)  # [C, D]
        return self._logit(u, v, batch)

    @torch.no_grad()
    def explain(self, batch: Batch) -> Explanation:
        e, v = self.encode(batch)  # [B, L, D], [B, D]
        z, _ = self._weights(e, v, batch.mask)
        rep = e * v.unsqueeze(1) if self.cfg.representation == "product" else e  # [B, L, D]
        return explanation(batch.mask, z, rep)


register_model("tin", config=TINConfig)(TIN)
_PRESETS = {  # name: (config defaults, what `chronorec models` says)
    "tin_wo_tte": ({"temporal": "none"}, "TIN w/o TTE: no temporal encoding (ablation)."),
    "tin_wo_ta": ({"attention": "mean"}, "TIN w/o TA: masked mean instead of target-aware attention (ablation)."),
    "tin_wo_tr": ({"representation": "none"}, "TIN w/o TR: behaviors without the target product (ablation)."),
    "tin_ttet": ({"temporal": "ttet"}, "TIN with TTE-T: target-aware encoding of the interval in time-bins."),
    "tin_coe": ({"temporal": "coe"}, "TIN with COE: ordinary position encoding, not target-aware (Table 3/4)."),
    "tin_calendar": ({"temporal": "calendar"}, "TIN with calendar encoding: hour/weekday/month of each behavior."),
}
for _name, (_defaults, _summary) in _PRESETS.items():
    _cfg = config_preset(TINConfig, f"TINConfig_{_name}", **_defaults)
    register_model(_name, config=_cfg, summary=_summary)(TIN)

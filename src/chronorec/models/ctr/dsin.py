"""DSIN — Deep Session Interest Network (Feng et al., IJCAI'19), as compared in the TIN paper.

Equations::

    sessions: a new session starts where t_i - t_{i-1} > session_gap (1800 s); the most recent
              max_sessions sessions are kept (k = 1..K, oldest first), older behaviors are dropped
    x_i  = e~_i + BE(k(i), j(i))        bias encoding: w_session[k] + w_position[j] + w_unit
                                        (j = position inside the session)
    o    = TransformerEncoder(x) with attention restricted to the same session   (interest extractor)
    I_k  = mean of o over session k                                              session interests
    H    = (BiLSTM_fwd(I) + BiLSTM_bwd(I)) / 2                                   interest interacting
    u_I  = sum_k softmax_k(ActUnit_I(v~_T, I_k)) I_k;   u_H likewise with ActUnit_H on H_k
    y    = MLP([v~_T, u_I, u_H]) + b[x_T]

Sessions are computed vectorised from ``hist_ts`` (cumulative sum of the "new session" flags);
the same-session mask is ``sid_i == sid_j``. Session slots are right-padded; the Bi-LSTM runs
packed, so the backward direction starts at each row's last real session.

``explain``: each behavior gets its session's terms, ``attn_logit = ActUnit_I(v~_T, I_k(i))`` and
``rep_norm = ||I_k(i)||``; behaviors of dropped sessions (and padding) get 0 for both.

Deviations from the paper: DSIN also caps behaviors per session (10) and splits by fixed windows
on Alibaba; here only the session count is capped. The TIN paper's DSIN row (Bi-LSTM & COE) is
the default (bias encoding on, ``temporal="none"``); any ``temporal`` encoding can be added on top.
Sigmoid activation units (80-40) as in the other baselines.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.attention import ActivationUnit, attention_pool, masked_softmax
from chronorec.layers.transformer import TransformerEncoder
from chronorec.models.base import Explanation, ModelOutput
from chronorec.models.ctr.common import CTRBase, CTRConfig
from chronorec.models.registry import register_model


def split_sessions(ts: Tensor, mask: Tensor, lengths: Tensor, gap: int, max_sessions: int) -> tuple[Tensor, ...]:
    """Session structure of right-padded histories, vectorised.

    Returns ``(slot [B, L]`` session slot 0..K-1 (oldest kept = 0), ``kept [B, L]`` real and in a
    kept session, ``pos [B, L]`` position inside the session, ``n_kept [B]`` number of kept sessions).
    """
    B, L = ts.shape
    new = (ts[:, 1:] - ts[:, :-1] > gap) & mask[:, 1:]  # [B, L-1]: behavior i starts a session
    starts = torch.cat([mask[:, :1], new], dim=1)  # [B, L]
    sid = starts.long().cumsum(1) - 1  # [B, L] 0-based session id (-1 only for empty rows)
    n_sess = torch.where(lengths > 0, sid.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1) + 1, 0)
    first = (n_sess - max_sessions).clamp(min=0)  # [B] oldest kept session id
    slot = sid - first.unsqueeze(1)  # [B, L]
    kept = mask & (slot >= 0)
    ar = torch.arange(L, device=ts.device).expand(B, L)
    start_idx = torch.where(starts, ar, torch.zeros_like(ar)).cummax(dim=1).values  # [B, L] session start
    return slot.clamp(min=0), kept, ar - start_idx, n_sess - first


class DSINConfig(CTRConfig):
    session_gap: int = Field(1800, gt=0, description="seconds between behaviors that start a new session")
    max_sessions: int = Field(5, ge=1)
    bias_encoding: bool = True
    layers: int = Field(1, ge=1)
    heads: int = Field(8, ge=1)
    inner: int = Field(256, gt=0)
    att_hidden: list[int] = Field(default_factory=lambda: [80, 40])
    att_activation: Literal["sigmoid", "relu", "prelu"] = "sigmoid"


class DSIN(CTRBase):
    """Deep Session Interest Network: per-session self-attention, Bi-LSTM across sessions, target attention."""

    def __init__(self, schema: DatasetSchema, cfg: DSINConfig) -> None:
        super().__init__(schema, cfg)
        D, K = self.D, cfg.max_sessions
        self.max_pos = max(schema.max_history_len, 1)
        if cfg.bias_encoding:
            self.be_session = nn.Parameter(torch.randn(K, D) * 0.05)
            self.be_position = nn.Parameter(torch.randn(self.max_pos, D) * 0.05)
            self.be_unit = nn.Parameter(torch.zeros(D))
        self.encoder = TransformerEncoder(cfg.layers, D, cfg.heads, cfg.inner, cfg.dropout)
        self.lstm = nn.LSTM(D, D, batch_first=True, bidirectional=True)
        self.unit_i = ActivationUnit(D, cfg.att_hidden, cfg.att_activation)
        self.unit_h = ActivationUnit(D, cfg.att_hidden, cfg.att_activation)
        self.mlp = self.head(3 * D)

    def _sessions(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(I [B, K, D], sess_mask [B, K], slot [B, L], kept [B, L], v~ [B, D])``."""
        K = self.cfg.max_sessions
        e, v = self.encode(batch)  # [B, L, D], [B, D]
        slot, kept, pos, n_kept = split_sessions(batch.hist_ts, batch.mask, batch.lengths,
                                                 self.cfg.session_gap, K)
        if self.cfg.bias_encoding:
            be = self.be_session[slot] + self.be_position[pos.clamp(max=self.max_pos - 1)] + self.be_unit
            e = e + be * kept.unsqueeze(-1).to(e.dtype)  # [B, L, D]
        same = slot.unsqueeze(2) == slot.unsqueeze(1)  # [B, L, L] same session
        o = self.encoder(e, kept, causal=False, attn_mask=same)  # [B, L, D], 0 outside kept
        onehot = (slot.unsqueeze(-1) == torch.arange(K, device=slot.device)) & kept.unsqueeze(-1)  # [B, L, K]
        onehot = onehot.to(o.dtype)
        sessions = torch.einsum("blk,bld->bkd", onehot, o) / onehot.sum(1).clamp(min=1.0).unsqueeze(-1)  # [B, K, D]
        sess_mask = torch.arange(K, device=slot.device) < n_kept.unsqueeze(1)  # [B, K]
        return sessions, sess_mask, slot, kept, v

    def forward(self, batch: Batch) -> ModelOutput:
        sessions, sess_mask, _, _, v = self._sessions(batch)
        K = sessions.shape[1]
        n = sess_mask.sum(1)  # [B]
        packed = pack_padded_sequence(sessions, n.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=K)  # [B, K, 2D]
        fwd, bwd = out.chunk(2, dim=-1)
        h = (fwd + bwd) / 2 * sess_mask.unsqueeze(-1).to(out.dtype)  # [B, K, D]
        u_i = attention_pool(masked_softmax(self.unit_i(v, sessions), sess_mask), sessions)  # [B, D]
        u_h = attention_pool(masked_softmax(self.unit_h(v, h), sess_mask), h)  # [B, D]
        return ModelOutput(logits=self.logit(self.mlp, torch.cat([v, u_i, u_h], dim=-1), batch))

    @torch.no_grad()
    def explain(self, batch: Batch) -> Explanation:
        sessions, _, slot, kept, v = self._sessions(batch)
        z = self.unit_i(v, sessions)  # [B, K]
        zero = torch.zeros((), dtype=z.dtype)
        attn = torch.where(kept, z.gather(1, slot), zero)  # [B, L]: the behavior's session logit
        rep = torch.where(kept, sessions.norm(dim=-1).gather(1, slot), zero)  # [B, L]
        return Explanation(attn_logit=attn, rep_norm=rep)


register_model("dsin", config=DSINConfig)(DSIN)

"""Interaction rhythm (INTERPOS): gap → rhythm id, and the fusion of rhythm with positions.

Paper: *INTERPOS: Interaction Rhythm Guided Positional Morphing for Mobile App Recommender
Systems* (arXiv 2506.12661). The position embedding ``P[j]`` of a sequence model is "morphed"
by a rhythm embedding ``R[r_j]`` of the gap before behavior ``j``:

    gap_j = t_j - t_{j-1}   (gap of the first behavior = 0)
    BF:  x_j = E[item_j] + P[j] + R[r_j]
    MF:  x_j = E[item_j] + ReLU(W [P[j] ; R[r_j]])
    GF:  g = sigmoid(W_g [P[j] ; R[r_j]]);  x_j = E[item_j] + g * tanh(W_p P[j]) + (1 - g) * tanh(W_r R[r_j])

``j`` is the chronological index inside the (windowed) input sequence, 0 = oldest kept behavior.
:class:`PositionRhythmFusion` returns the *morphed position* (everything but ``E``), so SASRec adds
it to the item embedding while LightSANs feeds it to its decoupled position branch.

Rhythm ids (:class:`RhythmEmbedding`). Reserved ids follow the item-vocabulary convention:
``0`` = padding, ``1`` = unknown time (BERT4Rec's ``[MASK]`` slot, whose time is hidden), real
buckets start at ``2`` — so padding never collides with a zero gap. Bucketing rules:

* ``scaled_days`` (the released INTERPOS code): ``bucket = min(floor(scale * gap_days), cap)``,
  scale 0.2 per day and cap 640, i.e. the released table's 641 rhythm entries (5-day buckets up
  to ~8.8 years). Table size = 641 + 2 reserved rows.
* ``equal_freq``: ``bucket = #{edges e : e <= gap}`` over ``schema.bin_edges["gap"]`` (seconds,
  fitted on training gaps), i.e. ``torch.bucketize(gap, edges, right=True)``; ``len(edges) + 1``
  buckets.
* ``log``: ``bucket = 0`` for a gap under one second, else ``min(floor(log2(gap_s)) + 1, cap)``
  (cap 40 covers every representable gap).

Control (``constant=True``, ``--set model.rhythm_control=constant``): every time bucketed by this
module gets bucket 0, whatever its gap: the behaviors' rhythm and, when a model has it, the target-time
term. The fusion keeps all its parameters and sees no rhythm, which separates what the gaps tell a
model from what the fusion's extra position parameters do (INTERPOS has no such control).

Deviations: the paper normalises gaps "per dataset" without saying how; chronorec follows the
released scale-and-clip rule by default and offers the two data-driven rules as options. The
batch marks a user's first behavior's gap as ``-1``; like the paper's ``gap_1 = 0`` it is treated as
gap 0. A window cut from a longer history (the most recent ``max_len`` behaviors, or a sliding
training window) keeps its first behavior's real gap to the behavior before it: the gaps are computed
once per user at prepare time, and that gap is as observed as any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from chronorec.errors import ChronorecError

FusionKind = Literal["none", "bf", "mf", "gf"]
BucketRule = Literal["scaled_days", "equal_freq", "log"]

RHYTHM_PAD = 0
RHYTHM_UNKNOWN = 1
RHYTHM_FIRST = 2
_DAY = 86_400.0


class RhythmEmbedding(nn.Module):
    """Maps gaps in seconds to rhythm ids (the discretisation half of INTERPOS's rhythm embedding).

    The embedding table itself lives in :class:`PositionRhythmFusion` (or any consumer) and has
    :attr:`n_ids` rows. ``forward(gap [B, L] int64 seconds, mask [B, L] bool) -> ids [B, L] int64``.

    >>> rh = RhythmEmbedding("scaled_days")
    >>> rh(torch.tensor([[-1, 0, 432_000, 10**12, -1]]), torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool))
    tensor([[  2,   2,   3, 642,   0]])
    """

    def __init__(
        self,
        rule: BucketRule = "scaled_days",
        *,
        scale: float = 0.2,
        cap: int = 640,
        edges: Sequence[float] | None = None,
        log_cap: int = 40,
        constant: bool = False,
    ) -> None:
        super().__init__()
        self.rule = rule
        self.constant = constant
        if rule == "scaled_days":
            if scale <= 0 or cap < 0:
                raise ChronorecError(f"rhythm scale must be > 0 and cap >= 0, got {scale}, {cap}")
            # bucket width in seconds; float64 so that e.g. 5 days at scale 0.2 lands exactly on 1
            self.width = _DAY / scale
            self.n_buckets = cap + 1
        elif rule == "equal_freq":
            if edges is None or len(edges) == 0:
                raise ChronorecError(
                    "rhythm_bucket 'equal_freq' needs the dataset's gap bin edges (schema.bin_edges['gap'])"
                )
            e = torch.tensor(sorted(set(float(v) for v in edges)), dtype=torch.float64)
            self.n_buckets = int(e.numel()) + 1
            self.register_buffer("edges", e, persistent=False)
        elif rule == "log":
            self.n_buckets = log_cap + 1
        else:
            raise ChronorecError(f"unknown rhythm bucketing rule {rule!r}; choose scaled_days, equal_freq or log")
        self.cap = self.n_buckets - 1

    @property
    def n_ids(self) -> int:
        """Rows an embedding table over these ids needs (2 reserved + buckets)."""
        return RHYTHM_FIRST + self.n_buckets

    def bucket(self, gap: Tensor) -> Tensor:
        """Bucket index (0-based, before the reserved offset) of non-negative gaps in seconds."""
        if self.constant:  # the control: no gap information at all
            return torch.zeros_like(gap, dtype=torch.long)
        g = gap.to(torch.float64).clamp_min(0.0)
        if self.rule == "scaled_days":
            b = torch.floor(g / self.width)
        elif self.rule == "equal_freq":
            b = torch.bucketize(g, self.edges, right=True).to(torch.float64)
        else:
            b = torch.where(g >= 1.0, torch.floor(torch.log2(g.clamp_min(1.0))) + 1.0, torch.zeros_like(g))
        return b.clamp(max=float(self.cap)).to(torch.long)

    def forward(self, gap: Tensor, mask: Tensor) -> Tensor:
        ids = self.bucket(gap) + RHYTHM_FIRST  # [B, L]; first behavior (gap -1) clamps to gap 0
        return torch.where(mask, ids, torch.full_like(ids, RHYTHM_PAD))  # [B, L]


class PositionRhythmFusion(nn.Module):
    """Learned positions, optionally morphed by rhythm (BF / MF / GF, see the module docstring).

    ``forward(rhythm_ids [B, L] | None, length L) -> [B, L, D]`` (``[1, L, D]`` for ``kind="none"``,
    where every sample shares the same positions). The result excludes the item embedding.
    """

    def __init__(self, kind: FusionKind, dim: int, max_len: int, n_rhythm: int) -> None:
        super().__init__()
        if kind not in ("none", "bf", "mf", "gf"):
            raise ChronorecError(f"unknown rhythm fusion {kind!r}; choose none, bf, mf or gf")
        self.kind = kind
        self.max_len = max_len
        self.pos = nn.Embedding(max_len, dim)
        self.rhythm = nn.Embedding(n_rhythm, dim, padding_idx=RHYTHM_PAD) if kind != "none" else None
        if kind == "mf":
            self.mlp = nn.Linear(2 * dim, dim)
        elif kind == "gf":
            self.gate = nn.Linear(2 * dim, dim)
            self.proj_p = nn.Linear(dim, dim)
            self.proj_r = nn.Linear(dim, dim)

    def forward(self, rhythm_ids: Tensor | None, length: int) -> Tensor:
        if length > self.max_len:
            raise ValueError(f"sequence of {length} positions exceeds max_len {self.max_len}")
        p = self.pos.weight[:length][None]  # [1, L, D]
        if self.rhythm is None:
            return p
        if rhythm_ids is None:
            raise ValueError(f"rhythm fusion {self.kind!r} needs rhythm ids")
        r = self.rhythm(rhythm_ids)  # [B, L, D]
        if self.kind == "bf":
            return p + r  # [B, L, D]
        pr = torch.cat([p.expand_as(r), r], dim=-1)  # [B, L, 2D]
        if self.kind == "mf":
            return torch.relu(self.mlp(pr))  # [B, L, D]
        g = torch.sigmoid(self.gate(pr))  # [B, L, D]
        return g * torch.tanh(self.proj_p(p)) + (1.0 - g) * torch.tanh(self.proj_r(r))  # [B, L, D]

"""Temporal encodings any encoder can add to its behavior and target embeddings.

One interface: ``forward(batch) -> (hist_enc [B, L, D], target_enc [B, D])``, zero at padded
history positions (they look up a zero ``padding_idx`` row through their masked ids, whatever the
padded tail holds). Which one a model uses is its config's ``temporal`` field:

=============  =================================================================================
``none``       zeros (no temporal information)
``ttep``       TIN's TTE-P: behavior i of H gets ``H - i + 1`` (most recent = 1), target 0 = origin
``ttet``       TIN's TTE-T: ``bucketize(t_T - t_i)`` with ``schema.bin_edges["interval"]``, target 0
``coe``        chronological order: behavior i gets ``i`` (1 = oldest); target-agnostic; target 0
``calendar``   timestamp encoding: emb(hour) + emb(weekday) + emb(month) of each behavior's time;
               the target's fields are computed from ``target_ts`` (UTC) in torch
=============  =================================================================================

Index tables have ``n`` rows with row 0 the origin. TTE-P and COE size them from
``schema.max_history_len`` (``n = max_len + 1``); a longer history at serving time reuses the last
row for every index ``>= max_len`` (clamped) instead of failing.

Example::

    >>> from chronorec.data.batch import synthetic_batch
    >>> from chronorec.data.schema import DatasetSchema
    >>> schema = DatasetSchema(name="t", protocol="ctr-leave-one-out", task="ctr", n_users=10,
    ...     n_items=48, n_events=100, vocab_sizes={"item": 50}, max_history_len=5,
    ...     bin_edges={"interval": [3600.0, 86400.0]})
    >>> batch = synthetic_batch(batch_size=3, max_len=5)
    >>> hist, tgt = build_temporal("ttet", schema, dim=8)(batch)
    >>> hist.shape, tgt.shape                                  # [B, L, D], [B, D]
    (torch.Size([3, 5, 8]), torch.Size([3, 8]))
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chronorec.data.batch import Batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.fused import gather_rows

TemporalKind = Literal["none", "ttep", "ttet", "coe", "calendar"]


def bucketize(values: Tensor, edges: Tensor) -> Tensor:
    """Bin ids ``1 .. len(edges) + 1``: ``1 + #{edges < value}``, mirroring ``chronorec.data.timefeatures.bucketize``.

    That is numpy's ``searchsorted(edges, value, side="left") + 1``: bin k (1-based) holds
    ``(edges[k-2], edges[k-1]]``, so a value equal to an edge falls in the lower bin (every zero
    interval shares bin 1 when the first edge is 0). Id 0 is left free for the origin/padding.
    """
    return torch.bucketize(values, edges.to(values.dtype), right=False) + 1


def integer_edges(edges: list[float]) -> Tensor:
    """Float edges -> int64 ``floor(edges)``, exact for integer-second values.

    For an integer v, ``e < v`` iff ``floor(e) < v``, so the bins are unchanged; an int64 buffer
    also survives ``model.to(torch.bfloat16)``, which would round float edges.
    """
    return torch.tensor(edges, dtype=torch.float64).floor().to(torch.long)


def calendar_fields(ts: Tensor) -> Tensor:
    """UTC ``[hour+1, weekday+1 (Mon=1), month]`` of int64 Unix seconds, all in torch. ``[*S] -> [*S, 3]``.

    Month uses Howard Hinnant's ``civil_from_days`` (days -> proleptic Gregorian date).
    """
    days = torch.div(ts, 86_400, rounding_mode="floor")  # [*S]
    hour = torch.div(ts - days * 86_400, 3600, rounding_mode="floor")  # [*S] 0..23
    wday = (days + 3) % 7  # 1970-01-01 was a Thursday (Mon = 0)
    z = days + 719_468
    era = torch.div(z, 146_097, rounding_mode="floor")
    doe = z - era * 146_097  # day of the 400-year era, 0..146096
    yoe = torch.div(doe - doe // 1460 + doe // 36_524 - doe // 146_096, 365, rounding_mode="floor")
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # day of year starting in March
    mp = torch.div(5 * doy + 2, 153, rounding_mode="floor")
    month = torch.where(mp < 10, mp + 3, mp - 9)  # [*S] 1..12
    return torch.stack([hour + 1, wday + 1, month], dim=-1)  # [*S, 3]


class TemporalEncoding(nn.Module):
    """Base class: ``forward(batch) -> (hist_enc [B, L, D], target_enc [B, D])``, zero at padding.

    The two halves are separate methods because serving needs them at different batch sizes: the
    history part once for a shared history (a 1-row batch), the target part once per candidate.
    """

    zero = False  # True when the encoding adds nothing (callers may skip the [B, L, D] add)

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def history(self, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        """``[B, L, D]``, exactly zero at padded positions."""
        raise NotImplementedError

    def target(self, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        """``[B, D]`` (the shape of ``batch.target_item`` plus ``D``)."""
        raise NotImplementedError

    def project_history(self, batch: Batch, weight: Tensor) -> Tensor | None:
        """``history(batch) @ weight.T`` (``weight [H, D]`` -> ``[B, L, H]``), None when the encoding is zero.

        Table-based encodings override it to project their few table rows and gather, instead of a
        ``[B*L, D] x [D, H]`` GEMM (DIN's activation unit uses it for its key part).
        """
        return self.history(batch) @ weight.T

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        return self.history(batch), self.target(batch)


class NoTemporal(TemporalEncoding):
    """No temporal information: broadcast zeros (no memory is allocated for them)."""

    zero = True

    def __init__(self, schema: DatasetSchema, dim: int) -> None:
        super().__init__(dim)

    def history(self, batch: Batch) -> Tensor:
        return torch.zeros((), device=batch.hist_item.device).expand(*batch.hist_item.shape, self.dim)

    def target(self, batch: Batch) -> Tensor:
        return torch.zeros((), device=batch.hist_item.device).expand(*batch.target_item.shape, self.dim)

    def project_history(self, batch: Batch, weight: Tensor) -> Tensor | None:
        return None


class _IndexTemporal(TemporalEncoding):
    """A table ``p`` of ``n`` rows; behaviors look up ``indices(batch)``, the target gets ``p[0]``.

    Stored with one extra leading zero row (``padding_idx``): ``p[k]`` is ``table.weight[k + 1]``, and
    padded positions look up row 0 through their ids, so no ``[B, L, D]`` mask multiply is needed.
    """

    def __init__(self, dim: int, n: int, init_std: float = 0.05) -> None:
        super().__init__(dim)
        self.n = n
        self.table = nn.Embedding(n + 1, dim, padding_idx=0)
        nn.init.normal_(self.table.weight, std=init_std)
        with torch.no_grad():
            self.table.weight[0].zero_()

    @property
    def p(self) -> Tensor:
        """The ``[n, D]`` encoding table, row 0 = the origin (a view)."""
        return self.table.weight[1:]

    def indices(self, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _rows(self, batch: Batch) -> Tensor:
        return torch.where(batch.mask, self.indices(batch) + 1, 0)  # [B, L]; 0 = the zero row

    def history(self, batch: Batch) -> Tensor:
        return gather_rows(self.table.weight, self._rows(batch))  # [B, L, D]; = self.table(rows)

    def target(self, batch: Batch) -> Tensor:
        return self.table.weight[1].expand(*batch.target_item.shape, self.dim)  # [B, D]: the origin p[0]

    def project_history(self, batch: Batch, weight: Tensor) -> Tensor | None:
        # n + 1 table rows projected once; the zero row stays zero, so padding still gathers zeros
        return F.embedding(self._rows(batch), self.table.weight @ weight.T)  # [B, L, H]


class TTEP(_IndexTemporal):
    """TTE-P: index ``H - i + 1`` (``batch.positions_from_recent()``), clamped to ``max_len``."""

    def __init__(self, schema: DatasetSchema, dim: int) -> None:
        self.max_len = max(schema.max_history_len, 1)
        super().__init__(dim, self.max_len + 1)

    def indices(self, batch: Batch) -> Tensor:
        return batch.positions_from_recent().clamp(max=self.max_len)  # [B, L]


class COE(_IndexTemporal):
    """Chronological order encoding: index ``i`` (1-based, oldest = 1), clamped to ``max_len``."""

    def __init__(self, schema: DatasetSchema, dim: int) -> None:
        self.max_len = max(schema.max_history_len, 1)
        super().__init__(dim, self.max_len + 1)

    def indices(self, batch: Batch) -> Tensor:
        ar = torch.arange(1, batch.max_len + 1, device=batch.hist_item.device)  # [L]
        return ar.clamp(max=self.max_len).expand_as(batch.hist_item)  # [B, L]


class TTET(_IndexTemporal):
    """TTE-T: ``bucketize(t_T - t_i, schema.bin_edges["interval"])`` -> ids ``1 .. n_edges + 1``.

    The edges live in an int64 buffer (see :func:`integer_edges`), so a saved model carries them.
    Only one target per row is supported (``target_ts [B]``).
    """

    def __init__(self, schema: DatasetSchema, dim: int) -> None:
        edges = schema.bin_edges.get("interval")
        if not edges:
            raise ValueError('temporal="ttet" needs schema.bin_edges["interval"] (fitted at prepare time)')
        super().__init__(dim, len(edges) + 2)
        self.register_buffer("edges", integer_edges(edges))

    def indices(self, batch: Batch) -> Tensor:
        if batch.per_position_targets:
            raise ValueError("TTE-T needs one target per row (target_ts [B])")
        tau = batch.target_ts.unsqueeze(1) - batch.hist_ts  # [B, L] seconds before the target
        return bucketize(tau, self.edges)  # [B, L] in 1 .. n_edges + 1


class CalendarEncoding(TemporalEncoding):
    """Timestamp encoding: ``emb_h(hour) + emb_w(weekday) + emb_m(month)`` (ids as in ``hist_calendar``).

    The three tables are one ``[25 + 8 + 13, D]`` parameter with field offsets, summed with a single
    ``embedding_bag`` (3 ids per position); row 0 is a shared zero row for padding/missing fields.
    """

    SIZES = (25, 8, 13)  # hour+1 in 1..24, weekday+1 in 1..7, month in 1..12; 0 = padding

    def __init__(self, schema: DatasetSchema, dim: int, init_std: float = 0.05) -> None:
        super().__init__(dim)
        self.register_buffer("offsets", torch.tensor([0, 25, 33]), persistent=False)
        self.weight = nn.Parameter(torch.randn(sum(self.SIZES), dim) * init_std)
        with torch.no_grad():
            self.weight[self.offsets] = 0.0

    def field_weight(self, k: int) -> Tensor:
        """Table of field k (0 hour, 1 weekday, 2 month), a view. ``[SIZES[k], D]``"""
        start = int(self.offsets[k])
        return self.weight[start : start + self.SIZES[k]]

    def _encode(self, cal: Tensor, mask: Tensor | None, weight: Tensor | None = None) -> Tensor:
        keep = cal > 0 if mask is None else (cal > 0) & mask.unsqueeze(-1)  # [*S, 3]
        rows = torch.where(keep, cal + self.offsets, 0)  # [*S, 3]
        table = self.weight if weight is None else weight
        out = F.embedding_bag(rows.reshape(-1, 3), table, mode="sum", padding_idx=0)  # [N, D]
        return out.view(*cal.shape[:-1], table.shape[1])  # [*S, D]

    def history(self, batch: Batch) -> Tensor:
        return self._encode(batch.hist_calendar, batch.mask)  # [B, L, D]

    def target(self, batch: Batch) -> Tensor:
        return self._encode(calendar_fields(batch.target_ts), None)  # [B, D]

    def project_history(self, batch: Batch, weight: Tensor) -> Tensor | None:
        # the sum of three rows projects to the sum of their projections: project the 46 rows once
        return self._encode(batch.hist_calendar, batch.mask, self.weight @ weight.T)  # [B, L, H]


_KINDS: dict[str, type[TemporalEncoding]] = {
    "none": NoTemporal, "ttep": TTEP, "ttet": TTET, "coe": COE, "calendar": CalendarEncoding,
}


def build_temporal(kind: str, schema: DatasetSchema, dim: int) -> TemporalEncoding:
    """The temporal encoding named ``kind`` (one of :data:`TemporalKind`), ``dim`` wide."""
    if kind not in _KINDS:
        raise ValueError(f"unknown temporal encoding {kind!r}; choose from {sorted(_KINDS)}")
    return _KINDS[kind](schema, dim)

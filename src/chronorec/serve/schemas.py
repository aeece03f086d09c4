"""Request and response bodies of the HTTP service (pydantic), built per served dataset.

The side features of a dataset (``category``, ``brand``, ...) are optional string fields of every
history event and candidate, so the models are created at start-up from the schema's
``side_features`` and the server's limits. Unknown fields are rejected (a typo in a side feature
name would otherwise silently fall back to the item's known value).

Checks that need the whole request (history sorted by time, no history event after the request
time) live in :func:`check_times` so their errors can name the offending index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, create_model

MAX_TS = 253_402_300_799  # 9999-12-31T23:59:59Z: keeps calendar arithmetic in range
MAX_ID_CHARS = 512


def _id_to_str(value: Any) -> Any:
    """Raw ids are strings; integral JSON numbers are accepted as their decimal text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


RawId = Annotated[str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=MAX_ID_CHARS, strict=True)]
Timestamp = Annotated[StrictInt, Field(ge=0, le=MAX_TS, description="integer seconds since the Unix epoch (UTC)")]


@dataclass(frozen=True)
class Limits:
    """Request size limits of one server (beyond them: 413)."""

    max_candidates: int = 1000
    max_history: int = 1000
    max_exclude: int = 10_000
    max_k: int = 1000

    @property
    def max_body_bytes(self) -> int:
        # generous per-entry budget (ids up to MAX_ID_CHARS plus side values) and a fixed overhead
        per_entry = 3 * MAX_ID_CHARS
        return 65_536 + per_entry * (self.max_history + self.max_candidates + self.max_exclude)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class RequestModels:
    """The pydantic models of one server."""

    event: type[BaseModel]
    candidate: type[BaseModel]
    score: type[BaseModel]
    recommend: type[BaseModel]


def build_request_models(side_features: Sequence[str], limits: Limits) -> RequestModels:
    """Request models for a dataset with the given side features, bounded by ``limits``."""
    side: dict[str, Any] = {f: (RawId | None, Field(default=None, description=f"raw {f} value")) for f in side_features}
    event = create_model(  # type: ignore[call-overload]
        "HistoryEvent", __base__=_Strict, item=(RawId, ...), ts=(Timestamp, ...), **side,
    )
    candidate = create_model("Candidate", __base__=_Strict, item=(RawId, ...), **side)  # type: ignore[call-overload]
    history_field = (list[event], Field(default_factory=list, max_length=limits.max_history,  # type: ignore[valid-type]
                                        description="the user's behaviors, oldest first"))
    common: dict[str, Any] = {
        "history": history_field,
        "ts": (Timestamp | None, Field(default=None, description="request time; default: now")),
        "user": (RawId | None, Field(default=None, description="raw user id (activity-group routing)")),
    }
    score = create_model(  # type: ignore[call-overload]
        "ScoreRequest", __base__=_Strict,
        candidates=(list[candidate], Field(..., min_length=1, max_length=limits.max_candidates)),  # type: ignore[valid-type]
        **common,
    )
    # a next-item model reads nothing but the history: with none, every item scores the same and the
    # "top k" would be the first k vocabulary ids, so an empty (or absent) history is a 422
    rec_history = (list[event], Field(..., min_length=1, max_length=limits.max_history,  # type: ignore[valid-type]
                                      description="the user's behaviors, oldest first (at least one)"))
    recommend = create_model(  # type: ignore[call-overload]
        "RecommendRequest", __base__=_Strict,
        k=(Annotated[StrictInt, Field(ge=1, le=limits.max_k)], 10),
        exclude=(list[RawId], Field(default_factory=list, max_length=limits.max_exclude)),
        exclude_history=(bool, Field(default=True, strict=True)),
        **{**common, "history": rec_history},
    )
    return RequestModels(event, candidate, score, recommend)


class TimeOrderError(ValueError):
    """A history timestamp out of order or after the request time; ``loc`` names the field."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def check_times(ts: np.ndarray, request_ts: int) -> None:
    """Raise :class:`TimeOrderError` for the first unsorted or future history timestamp."""
    if len(ts) == 0:
        return
    down = np.flatnonzero(ts[1:] < ts[:-1])
    future = np.flatnonzero(ts > request_ts)
    i_down = int(down[0]) + 1 if len(down) else len(ts)
    i_future = int(future[0]) if len(future) else len(ts)
    if i_down < len(ts) and i_down <= i_future:
        raise TimeOrderError(
            ("body", "history", i_down, "ts"),
            f"history[{i_down}].ts = {ts[i_down]} is earlier than history[{i_down - 1}].ts = "
            f"{ts[i_down - 1]}: history must be sorted by time, oldest first",
        )
    if i_future < len(ts):
        raise TimeOrderError(
            ("body", "history", i_future, "ts"),
            f"history[{i_future}].ts = {ts[i_future]} is later than the request ts = {request_ts}: "
            "history events cannot be in the future",
        )


class ScoreResponse(BaseModel):
    scores: list[float] = Field(description="click probability per candidate, in request order")
    model: str
    unknown_items: int = Field(description="history and candidate item ids not seen in training (scored as UNK)")
    unknown_side: dict[str, int] = Field(default_factory=dict, description="given side values not seen in training")


class RecommendedItem(BaseModel):
    item: str
    score: float


class RecommendResponse(BaseModel):
    items: list[RecommendedItem] = Field(description="best first; padding, UNK and excluded ids never appear")
    model: str
    unknown_items: int = Field(description="history item ids not seen in training (read as UNK)")
    unknown_side: dict[str, int] = Field(default_factory=dict, description="given side values not seen in training")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    error: str = Field(description="one-line summary")
    detail: list[ErrorItem]

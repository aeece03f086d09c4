"""What a source loader returns (:class:`SourceData`), what it is given (:class:`Request`) and the
registry that maps a source name to its loader.

A loader is a function ``(Request) -> SourceData`` registered with :func:`register`::

    @register("csv", "generic delimited file with a column mapping", options={"encoding": "..."})
    def load_csv(req: Request) -> SourceData: ...

Each layout family lives in its own module (``generic``, ``movielens``, ``amazon``, ...); importing
:mod:`chronorec.data.sources` imports them all, which fills the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from chronorec.errors import ChronorecError

TimeUnit = Literal["auto", "s", "ms", "iso"]
TIME_UNITS: tuple[str, ...] = ("auto", "s", "ms", "iso")


@dataclass
class SourceData:
    """One source, read and checked: the canonical events table plus what ``prepare`` needs to know.

    ``events`` follows :mod:`chronorec.data.schema`: ``user`` / ``item`` Utf8, ``ts`` Int64 seconds,
    then optional ``category`` / ``brand`` / extra categorical Utf8 columns, ``rating`` Float64 and
    ``session`` Utf8. ``side`` lists the categorical *item* side features in embedding order.
    """

    name: str
    events: pl.DataFrame
    side: list[str]
    files: list[Path]
    impressions: pl.DataFrame | None = None
    time_granularity: str = "second"


@dataclass
class Request:
    """The arguments of :func:`~chronorec.data.sources.load_source`, resolved once for a loader."""

    name: str
    path: Path
    mapping: dict[str, str] | None = None
    time_unit: TimeUnit = "auto"
    sep: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


Loader = Callable[[Request], SourceData]


@dataclass(frozen=True)
class SourceSpec:
    name: str
    description: str
    loader: Loader
    options: dict[str, str]  # accepted option -> one-line meaning
    takes_mapping: bool


REGISTRY: dict[str, SourceSpec] = {}


def register(
    name: str, description: str, *, options: dict[str, str] | None = None, takes_mapping: bool = True
) -> Callable[[Loader], Loader]:
    """Register ``loader`` under ``name`` (with a one-line description and its accepted options)."""

    def deco(loader: Loader) -> Loader:
        if name in REGISTRY:
            raise ValueError(f"source {name!r} registered twice")
        REGISTRY[name] = SourceSpec(name, description, loader, dict(options or {}), takes_mapping)
        return loader

    return deco


def get_spec(name: str) -> SourceSpec:
    if name not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ChronorecError(f"unknown source '{name}'; available: {', '.join(sorted(REGISTRY))}{hint}")
    return REGISTRY[name]

"""A timm-style model registry: one decorator registers a model with its typed config.

    @register_model("tin", config=TINConfig)
    class TIN(CTRModel): ...

    model = create_model("tin", schema, {"dim": 32})   # overrides validated by pydantic
    list_models(task="ctr")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from torch import nn

from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError, first_validation_error


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[nn.Module]
    config: type[BaseModel]
    task: str
    summary: str


_REGISTRY: dict[str, ModelEntry] = {}
_MODEL_PACKAGES = ("chronorec.models.ctr", "chronorec.models.nextitem")


def register_model(
    name: str, *, config: type[BaseModel], summary: str | None = None
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register ``cls`` under ``name``; ``summary`` (default: the class docstring's first line) is
    what ``chronorec models`` prints, so presets of one class can say how they differ."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        doc = (cls.__doc__ or "").strip().splitlines()
        line = summary or (doc[0] if doc else "")
        _REGISTRY[name] = ModelEntry(name, cls, config, getattr(cls, "task", "ctr"), line)
        return cls

    return deco


def _ensure_loaded() -> None:
    for pkg in _MODEL_PACKAGES:
        importlib.import_module(pkg)


def list_models(task: str | None = None) -> list[str]:
    _ensure_loaded()
    return sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)


def get_entry(name: str) -> ModelEntry:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ChronorecError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build_config(name: str, overrides: dict[str, Any] | None = None) -> BaseModel:
    entry = get_entry(name)
    try:
        return entry.config.model_validate(overrides or {})
    except ValidationError as err:
        loc, msg, _ = first_validation_error(err)
        where = f"option {loc!r}: " if loc else ""  # a check across options (a model validator) has no loc
        raise ChronorecError(f"model {name!r}: {where}{msg}") from None


def create_model(name: str, schema: DatasetSchema, overrides: dict[str, Any] | None = None) -> nn.Module:
    entry = get_entry(name)
    if entry.task != schema.task:
        raise ChronorecError(
            f"model {name!r} is a {entry.task} model but the dataset was prepared for {schema.task} "
            f"(protocol {schema.protocol})"
        )
    return entry.cls(schema, build_config(name, overrides))

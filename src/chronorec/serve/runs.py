"""Read a trained run folder for serving: its config, prepared-data pointer, metrics and weights.

A run folder (written by the trainer) looks like::

    runs/<name>/<id>/
      config.json          model name, model overrides, prepared data path, manifest cache key, ...
      metrics.json         final metrics (optional for serving)
      checkpoints/best.pt  torch.load(weights_only=True) -> {"model": state_dict, ...}

When the trainer's own loader (``chronorec.train.runs.load_run``) exists it is the source of truth
for the model; this module only adds what serving needs on top (metrics, trained-at time, the
prepared data folder and a check that the prepared data has not changed since training).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError, warn

_CHECKPOINTS = ("checkpoints/best.pt", "checkpoints/last.pt", "best.pt", "model.pt")


@dataclass
class RunInfo:
    """What a run folder says about the model it holds."""

    run_dir: Path
    model_name: str
    overrides: dict[str, Any]
    data_dir: Path
    cache_key: str | None
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    trained_at: str | None = None
    checkpoint: Path | None = None
    max_len: int | None = None  # the trainer's batch-time history cap (train.max_len), if set


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ChronorecError(f"{path.name} not found in the run folder", file=path.parent) from None
    except json.JSONDecodeError as err:
        raise ChronorecError(f"not valid JSON: {err}", file=path) from None
    if not isinstance(data, dict):
        raise ChronorecError("expected a JSON object", file=path)
    return data


def _first(cfg: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        cur: Any = cfg
        for part in key.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is not None:
            return cur
    return None


def _resolve_data_dir(raw: str, run_dir: Path) -> Path:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    # relative paths are relative to where training ran; try the cwd, the run folder and its ancestors
    for base in (Path.cwd(), run_dir, *run_dir.resolve().parents):
        if (base / path / "schema.json").is_file():
            return (base / path).resolve()
    return path


def read_run_info(run_dir: str | Path) -> RunInfo:
    """Parse ``config.json`` (and ``metrics.json`` when present) of a run folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ChronorecError(f"run folder not found: {run_dir}")
    cfg = _read_json(run_dir / "config.json")
    model = _first(cfg, "model.name", "model_name", "model")
    if not isinstance(model, str):
        raise ChronorecError("config.json names no model ('model' or 'model.name')", file=run_dir)
    overrides = _first(cfg, "model_options", "model.overrides", "overrides", "model_config") or {}
    data = _first(cfg, "data", "data_dir", "prepared", "data.path", "data.dir")
    if not isinstance(data, str):
        raise ChronorecError("config.json names no prepared data folder ('data')", file=run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.is_file() else {}
    checkpoint = next((run_dir / c for c in _CHECKPOINTS if (run_dir / c).is_file()), None)
    trained_at = _first(cfg, "finished_at", "trained_at", "created_at", "started_at")
    if trained_at is None and checkpoint is not None:
        trained_at = datetime.fromtimestamp(os.path.getmtime(checkpoint), tz=UTC).isoformat(timespec="seconds")
    return RunInfo(
        run_dir=run_dir,
        model_name=model,
        overrides=dict(overrides) if isinstance(overrides, dict) else {},
        data_dir=_resolve_data_dir(data, run_dir),
        cache_key=_first(cfg, "cache_key", "manifest.cache_key", "data_cache_key", "manifest_cache_key"),
        config=cfg,
        metrics=metrics,
        trained_at=str(trained_at) if trained_at is not None else None,
        checkpoint=checkpoint,
        max_len=_first(cfg, "train.max_len", "max_len"),
    )


def check_prepared(info: RunInfo) -> DatasetSchema:
    """The prepared data's schema; warns when it is not the data the run was trained on."""
    schema_path = info.data_dir / "schema.json"
    if not schema_path.is_file():
        raise ChronorecError(f"prepared data folder not found (no schema.json): {info.data_dir}")
    schema = DatasetSchema.load(schema_path)
    manifest_path = info.data_dir / "manifest.json"
    if info.cache_key and manifest_path.is_file():
        manifest = _read_json(manifest_path)
        key = manifest.get("cache_key", manifest.get("key"))
        if key is not None and key != info.cache_key:
            warn(f"prepared data at {info.data_dir} changed since training (cache key {str(key)[:12]}..., "
                 f"run trained on {info.cache_key[:12]}...); serving with its current vocabularies")
    return schema


def _trainer_loader() -> Any:
    try:
        from chronorec.train import runs as train_runs  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(train_runs, "load_run", None)


def _model_from_loaded(loaded: Any) -> nn.Module | None:
    if isinstance(loaded, nn.Module):
        return loaded
    if isinstance(loaded, tuple | list):
        return next((x for x in loaded if isinstance(x, nn.Module)), None)
    model = getattr(loaded, "model", None)
    return model if isinstance(model, nn.Module) else None


def load_model(info: RunInfo, schema: DatasetSchema) -> nn.Module:
    """The trained model in eval mode: through the trainer's loader when it exists, else from the
    checkpoint's ``"model"`` state dict into ``create_model(name, schema, overrides)``."""
    loader = _trainer_loader()
    if loader is not None:
        try:
            loaded = loader(info.run_dir)
        except ImportError:  # the trainer's data modules are not installed: read the checkpoint here
            loaded = None
        model = _model_from_loaded(loaded)
        if model is not None:
            return model.eval()
    from chronorec.models.registry import create_model

    model = create_model(info.model_name, schema, info.overrides)
    if info.checkpoint is None:
        raise ChronorecError(f"no checkpoint in the run folder (looked for {', '.join(_CHECKPOINTS)})",
                             file=info.run_dir)
    state = torch.load(info.checkpoint, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ChronorecError(f"checkpoint does not fit model {info.model_name!r}: {first}",
                             file=info.checkpoint) from None
    return model.eval()

"""Find run folders and load their configs, metrics and trained models (read-only).

A run folder is ``runs/<name>/<id>/`` with ``config.json`` (the trainer's resolved
``RunConfig``: ``name``, ``data``, ``model``, ``model_options``, ``train`` with ``seed`` and
``max_len``), ``metrics.json``, optionally ``predictions/test.parquet`` and
``checkpoints/best.pt``. Analyses and reports read only these folders.

Models are loaded through the trainer's ``chronorec.train.runs.load_run``, so analyses rebuild a
run exactly as ``evaluate`` and ``serve`` do.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError

if TYPE_CHECKING:
    from torch import nn


@dataclass
class RunRef:
    """What the analyses need to know about one run folder."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def model_name(self) -> str:
        model = self.config.get("model")
        if isinstance(model, dict):
            model = model.get("name")
        if not isinstance(model, str):
            raise ChronorecError("config.json names no model", file=self.path / "config.json")
        return model

    @property
    def model_options(self) -> dict[str, Any]:
        opts = self.config.get("model_options")
        return dict(opts) if isinstance(opts, dict) else {}

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.path.parent.name or self.model_name)

    @property
    def seed(self) -> int | None:
        seed = (self.config.get("train") or {}).get("seed", self.config.get("seed"))
        return int(seed) if seed is not None else None

    @property
    def max_len(self) -> int | None:
        value = (self.config.get("train") or {}).get("max_len")
        return int(value) if value is not None else None

    @property
    def data_dir(self) -> Path | None:
        data = self.config.get("data")
        if isinstance(data, dict):
            data = data.get("path")
        if not isinstance(data, str):
            return None
        path = Path(data)
        if not path.is_absolute() and not (path / "schema.json").is_file():
            for base in (self.path, *self.path.resolve().parents):
                if (base / path / "schema.json").is_file():
                    return (base / path).resolve()
        return path

    def group_key(self) -> str:
        """The config minus seed, run identity and settings that do not change results (threads,
        device, logging, checkpoint cadence): runs with equal keys are seeds of one setting."""
        # paths inside the run's own folder (PIN's init_from checkpoint) differ per run, not per setting
        text = json.dumps(self.config).replace(self.path.name, "<run>") if self.path.name else json.dumps(self.config)
        cfg = json.loads(text)
        for k in ("seed", "run_id", "id", "created_at", "started_at", "finished_at", "out", "out_dir"):
            cfg.pop(k, None)
        train = cfg.get("train")
        if isinstance(train, dict):
            for k in ("seed", "threads", "device", "log_every", "checkpoint_every", "save_predictions"):
                train.pop(k, None)
        return json.dumps(cfg, sort_keys=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ChronorecError(f"not valid JSON: {err}", file=path) from None
    if not isinstance(data, dict):
        raise ChronorecError("expected a JSON object", file=path)
    return data


def find_runs(paths: list[Path]) -> list[RunRef]:
    """Run folders named directly or found below the given folders (any depth, not inside another
    run folder), with unique labels."""
    dirs: list[Path] = []
    for p in paths:
        if (p / "config.json").is_file():
            dirs.append(p)
        elif p.is_dir():
            found = sorted(c.parent for c in p.rglob("config.json") if c.parent != p)
            # a run folder nested in another (PIN's backbone phase) belongs to its parent run
            found_set = set(found)
            dirs.extend(d for d in found if not any(a in found_set for a in d.parents))
        elif p.exists():
            raise ChronorecError("not a run folder (a file): give run folders or folders holding runs", file=p)
        else:
            raise ChronorecError(f"run folder not found: {p}")
    seen: set[Path] = set()
    runs = []
    for d in dirs:
        if d.resolve() in seen:
            continue
        seen.add(d.resolve())
        metrics_path = d / "metrics.json"
        runs.append(RunRef(d, _read_json(d / "config.json"),
                           _read_json(metrics_path) if metrics_path.is_file() else {}))
    if not runs:
        raise ChronorecError(f"no run folders (with config.json) under {', '.join(map(str, paths))}")
    _assign_labels(runs)
    return runs


def _assign_labels(runs: list[RunRef]) -> None:
    names = [r.name for r in runs]
    for r in runs:
        label = r.name if names.count(r.name) == 1 else f"{r.name}-{r.path.name}"
        r.label = re.sub(r"[^A-Za-z0-9_.+-]+", "_", label)


def load_model(run: RunRef, schema: DatasetSchema | None = None) -> nn.Module:
    """The run's trained model in eval mode, rebuilt by the trainer's
    :func:`chronorec.train.runs.load_run` (config + best checkpoint + the prepared data it names).
    ``schema`` is accepted for the :data:`ModelLoader` signature; the run's own schema is used."""
    from chronorec.train.runs import load_run

    del schema
    return load_run(run.path).model.eval()


# ---- runs of one setting (the same config but for the seed) ----------------------------------
@dataclass
class RunGroup:
    label: str
    runs: list[RunRef] = field(default_factory=list)

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]


def group_runs(runs: list[RunRef]) -> list[RunGroup]:
    """Runs with the same config minus seed form one group, labelled by run name (+ #k if needed)."""
    by_key: dict[str, RunGroup] = {}
    for r in runs:
        by_key.setdefault(r.group_key(), RunGroup(r.name)).runs.append(r)
    groups = list(by_key.values())
    names = [g.label for g in groups]
    for k, g in enumerate(groups):
        if names.count(g.label) > 1:
            g.label = f"{g.label} #{names[:k].count(g.label) + 1}"
    return groups


def mean_std(values: list[float]) -> tuple[float, float, int]:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan"), int(v.size)


def fmt_mean_std(values: list[float], digits: int = 4) -> str:
    m, s, n = mean_std(values)
    if n == 0:
        return "–"
    return f"{m:.{digits}f}" if n == 1 else f"{m:.{digits}f} ± {s:.{digits}f}"

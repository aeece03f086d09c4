"""Helpers shared by the benchmark-script tests: load a script under benchmarks/ and write rank files."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_script(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_ranks(path: Path, ranks: list[int], users: list[str] | None = None) -> Path:
    """A rank file (``user``, ``item``, ``rank``) as CSV or Parquet, by ``path``'s suffix."""
    users = users or [str(u) for u in range(len(ranks))]
    df = pl.DataFrame({"user": users, "item": [f"i{u}" for u in users], "rank": ranks})
    if path.suffix == ".csv":
        df.write_csv(path)
    else:
        df.write_parquet(path)
    return path


def ndcg10(ranks: list[int]) -> float:
    """NDCG@10 of one relevant item per row, computed by hand."""
    return float(np.mean([1 / math.log2(r + 1) if r <= 10 else 0.0 for r in ranks]))

from __future__ import annotations

from pathlib import Path

import pytest

from chronorec.analysis.correlation import CorrelationOptions, run_correlation
from chronorec.analysis.runs import RunRef

from .oracle_models import Oracle, OracleConfig
from .planted import write_synthetic


@pytest.fixture(scope="session")
def planted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared folder whose labels follow a planted, recency-decaying same-category effect."""
    return write_synthetic(tmp_path_factory.mktemp("planted"))


def _run(tmp: Path, name: str, cfg: dict) -> RunRef:
    d = tmp / name / "r1"
    d.mkdir(parents=True)
    return RunRef(d, {"name": name, "model": "oracle", "model_options": cfg, "train": {"seed": 1}}, {}, name)


@pytest.fixture(scope="session")
def analysis(planted_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("analysis")
    runs = [_run(tmp, "oracle", {}), _run(tmp, "blind", {"use_position": False})]
    out = tmp / "out"
    res = run_correlation(planted_dir, runs, out, CorrelationOptions(min_samples=50),
                          loader=lambda run, schema: Oracle(schema, OracleConfig(**run.model_options)))
    return out, res

"""Session fixtures: prepared synthetic data, a trained TIN and SASRec run, served models, clients."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's TestClient prefers httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from serve_synth import PreparedView, make_run, prepare_synthetic

from chronorec.serve.app import create_app
from chronorec.serve.schemas import Limits
from chronorec.serve.service import ServedModel

TIN_OPTIONS = {"dim": 8, "mlp": [16, 8]}
SASREC_OPTIONS = {"dim": 16, "n_layers": 1, "heads": 2, "inner": 32, "max_len": 20, "dropout": 0.1}
LIMITS = Limits(max_candidates=50, max_history=60, max_exclude=100, max_k=100)


@pytest.fixture(scope="session")
def ctr_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_synthetic(tmp_path_factory.mktemp("serve") / "ctr", "ctr-leave-one-out")


@pytest.fixture(scope="session")
def next_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_synthetic(tmp_path_factory.mktemp("serve") / "next", "next-item-last-out")


@pytest.fixture(scope="session")
def ctr_run(ctr_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(ctr_prepared, "tin", TIN_OPTIONS, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session", params=[False, True], ids=["sasrec", "sasrec-item-bias"])
def next_run(next_prepared: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Every next-item serving test runs twice: plain SASRec, and with a learnt per-item score (``item_bias``),
    which rides along as one more column of the served item table and must reach `/recommend` and the exports."""
    return make_run(next_prepared, "sasrec", {**SASREC_OPTIONS, "item_bias": request.param},
                    tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def ctr_view(ctr_prepared: Path) -> PreparedView:
    return PreparedView(ctr_prepared)


@pytest.fixture(scope="session")
def next_view(next_prepared: Path) -> PreparedView:
    return PreparedView(next_prepared)


@pytest.fixture(scope="session")
def ctr_served(ctr_run: Path) -> ServedModel:
    return ServedModel.load(ctr_run, LIMITS)


@pytest.fixture(scope="session")
def next_served(next_run: Path) -> ServedModel:
    return ServedModel.load(next_run, LIMITS)


@pytest.fixture(scope="session")
def ctr_client(ctr_served: ServedModel) -> Iterator[TestClient]:
    with TestClient(create_app(ctr_served), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def next_client(next_served: ServedModel) -> Iterator[TestClient]:
    with TestClient(create_app(next_served), raise_server_exceptions=False) as client:
        yield client

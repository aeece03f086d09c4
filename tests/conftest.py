"""Shared fixtures (data layer). Real-data fixtures skip clearly when the shared data is absent.

* ``data_root``: the shared data folder (``$CHRONOREC_DATA`` or ``../shared/data``), else skip.
* ``synthetic_data``: a small seeded :func:`chronorec.data.synthetic.synthetic_source` log
  (``SourceData``: ~150 users, 80 items, 6 categories, events + labelled impressions).
* ``tiny_ctr_dataset`` / ``tiny_nextitem_dataset``: that log prepared with ``ctr-leave-one-out`` /
  ``next-item-last-out`` (session-scoped prepared folders; open with ``PreparedDataset.open``).
* ``grocery_ctr_dataset``: amazon-grocery prepared with ``ctr-leave-one-out`` (skips without data).
* ``cli_error``: runs the CLI expecting a refusal (exit 2, one ``error:`` line, no traceback); returns the line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chronorec.data.paths import data_root as _data_root


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root(required=False)
    if root is None:
        pytest.skip("shared data not found: set CHRONOREC_DATA or place it at ../shared/data")
    return root


@pytest.fixture(scope="session")
def synthetic_data():  # -> SourceData
    from chronorec.data.synthetic import synthetic_source

    return synthetic_source(n_users=150, n_items=80, n_categories=6, mean_events=12, max_events=60, seed=7)


def _prepared(tmp_path_factory: pytest.TempPathFactory, source, protocol: str, **options) -> Path:
    import warnings

    from chronorec.data.prepare import PrepareOptions, prepare

    out = tmp_path_factory.mktemp("prepared") / protocol
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare(source, out, PrepareOptions(protocol=protocol, **options))
    return out


@pytest.fixture(scope="session")
def tiny_ctr_dataset(tmp_path_factory: pytest.TempPathFactory, synthetic_data) -> Path:
    return _prepared(tmp_path_factory, synthetic_data, "ctr-leave-one-out")


@pytest.fixture(scope="session")
def tiny_nextitem_dataset(tmp_path_factory: pytest.TempPathFactory, synthetic_data) -> Path:
    return _prepared(tmp_path_factory, synthetic_data, "next-item-last-out")


@pytest.fixture(scope="session")
def grocery_ctr_dataset(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    from chronorec.data.sources import load_source

    folder = data_root / "amazon-grocery"
    if not folder.is_dir():
        pytest.skip(f"amazon-grocery not found under {data_root}")
    return _prepared(tmp_path_factory, load_source("amazon-csv", folder), "ctr-leave-one-out")


@pytest.fixture
def cli_error(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], str]:
    from chronorec.cli import main

    def run(argv: list[str]) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
        return err

    return run

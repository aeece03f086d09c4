from __future__ import annotations

from pathlib import Path

import pytest

from .planted import write_synthetic


@pytest.fixture(scope="session")
def planted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared folder whose labels follow a planted, recency-decaying same-category effect."""
    return write_synthetic(tmp_path_factory.mktemp("planted"))

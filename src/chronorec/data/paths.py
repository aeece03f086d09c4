"""Where the shared real datasets live.

The data root is ``$CHRONOREC_DATA`` when set, else ``../shared/data`` relative to the project root
(the folder holding ``pyproject.toml``). Data is never copied into the repository and never
downloaded at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from chronorec.errors import ChronorecError

ENV_VAR = "CHRONOREC_DATA"


def project_root() -> Path:
    """The folder holding ``pyproject.toml`` above this file, or the current directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


def data_root(required: bool = True) -> Path | None:
    """The shared data folder; raises a :class:`ChronorecError` when absent and ``required``."""
    env = os.environ.get(ENV_VAR)
    root = Path(env).expanduser() if env else project_root().parent / "shared" / "data"
    if root.is_dir():
        return root.resolve()
    if required:
        how = f"${ENV_VAR}={env}" if env else f"the default {root} (set ${ENV_VAR} to change it)"
        raise ChronorecError(f"data folder not found: {how}")
    return None


def dataset_dir(name: str, required: bool = True) -> Path | None:
    """``data_root() / name``; raises a :class:`ChronorecError` when it is missing and ``required``."""
    root = data_root(required=required)
    if root is None:
        return None
    path = root / name
    if not path.exists():
        if required:
            raise ChronorecError(f"dataset folder '{name}' not found under {root}")
        return None
    return path

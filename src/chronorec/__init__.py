"""chronorec: time-aware user behavior modeling for recommender systems.

The Python API (:mod:`chronorec.api`) is importable from here: ``chronorec.prepare``,
``chronorec.fit`` (the ``train`` command; ``chronorec.train`` is the training subpackage),
``chronorec.resume``, ``chronorec.load_run``, ``chronorec.reproduce``, ``chronorec.report``,
``chronorec.list_models``. They load on first use, so
``import chronorec`` costs nothing until one is called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["fit", "list_models", "load_run", "prepare", "report", "reproduce", "resume"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from chronorec import api

        return getattr(api, name)
    raise AttributeError(f"module 'chronorec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

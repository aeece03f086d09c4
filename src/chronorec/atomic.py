"""Atomic file writes: a temp file in the target's folder, then ``os.replace``.

A reader, or a rerun after ``kill -9``, sees the old file or the new one, never half of either.
Checkpoints (``train/checkpoint.py``) add an fsync on top, since they are what a resume rests on.

:func:`replacing` is the general form (any writer that takes a path: Parquet, TorchScript, ONNX);
:func:`write_text` is it for a string.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (same suffix, so writers that look at it behave the same);
    on a clean exit it replaces ``path``, on any exception it is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (the temp file is removed if the write fails)."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding=encoding)

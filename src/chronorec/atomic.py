"""Atomic file writes: a temp file in the target's folder, then ``os.replace``.

A reader, or a rerun after ``kill -9``, sees the old file or the new one, never half of either.
Checkpoints (``train/checkpoint.py``) add an fsync on top, since they are what a resume rests on.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (the temp file is removed if the write fails)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding=encoding)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

"""chronorec.atomic.write_text: the old content survives a failed write, and no temp file is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronorec import atomic


def test_replaces_content(tmp_path: Path) -> None:
    p = tmp_path / "report.md"
    p.write_text("old")
    atomic.write_text(p, "new ✓")
    assert p.read_text(encoding="utf-8") == "new ✓" and [x.name for x in tmp_path.iterdir()] == ["report.md"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text("{}")
    with pytest.raises(UnicodeEncodeError):
        atomic.write_text(p, "ünïcode", encoding="ascii")
    assert p.read_text() == "{}" and [x.name for x in tmp_path.iterdir()] == ["config.json"]

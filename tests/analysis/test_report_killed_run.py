"""`chronorec report` over a runs folder holding a run killed while appending to metrics.jsonl: the
cut-short last line is skipped with one `warning:` line (it was a JSONDecodeError traceback); a
damaged line elsewhere is one error naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chronorec.cli import main

from .runs_fixture import write_runs


def _killed_run(runs: Path) -> Path:
    log = next(runs.glob("tin/*/metrics.jsonl"))
    (log.parent / "metrics.json").unlink()  # unfinished: no final metrics
    log.write_text(log.read_text() + json.dumps({"epoch": 3, "split": "valid", "metrics": {"gauc": 0.7}})[:25])
    return log


def test_report_skips_a_killed_runs_partial_last_line(planted_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    runs = write_runs(tmp_path / "runs", planted_dir)
    log = _killed_run(runs)
    main(["report", str(runs), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert (tmp_path / "r.html").is_file()
    warning = [x for x in err.splitlines() if "cut short" in x]
    assert warning == [f"warning: {log}: last line (line 3) is cut short, as a killed run leaves it; skipped"]
    assert "Traceback" not in err and "ChronorecWarning" not in err


def test_report_names_a_damaged_middle_line(planted_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    runs = write_runs(tmp_path / "runs", planted_dir)
    log = next(runs.glob("din/*/metrics.jsonl"))
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0][:10], *lines[1:]]) + "\n")
    with pytest.raises(SystemExit) as exc:
        main(["report", str(runs), "--out", str(tmp_path / "r.html")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {log}: row 1:") and "\n" not in err

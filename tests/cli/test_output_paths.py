"""Unwritable ``--out`` paths are one error line naming the path (never a traceback, never blamed on
the model), and a failed predict / export leaves an earlier good output exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chronorec.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
TINY = ["--set", "model.dim=8", "--set", "train.threads=1", "--epochs", "1", "--quiet"]
UNWRITABLE = Path("/proc/chronorec-test")  # an existing folder where nothing can be created (Linux)


@pytest.fixture(scope="module")
def run(tiny_nextitem_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out-runs")
    main(["train", "--data", str(tiny_nextitem_dataset), "--model", "gru4rec", *TINY, "--out", str(out)])
    (run_dir,) = [p for p in out.glob("*/*") if p.is_dir()]
    return run_dir




def test_predict_to_unwritable_paths(run: Path, tmp_path: Path, cli_error: Callable[[list[str]], str]) -> None:
    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "p.parquet"  # parent is a file
    assert str(bad) in cli_error(["predict", "--run", str(run), "--out", str(bad)])
    if Path("/proc").is_dir():
        assert "cannot write" in cli_error(["predict", "--run", str(run), "--out", f"{UNWRITABLE}.parquet"])


def test_failed_predict_write_keeps_the_old_file(tmp_path: Path) -> None:
    from chronorec.cli.predict import _write_atomic
    from chronorec.errors import ChronorecError

    out = tmp_path / "p.parquet"
    out.write_bytes(b"earlier good predictions")

    class Failing:
        def write_parquet(self, path: Path) -> None:
            Path(path).write_bytes(b"half")
            raise OSError(28, "No space left on device")

    with pytest.raises(ChronorecError, match="No space left"):
        _write_atomic(Failing(), out)
    assert out.read_bytes() == b"earlier good predictions"
    assert [p.name for p in tmp_path.iterdir()] == ["p.parquet"]  # no temp file left


def test_export_to_unwritable_paths(run: Path, tmp_path: Path, cli_error: Callable[[list[str]], str]) -> None:
    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "m.pt"
    assert str(bad) in cli_error(["export", "--run", str(run), "--out", str(bad)])
    if Path("/proc").is_dir():
        err = cli_error(["export", "--run", str(run), "--out", f"{UNWRITABLE}.pt"])
        assert "cannot write" in err and "cannot be exported" not in err


def test_failed_export_keeps_the_previous_export(run: Path, tmp_path: Path, cli_error: Callable[[list[str]], str]) -> None:
    out = tmp_path / "m.pt"
    main(["export", "--run", str(run), "--out", str(out)])
    before = (out.read_bytes(), Path(f"{out}.json").read_bytes())
    err = cli_error(["export", "--run", str(run), "--out", str(out), "--atol", "-1"])  # parity "fails"
    assert "differs from the eager model" in err
    assert (out.read_bytes(), Path(f"{out}.json").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.json"]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_prepare_into_unwritable_parent(tmp_path: Path, cli_error: Callable[[list[str]], str]) -> None:
    csv = tmp_path / "e.csv"
    csv.write_text("user,item,ts\n" + "".join(f"u{i % 3},i{i},{1_500_000_000 + i}\n" for i in range(30)))
    err = cli_error(["prepare", "--source", "csv", "--path", str(csv), "--protocol", "next-item-last-out",
                  "--out", str(UNWRITABLE)])
    assert str(UNWRITABLE) in err


def test_report_to_unwritable_paths_and_missing_analysis(run: Path, tmp_path: Path,
                                                         cli_error: Callable[[list[str]], str]) -> None:
    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "r.html"
    assert str(bad) in cli_error(["report", str(run), "--out", str(bad)])
    assert "is a folder" in cli_error(["report", str(run), "--out", str(tmp_path)])
    missing = tmp_path / "no-analysis"
    assert str(missing) in cli_error(["report", str(run), "--analysis", str(missing), "--out",
                                   str(tmp_path / "r.html")])
    err = cli_error(["report", str(tmp_path / "file"), "--out", str(tmp_path / "r.html")])
    assert "not a run folder (a file)" in err and str(tmp_path / "file") in err
    assert not (tmp_path / "r.html").exists()

"""A delimited file cut short in its last field, the time (a truncated copy: ``...,4643,3.0,997``),
parsed silently as a 1970 timestamp. It is now one error naming the file, column and row; a file
that merely lacks the final newline is still read. A binary file given as CSV is named as such
(its "header" was a line of noise and the error listed garbage as column names)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from chronorec.data.sources import load_source
from chronorec.errors import ChronorecError

MAP = {"user": "userId", "item": "movieId", "time": "timestamp"}
TEXT = "userId,movieId,rating,timestamp\n" + "".join(
    f"{u},{100 + k},3.0,{1_260_759_144 + 97 * k + u}\n" for u in range(1, 4) for k in range(6))


@pytest.mark.parametrize("gz", [False, True])
def test_time_cut_short_at_the_end_of_the_file(tmp_path: Path, gz: bool) -> None:
    cut = TEXT[: TEXT.rstrip("\n").rfind(",") + 4]  # the last line keeps 3 digits of its time
    path = tmp_path / ("r.csv.gz" if gz else "r.csv")
    path.write_bytes(gzip.compress(cut.encode()) if gz else cut.encode())
    with pytest.raises(ChronorecError) as info:
        load_source("csv", path, mapping=MAP)
    err = info.value
    assert err.column == "timestamp" and err.row == 18 and err.file == str(path)
    assert "looks truncated" in str(err) and "\n" not in str(err)


def test_no_final_newline_alone_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(TEXT.rstrip("\n"))
    assert load_source("csv", path, mapping=MAP).events.height == 18


def test_atomic_inter_cut_short(tmp_path: Path) -> None:
    rows = "".join(f"{u}\t{200 + k}\t4\t{881_250_949 + 60 * k}\n" for u in range(1, 4) for k in range(5))
    text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + rows
    (tmp_path / "x.inter").write_text(text[:-8])  # "...\t8812" as a copy cut mid-line leaves it
    with pytest.raises(ChronorecError, match="looks truncated") as info:
        load_source("atomic", tmp_path)
    assert info.value.row == 15


@pytest.mark.parametrize("kind", ["binary", "utf-16"])
def test_binary_or_utf16_file_is_named(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(bytes(range(256)) * 20 if kind == "binary" else TEXT.encode("utf-16"))
    with pytest.raises(ChronorecError, match="not delimited text: the file holds NUL bytes") as info:
        load_source("csv", path, mapping=MAP)
    assert info.value.file == str(path) and info.value.column is None
    if kind == "utf-16":
        assert load_source("csv", path, mapping=MAP, options={"encoding": "utf-16"}).events.height == 18

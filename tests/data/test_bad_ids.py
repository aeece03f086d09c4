"""Id columns that cannot be what the user meant: NaN written as text in a numeric id column, one
column mapped to two roles, a role mapped twice on the command line. Each is one error naming the
file / column / row, never a prepared dataset with a phantom "NaN" item or ratings as user ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronorec.cli import main
from chronorec.data.sources import load_source
from chronorec.errors import ChronorecError, ChronorecWarning

ROWS = "".join(f"{u},{10 + (u * 7 + k) % 13},3.5,{1_500_000_000 + 60 * k}\n" for u in range(1, 4) for k in range(6))
HEADER = "userId,movieId,rating,timestamp\n"
MAP = {"user": "userId", "item": "movieId", "time": "timestamp"}


def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + body)
    return path


@pytest.mark.parametrize(("token", "column"), [("NaN", "movieId"), ("nan", "userId")])
def test_nan_in_numeric_id_column_is_an_error(tmp_path: Path, token: str, column: str) -> None:
    lines = ROWS.splitlines()
    fields = lines[4].split(",")
    fields[0 if column == "userId" else 1] = token
    lines[4] = ",".join(fields)
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ChronorecError) as info:
        load_source("csv", path, mapping=MAP)
    err = info.value
    assert err.column == column and err.row == 5 and Path(str(err.file)).name == "ratings.csv"
    assert "NaN" in str(err) and "\n" not in str(err)
    with pytest.warns(ChronorecWarning, match="dropped 1 rows with an NaN"):
        data = load_source("csv", path, mapping=MAP, options={"drop_invalid": True})
    assert data.events.height == 17 and "NaN" not in data.events["item"].to_list()


def test_text_ids_named_nan_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("user,item,ts\nnan,a,1500000000\nbob,nan,1500000001\n")
    data = load_source("csv", path)
    assert sorted(data.events["user"].to_list()) == ["bob", "nan"] and "nan" in data.events["item"].to_list()


@pytest.mark.parametrize("mapping", [{"user": "userId", "item": "userId", "time": "timestamp"},
                                     {"item": "userId", "time": "timestamp"}])  # user found by name: userId
def test_one_column_for_two_roles_is_an_error(tmp_path: Path, mapping: dict) -> None:
    path = _csv(tmp_path, ROWS)
    with pytest.raises(ChronorecError, match="roles user and item both read column 'userId'") as info:
        load_source("csv", path, mapping=mapping)
    assert info.value.column == "userId" and Path(str(info.value.file)).name == "ratings.csv"


def test_cli_map_naming_a_role_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path, ROWS)
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "--source", "csv", "--path", str(path), "--protocol", "next-item-last-out",
              "--map", "user=userId,item=movieId,time=timestamp,user=rating", "--out", str(tmp_path / "p")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --map names 'user' twice (user=userId and user=rating)"
    assert not (tmp_path / "p").exists()

"""The prepare-level half of the malformed-input corpus: each is repaired with a counted warning or
refused with one line naming the file / column / row; CLI failures exit non-zero with one stderr
line, no traceback and no output folder left behind."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from chronorec.data.dataset import PreparedDataset
from chronorec.data.prepare import PrepareOptions, prepare
from chronorec.data.schema import FIRST_ID
from chronorec.data.sources import SourceData
from chronorec.errors import ChronorecError, ChronorecWarning


def _src(events: dict | pl.DataFrame, side: list[str] | None = None, **kw) -> SourceData:
    df = events if isinstance(events, pl.DataFrame) else pl.DataFrame(events)
    return SourceData(name="bad", events=df, side=side or [], files=[Path("bad.csv")], **kw)


def _events(n_users: int = 4, n: int = 5) -> dict:
    users = [f"u{u}" for u in range(n_users) for _ in range(n)]
    items = [f"i{(u * 3 + k) % 11}" for u in range(n_users) for k in range(n)]
    ts = [1_400_000_000 + 3600 * (u + 10 * k) for u in range(n_users) for k in range(n)]
    return {"user": users, "item": items, "ts": ts}


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from chronorec.cli import main

    try:
        main(argv)
        code = 0
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_unsorted_input_gets_sorted(tmp_path: Path) -> None:
    ev = pl.DataFrame(_events()).reverse()
    prepare(_src(ev), tmp_path / "p", PrepareOptions(protocol="ctr-leave-one-out"))
    ds = PreparedDataset.open(tmp_path / "p")
    for k in range(ds.schema.n_users):
        rows = ds.user_events(FIRST_ID + k)
        assert (np.diff(ds.events.ts[rows]) >= 0).all()
    assert ds.schema.counts["train"] == 2 * 4 * (5 - 3)


def test_duplicates_dropped_with_count(tmp_path: Path) -> None:
    ev = pl.DataFrame(_events())
    dup = pl.concat([ev, ev.slice(0, 2), ev.slice(7, 1)])
    with pytest.warns(ChronorecWarning, match="dropped 3 exact duplicate"):
        res = prepare(_src(dup), tmp_path / "p", PrepareOptions(protocol="next-item-last-out"))
    assert res.schema.n_events == ev.height and res.schema.counts["dropped_duplicates"] == 3
    res2 = prepare(_src(dup), tmp_path / "q", PrepareOptions(protocol="next-item-last-out", dedupe=False))
    assert res2.schema.n_events == dup.height


def test_short_users_dropped_or_refused(tmp_path: Path) -> None:
    ev = _events()
    ev["user"] += ["lonely", "pair", "pair"]
    ev["item"] += ["i1", "i2", "i3"]
    ev["ts"] += [1_400_000_000, 1_400_000_100, 1_400_000_200]
    with pytest.warns(ChronorecWarning, match="dropped 2 user"):
        res = prepare(_src(ev), tmp_path / "p", PrepareOptions(protocol="ctr-leave-one-out"))
    assert res.schema.n_users == 4 and res.schema.counts["dropped_short_users"] == 2
    with pytest.raises(ChronorecError, match=r"2 user\(s\) have fewer than 3 events.*'lonely'") as err:
        prepare(_src(ev), tmp_path / "q", PrepareOptions(protocol="ctr-leave-one-out", short_users="error"))
    assert err.value.row == 21 and err.value.column == "user"  # 1-based row of the first such event
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize(
    ("patch", "column", "row", "message"),
    [
        ({"ts": [1.4e9, float("nan")]}, "ts", 2, "NaN"),
        ({"ts": [1.4e9, None]}, "ts", 2, "missing"),
        ({"user": ["u0", None]}, "user", 2, "missing"),
        ({"ts": [1_400_000_000, -5]}, "ts", 2, "negative"),
        ({"ts": [1_400_000_000_000, 1_400_000_001_000]}, "ts", 1, "milliseconds"),
        ({"ts": [1.4e9, 1.4e9 + 0.5]}, "ts", 2, "whole seconds"),
        ({"ts": ["2014-01-01", "2014-01-02"]}, "ts", None, "integer seconds"),
    ],
)
def test_bad_values_refused(tmp_path: Path, patch: dict, column: str, row: int | None, message: str) -> None:
    ev = {"user": ["u0", "u0"], "item": ["a", "b"], "ts": [1_400_000_000, 1_400_000_100]}
    ev.update(patch)
    with pytest.raises(ChronorecError, match=message) as err:
        prepare(_src(ev), tmp_path / "p", PrepareOptions(protocol="next-item-last-out"))
    assert (err.value.column, err.value.row, err.value.file) == (column, row, "bad.csv")
    assert "\n" not in str(err.value) and not (tmp_path / "p").exists()


def test_missing_columns_refused(tmp_path: Path) -> None:
    with pytest.raises(ChronorecError, match="lack column 'category'"):
        prepare(_src(_events(), ["category"]), tmp_path / "p", PrepareOptions(protocol="next-item-last-out"))
    with pytest.raises(ChronorecError, match="lack column 'ts'"):
        prepare(_src({"user": ["a"], "item": ["b"]}), tmp_path / "p", PrepareOptions(protocol="next-item-last-out"))
    with pytest.raises(ChronorecError, match="empty"):
        empty = pl.DataFrame(schema={"user": pl.Utf8, "item": pl.Utf8, "ts": pl.Int64})
        prepare(_src(empty), tmp_path / "p", PrepareOptions(protocol="next-item-last-out"))


def test_bad_options_refused() -> None:
    with pytest.raises(ChronorecError, match="invalid prepare option protocol"):
        PrepareOptions.create(protocol="leave-two-out")
    with pytest.raises(ChronorecError, match="head_share"):
        PrepareOptions.create(protocol="ctr-leave-one-out", head_share=1.5)
    # users below the protocol's minimum would be kept and counted but get no sample
    with pytest.raises(ChronorecError, match=r"^invalid prepare options: min_user_events 2 is below "
                                             r"next-item-last-out's minimum of 3 events per user"):
        PrepareOptions.create(protocol="next-item-last-out", min_user_events=2)
    assert PrepareOptions.create(protocol="ctr-time-split", min_user_events=1).min_user_events == 1
    assert PrepareOptions.create(protocol="next-item-last-out", min_user_events=5).min_user_events == 5


def test_kcore_removing_everything(tmp_path: Path) -> None:
    with pytest.raises(ChronorecError, match="50-core is empty"):
        prepare(_src(_events()), tmp_path / "p", PrepareOptions(protocol="ctr-leave-one-out", kcore=50))


def test_kcore_fixed_point(tmp_path: Path) -> None:
    # item "rare" appears twice; dropping it leaves user "x" with 2 events, which must go too
    ev = {"user": [f"u{u}" for u in range(4) for _ in range(4)], "item": [f"i{k}" for _ in range(4) for k in range(4)],
          "ts": list(range(16))}  # a dense 4x4 core
    ev["user"] += ["x", "x", "x", "y"]
    ev["item"] += ["rare", "i1", "i2", "rare"]
    ev["ts"] += [1, 2, 3, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = prepare(_src(ev), tmp_path / "p", PrepareOptions(protocol="next-item-last-out", kcore=3))
    ds = PreparedDataset.open(tmp_path / "p")
    assert "x" not in ds.vocab("user")["raw"].to_list() and "rare" not in ds.vocab("item")["raw"].to_list()
    assert res.schema.counts["dropped_kcore"] > 0


def test_time_split_problems(tmp_path: Path) -> None:
    ev = _events()
    imps = pl.DataFrame({"user": ["u0", "u1", "u2"], "item": ["i1", "i2", "i3"],
                         "ts": [1_400_000_500, 1_400_090_000, 1_400_190_000], "label": [1, 0, 1]})
    opts = lambda d: PrepareOptions(protocol="ctr-time-split", split_dates=d)  # noqa: E731
    with pytest.raises(ChronorecError, match="leave the test split empty"):
        prepare(_src(ev, impressions=imps), tmp_path / "p", opts(("2014-05-14", "2030-01-01")))
    with pytest.raises(ChronorecError, match="not an ISO date"):
        prepare(_src(ev, impressions=imps), tmp_path / "p", opts(("yesterday", "2030-01-01")))
    with pytest.raises(ChronorecError, match="must increase"):
        prepare(_src(ev, impressions=imps), tmp_path / "p", opts(("2014-06-01", "2014-05-01")))
    with pytest.raises(ChronorecError, match="needs labelled impressions"):
        prepare(_src(ev), tmp_path / "p", opts(("2014-05-14", "2014-05-15")))
    with pytest.raises(ChronorecError, match="needs split dates"):
        prepare(_src(ev, impressions=imps), tmp_path / "p", PrepareOptions(protocol="ctr-time-split"))
    bad = imps.with_columns(pl.Series("label", [1, 2, 0]))
    with pytest.raises(ChronorecError, match="0 or 1") as err:
        prepare(_src(ev, impressions=bad), tmp_path / "p", opts(("2014-05-14", "2014-05-15")))
    assert err.value.row == 2 and err.value.column == "label"
    assert not (tmp_path / "p").exists()


def test_negatives_impossible(tmp_path: Path) -> None:
    ev = {"user": ["a"] * 3 + ["b"] * 3, "item": ["x", "y", "z", "x", "y", "y"], "ts": [1, 2, 3, 1, 2, 3]}
    with pytest.raises(ChronorecError, match="interacted with all 3 items"):
        prepare(_src(ev), tmp_path / "p", PrepareOptions(protocol="ctr-leave-one-out", dedupe=False))


def test_output_path_problems(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ChronorecError, match="not a folder"):
        prepare(_src(_events()), tmp_path / "file", PrepareOptions(protocol="next-item-last-out"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ChronorecError, match="not empty and holds no prepared dataset"):
        prepare(_src(_events()), tmp_path / "mine", PrepareOptions(protocol="next-item-last-out"))
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


# ------------------------------------------------------------------------------------------ CLI
def test_cli_map_to_missing_column(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "chronorec", "prepare", "--source", "csv",
         "--path", str(data_root / "ml-latest-small" / "ratings.csv"),
         "--map", "user=userId,item=movie_id,time=timestamp", "--protocol", "next-item-last-out",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "movie_id" in lines[0] and "ratings.csv" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (["--protocol", "leave-two-out"], "protocol"),
        (["--protocol", "ctr-time-split", "--split-dates", "2017-01-01"], "two dates"),
        (["--protocol", "next-item-last-out", "--map", "user"], "role=column"),
        (["--protocol", "next-item-last-out", "--kcore", "1000"], "1000-core is empty"),
        (["--protocol", "next-item-last-out", "--group-thresholds", "a,b"], "cannot parse"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, capsys, extra: list[str], expect: str) -> None:
    csv = tmp_path / "ev.csv"
    pl.DataFrame(_events()).write_csv(csv)
    out = tmp_path / "out"
    code, _, err = run_cli(["prepare", "--source", "csv", "--path", str(csv), "--out", str(out), *extra], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ev.csv"]


def test_cli_out_is_a_file(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "ev.csv"
    pl.DataFrame(_events()).write_csv(csv)
    code, _, err = run_cli(["prepare", "--source", "csv", "--path", str(csv), "--out", str(csv),
                            "--protocol", "next-item-last-out"], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a folder" in err and str(csv) in err

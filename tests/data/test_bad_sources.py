"""Malformed inputs, generated into tmp_path: each must be one ChronorecError line naming the file
(and the column / 1-based data row where that is knowable) - never a traceback, never a silent result."""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from chronorec.data.sources import load_source
from chronorec.errors import ChronorecError, ChronorecWarning

GOOD = "user_id,item_id,timestamp\n1,10,1500000000\n1,11,1500000100\n2,10,1500000200\n2,12,1500000300\n"


@dataclass
class Case:
    build: Callable[[Path], Callable[[], object]]  # writes files, returns the failing call
    file: str  # name of the file the message must name
    says: str  # fragment of the message
    column: str | None = None
    row: int | None = None


def _csv(
    text: str | bytes, name: str = "events.csv", source: str = "csv", **kw: object
) -> Callable[[Path], Callable[[], object]]:
    def build(tmp: Path) -> Callable[[], object]:
        path = tmp / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return lambda: load_source(source, path, **kw)  # type: ignore[arg-type]

    return build


def _gz_truncated(tmp: Path) -> Callable[[], object]:
    path = tmp / "events.csv.gz"
    path.write_bytes(gzip.compress((GOOD * 50).encode())[:-30])
    return lambda: load_source("csv", path)


def _gz_corrupt(tmp: Path) -> Callable[[], object]:
    path = tmp / "events.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"definitely not deflate data" * 3)
    return lambda: load_source("csv", path)


def _parquet(cut: int | None = None, corrupt: bool = False) -> Callable[[Path], Callable[[], object]]:
    def build(tmp: Path) -> Callable[[], object]:
        path = tmp / "events.parquet"
        pl.DataFrame(
            {"user_id": [1, 2], "item_id": [3, 4], "timestamp": [1500000000, 1500000001]}
        ).write_parquet(path)
        data = path.read_bytes()
        if cut is not None:
            data = data[:cut]
        if corrupt:
            data = b"PAR1" + b"\x00garbage" * 20 + b"PAR1"
        path.write_bytes(data)
        return lambda: load_source("parquet", path)

    return build


def _parquet_no_time(tmp: Path) -> Callable[[], object]:
    path = tmp / "events.parquet"
    pl.DataFrame({"user_id": [1], "item_id": [3], "when_": [1500000000]}).write_parquet(path)
    return lambda: load_source("parquet", path)


def _parquet_text_time(tmp: Path) -> Callable[[], object]:
    path = tmp / "events.parquet"
    pl.DataFrame(
        {"user": ["1", "2", "3"], "item": ["a", "b", "c"], "ts": ["1500000000", "1500000001", "soon"]}
    ).write_parquet(path)
    return lambda: load_source("parquet", path)


def _parquet_nested_ids(tmp: Path) -> Callable[[], object]:
    path = tmp / "events.parquet"
    pl.DataFrame({"user": [[1, 2], [3]], "item": ["a", "b"], "ts": [1500000000, 1500000001]}).write_parquet(
        path
    )
    return lambda: load_source("parquet", path)


def _attrs_conflict(tmp: Path) -> Callable[[], object]:
    (tmp / "events.csv").write_text(GOOD)
    (tmp / "attrs.csv").write_text("item_id,cate_last\n10,3\n11,4\n12,5\n10,7\n")
    return lambda: load_source("csv", tmp / "events.csv", item_attrs=tmp / "attrs.csv")


def _lines(items: str, times: str) -> Callable[[Path], Callable[[], object]]:
    def build(tmp: Path) -> Callable[[], object]:
        (tmp / "X_item_seq.txt").write_text(items)
        (tmp / "X_time_seq.txt").write_text(times)
        return lambda: load_source("lines", tmp)

    return build


def _amazon_json(reviews: str, meta: str) -> Callable[[Path], Callable[[], object]]:
    def build(tmp: Path) -> Callable[[], object]:
        (tmp / "reviews_Toys_5.json").write_text(reviews)
        (tmp / "meta_Toys.json").write_text(meta)
        return lambda: load_source("amazon-json", tmp)

    return build


def _taobao_bad_label(tmp: Path) -> Callable[[], object]:
    (tmp / "behavior_log.csv").write_text("user,time_stamp,btag,cate,brand\n1,1493741625,pv,6250,91286\n")
    (tmp / "ad_feature.csv").write_text(
        "adgroup_id,cate_id,campaign_id,customer,brand,price\n1,6250,1,1,91286,1.0\n"
    )
    (tmp / "raw_sample.csv").write_text(
        "user,time_stamp,adgroup_id,pid,nonclk,clk\n1,1494137644,1,p,1,0\n1,1494137645,1,p,0,2\n"
    )
    return lambda: load_source("taobao", tmp)


def _two_inter(tmp: Path) -> Callable[[], object]:
    for name in ("a.inter", "b.inter"):
        (tmp / name).write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n")
    return lambda: load_source("atomic", tmp)


def _empty_folder(tmp: Path) -> Callable[[], object]:
    (tmp / "data").mkdir()
    return lambda: load_source("amazon-csv", tmp / "data")


REVIEW = '{{"reviewerID": "A{u}", "asin": "B{i}", "overall": 5.0, "unixReviewTime": {t}}}\n'
META = "{'asin': 'B1', 'categories': [['Toys', 'Games']]}\n"

CASES: dict[str, Case] = {
    "missing_file": Case(lambda tmp: lambda: load_source("csv", tmp / "nope.csv"), "nope.csv", "not found"),
    "empty_file": Case(_csv(""), "events.csv", "empty file"),
    "blank_lines_only": Case(_csv("\n\n  \n"), "events.csv", "empty file"),
    "header_only": Case(_csv("user_id,item_id,timestamp\n"), "events.csv", "no data rows"),
    "misspelt_column": Case(
        _csv("user_id,item_id,timestmap\n1,2,3\n"), "events.csv", "did you mean 'timestmap'"
    ),
    "map_target_missing": Case(
        _csv(GOOD, mapping={"time": "when"}), "events.csv", "no column 'when'", column="when"
    ),
    "text_in_timestamp": Case(
        _csv(GOOD + "3,13,yesterday\n"), "events.csv", "'yesterday' is not a valid time", "timestamp", 5
    ),
    "null_timestamps": Case(
        _csv("user_id,item_id,timestamp\n1,2,1500000000\n1,3,\n2,3,1500000001\n2,4,\n"),
        "events.csv",
        "missing or NaN time (2 rows",
        "timestamp",
        2,
    ),
    "nan_timestamps": Case(
        _csv("user_id,item_id,timestamp\n1,2,1500000000.5\n1,3,NaN\n"), "events.csv", "NaN", "timestamp", 2
    ),
    "negative_timestamp": Case(
        _csv("user_id,item_id,timestamp\n1,2,1500000000\n1,3,-86400\n"),
        "events.csv",
        "negative time",
        "timestamp",
        2,
    ),
    "far_future_timestamp": Case(
        _csv("user_id,item_id,timestamp\n1,2,1500000000\n1,3,4102444800\n1,4,1500000001\n"),
        "events.csv",
        "far future",
        "timestamp",
        2,
    ),
    "bad_iso_date": Case(
        _csv("user,item,date\n1,2,2016-05-09\n1,3,2016-13-45\n"), "events.csv", "'2016-13-45'", "date", 2
    ),
    "truncated_gzip": Case(_gz_truncated, "events.csv.gz", "truncated gzip"),
    "corrupt_gzip": Case(_gz_corrupt, "events.csv.gz", "corrupt gzip"),
    "truncated_parquet": Case(_parquet(cut=300), "events.parquet", "truncated Parquet"),
    "corrupt_parquet": Case(_parquet(corrupt=True), "events.parquet", "corrupt Parquet"),
    "parquet_missing_column": Case(_parquet_no_time, "events.parquet", "no time column"),
    "parquet_text_in_time": Case(_parquet_text_time, "events.parquet", "'soon' is not a valid time", "ts", 3),
    "parquet_nested_ids": Case(_parquet_nested_ids, "events.parquet", "column has type List(Int64)", "user"),
    "mixed_separators": Case(
        _csv(GOOD + "3;13;1500000400\n4,14,1500000500\n"),
        "events.csv",
        "1 field(s) where the header has 3 (separator ','); it splits into 3 on ';'",
        row=5,
    ),
    "extra_fields": Case(_csv(GOOD + "3,13,1500000400,oops\n"), "events.csv", "4 field(s)", row=5),
    "non_utf8_bytes": Case(
        _csv(b"user_id,item_id,timestamp\n1,caf\xe9,1500000000\n2,10,1500000001\n"),
        "events.csv",
        "byte 0xe9",
        row=1,
    ),
    "null_user_id": Case(
        _csv("user_id,item_id,timestamp\n1,2,1500000000\n ,3,1500000001\n"),
        "events.csv",
        "empty user id",
        "user_id",
        2,
    ),
    "null_item_id": Case(
        _csv("user_id,item_id,timestamp,rating\n1,2,1500000000,1\n1,,1500000001,2\n"),
        "events.csv",
        "empty item id",
        "item_id",
        2,
    ),
    "rating_not_number": Case(
        _csv("user_id,item_id,timestamp,rating\n1,2,1500000000,4.5\n1,3,1500000001,five\n"),
        "events.csv",
        "'five' is not a number",
        "rating",
        2,
    ),
    "attribute_conflict": Case(_attrs_conflict, "attrs.csv", "two different category values", "cate_last", 4),
    "lines_length_mismatch": Case(
        _lines("1 5 6 7\n2 8 9\n", "1 100 200 300\n2 400\n"),
        "X_time_seq.txt",
        "1 timestamps but 2 items",
        row=2,
    ),
    "lines_text_timestamp": Case(
        _lines("1 5 6\n2 8 9\n", "1 100 200\n2 300 later\n"),
        "X_time_seq.txt",
        "'later' is not a valid time",
        row=2,
    ),
    "lines_user_mismatch": Case(
        _lines("1 5 6\n2 8 9\n", "1 100 200\n3 300 400\n"), "X_time_seq.txt", "user id '3' differs", row=2
    ),
    "json_broken_line": Case(
        _amazon_json(REVIEW.format(u=1, i=1, t=1388534400) + '{"reviewerID": "A2", "asin": \n', META),
        "reviews_Toys_5.json",
        "not a JSON object",
        row=2,
    ),
    "meta_unparsable_line": Case(
        _amazon_json(
            REVIEW.format(u=1, i=1, t=1388534400), "{'asin': 'B1', 'categories': [['Toys', 'Games']\n"
        ),
        "meta_Toys.json",
        "neither JSON nor a Python literal",
        row=1,
    ),
    "dat_wrong_field_count": Case(
        _csv("1::2::5::978300760\n1::3::978300761\n", name="ratings.dat", source="movielens-dat"),
        "ratings.dat",
        "3 '::'-separated field(s), expected 4",
        row=2,
    ),
    "taobao_label_not_binary": Case(_taobao_bad_label, "raw_sample.csv", "label '2' is not 0 or 1", "clk", 2),
    "atomic_two_inter_files": Case(_two_inter, "", "expected exactly one .inter file"),
    "layout_files_absent": Case(_empty_folder, "data", "expected train.csv, dev.csv, test.csv"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_error(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    call = case.build(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChronorecWarning)
        with pytest.raises(ChronorecError) as info:
            call()
    err = info.value
    text = str(err)
    assert "\n" not in text and text.strip() == text
    assert case.says in text, text
    assert err.file is not None and Path(err.file).name == (case.file or tmp_path.name), text
    assert text.startswith(err.file)
    if case.column is not None:
        assert err.column == case.column and f"column '{case.column}'" in text, text
    if case.row is not None:
        assert err.row == case.row and f"row {case.row}" in text, text


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 18


def test_items_absent_from_attribute_table_warn_with_count(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(GOOD)
    (tmp_path / "attrs.csv").write_text("item_id,cate_last\n10,3\n11,0\n")
    with pytest.warns(ChronorecWarning, match=r"1 of 3 event items \(1 events\)"):
        data = load_source("csv", tmp_path / "events.csv", item_attrs=tmp_path / "attrs.csv")
    cats = dict(zip(data.events["item"], data.events["category"], strict=True))
    assert cats == {"10": "3", "11": None, "12": None}  # 0 = unknown in the attribute table
    assert data.side == ["category"] and tmp_path / "attrs.csv" in data.files


def test_drop_invalid_repairs_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\n1,2,1500000000\n,3,1500000001\n1,4,\n1,5,1500000002\n")
    with pytest.warns(ChronorecWarning) as record:
        data = load_source("csv", path, options={"drop_invalid": True})
    messages = " ".join(str(w.message) for w in record)
    assert "dropped 1 rows with an empty user id" in messages
    assert "dropped 1 rows with a missing or NaN time" in messages
    assert data.events["item"].to_list() == ["2", "5"]


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda p: load_source("no-such-source", p), "unknown source 'no-such-source'"),
        (lambda p: load_source("csv", p, options={"colour": 1}), "has no option 'colour'"),
        (lambda p: load_source("csv", p, time_unit="days"), "time unit 'days'"),  # type: ignore[arg-type]
        (lambda p: load_source("lines", p, mapping={"user": "u"}), "takes no column mapping"),
    ],
)
def test_bad_arguments_are_one_line_errors(call: Callable[[Path], object], says: str, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(GOOD)
    with pytest.raises(ChronorecError, match=says) as info:
        call(path)
    assert "\n" not in str(info.value)

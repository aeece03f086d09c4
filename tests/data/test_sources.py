"""Source loaders on fixtures in the published layouts (tests/fixtures/sources) and synthetic files."""

from __future__ import annotations

import gzip
import warnings
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from chronorec.data.sources import describe_sources, list_sources, load_source
from chronorec.errors import ChronorecWarning

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "sources"


def epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def quiet_load(*args: object, **kwargs: object):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChronorecWarning)
        return load_source(*args, **kwargs)  # type: ignore[arg-type]


def test_registry_names_and_descriptions() -> None:
    names = set(list_sources())
    assert names == {
        "csv", "tsv", "parquet", "movielens-dat", "ml-latest", "atomic", "amazon-json", "amazon-csv",
        "lines", "taobao", "mobilerec", "lsapp", "studentlife", "yoochoose", "diginetica",
    }  # fmt: skip
    for name, text in describe_sources().items():
        assert text and "\n" not in text, name


def test_canonical_dtypes() -> None:
    data = quiet_load("amazon-json", FIX / "amazon-json")
    assert data.events.schema == pl.Schema(
        {
            "user": pl.Utf8,
            "item": pl.Utf8,
            "ts": pl.Int64,
            "category": pl.Utf8,
            "brand": pl.Utf8,
            "rating": pl.Float64,
        }
    )


# --- amazon-json -------------------------------------------------------------------------------


def test_amazon_json_categories_brands_and_literal_dicts() -> None:
    with pytest.warns(ChronorecWarning, match=r"1 of 10 event items \(3 events\) have no metadata"):
        data = load_source("amazon-json", FIX / "amazon-json")
    ev = data.events
    assert ev.height == 30 and ev["user"].n_unique() == 6 and ev["item"].n_unique() == 10
    assert data.side == ["category", "brand"] and data.time_granularity == "day"
    assert [p.name for p in data.files] == ["reviews_Toys_5.json", "meta_Toys.json"]
    per_item = dict(ev.select("item", "category").unique().iter_rows())
    assert per_item["B000000002"] == "Strategy"  # last entry of the deepest path
    assert per_item["B000000003"] == "Science"  # equal depth: the first path wins
    assert per_item["B000000004"] == "Toys & Games"  # single-level path; this line is strict JSON
    assert per_item["B000000009"] is None  # no metadata line
    assert per_item["B000000010"] is None  # empty categories
    brands = dict(ev.select("item", "brand").unique().iter_rows())
    assert brands["B000000006"] == 'Mattel\'s "Best"' and brands["B000000007"] == "Hasbro"
    assert brands["B000000003"] is None
    first = ev.row(0, named=True)
    assert first == {"user": "A1RSDE90N6RSZF", "item": "B000000001", "ts": epoch(2014, 1, 1), "category": "Jigsaw Puzzles",
                     "brand": "Ravensburger", "rating": 1.0}  # fmt: skip


def test_amazon_json_gzip_equals_plain() -> None:
    plain = quiet_load("amazon-json", FIX / "amazon-json")
    gz = quiet_load("amazon-json", FIX / "amazon-json-gz" / "reviews_Toys_5.json.gz")
    assert gz.events.equals(plain.events)
    assert [p.name for p in gz.files] == ["reviews_Toys_5.json.gz", "meta_Toys.json.gz"]


def test_amazon_json_without_metadata_warns(tmp_path: Path) -> None:
    (tmp_path / "reviews_X_5.json").write_bytes((FIX / "amazon-json" / "reviews_Toys_5.json").read_bytes())
    with pytest.warns(ChronorecWarning, match="no metadata file"):
        data = load_source("amazon-json", tmp_path)
    assert data.side == [] and data.events.columns == ["user", "item", "ts", "rating"]


# --- taobao --------------------------------------------------------------------------------------


def test_taobao_behaviors_and_impressions() -> None:
    with pytest.warns(ChronorecWarning, match="dropped 1 impressions whose adgroup_id"):
        data = load_source("taobao", FIX / "taobao")
    ev, imp = data.events, data.impressions
    assert data.side == ["category"]
    assert ev.columns == ["user", "item", "ts", "category", "btag"]
    assert ev["item"].to_list() == ["91286", "91286", "91286", "62353", "NULL", "365477", "365477", "247789"]
    assert ev["btag"].to_list()[:3] == ["pv", "pv", "cart"]
    assert imp is not None and imp.columns == ["user", "item", "ts", "category", "adgroup", "label"]
    assert imp["label"].dtype == pl.Int8 and imp["label"].to_list() == [0, 1, 0, 0, 1]
    assert imp["adgroup"].to_list() == ["1", "2", "3", "1", "4"]
    assert imp["item"].to_list() == ["91286", "62353", "NULL", "91286", "247789"]  # the ad's brand
    assert imp["category"].to_list() == ["6250", "11800", "1101", "6250", "4520"]
    assert {p.name for p in data.files} == {"behavior_log.csv", "raw_sample.csv", "ad_feature.csv"}


# --- app logs -----------------------------------------------------------------------------------


def test_mobilerec() -> None:
    data = load_source("mobilerec", FIX / "mobilerec" / "mobilerec_sample.csv")
    ev = data.events
    assert ev["item"].to_list()[:3] == ["com.whatsapp", "com.spotify.music", "com.king.candycrushsaga"]
    assert ev["category"].to_list()[1] == "Music & Audio" and ev["rating"].to_list()[2] == 3.0
    assert ev["ts"][0] == epoch(2019, 10, 21) and data.side == ["category"]


def test_lsapp_keeps_opened_events_only() -> None:
    data = load_source("lsapp", FIX / "lsapp" / "lsapp.tsv")
    ev = data.events
    assert ev["item"].to_list() == ["Google", "Chrome", "Gmail", "Facebook", "WhatsApp Messenger"]
    assert ev["session"].to_list() == ["1", "1", "2", "3", "3"]
    assert ev["ts"][0] == epoch(2018, 1, 16, 6, 1, 5) and data.time_granularity == "second"


def _snapshots(path: Path) -> None:
    rows = [  # one row per running task, most recent first, as Android lists them
        ("00", 1000, "A"), ("00", 1000, "B"),
        ("00", 2200, "C"), ("00", 2200, "A"), ("00", 2200, "B"),
        ("00", 3400, "B"), ("00", 3400, "C"),
        ("00", 4600, "A"), ("00", 4600, "D"), ("00", 4600, "B"),
        ("01", 1500, "A"),
        ("01", 2700, "A"), ("01", 2700, "A"),
        ("02", 100, "A"), ("02", 200, "X"), ("02", 300, "A"),
    ]  # fmt: skip
    lines = ["userId,timestamp,device,RUNNING_TASKS_id,RUNNING_TASKS_topActivity_mPackage"]
    lines += [f"{u},{t},dev,{k},{p}" for k, (u, t, p) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_studentlife_open_rule(tmp_path: Path) -> None:
    _snapshots(tmp_path / "running_app.csv")
    ev = load_source("studentlife", tmp_path / "running_app.csv").events
    # new on top since the previous snapshot; same-snapshot opens least recent first
    assert ev.rows() == [
        ("00", "C", 2200),
        ("00", "D", 4600),
        ("00", "A", 4600),
        ("02", "X", 200),
        ("02", "A", 300),
    ]
    first = load_source("studentlife", tmp_path / "running_app.csv", options={"include_first": True}).events
    assert first.rows()[:2] == [("00", "B", 1000), ("00", "A", 1000)]
    assert ("01", "A", 1500) in first.rows() and ("02", "A", 100) in first.rows()
    # an excluded package is ignored, but its snapshot still separates the others
    excl = load_source("studentlife", tmp_path / "running_app.csv", options={"exclude": ["D", "X"]}).events
    assert excl.rows() == [("00", "C", 2200), ("00", "A", 4600), ("02", "A", 300)]


def test_studentlife_user_from_file_name(tmp_path: Path) -> None:
    (tmp_path / "running_app_u07.csv").write_text(
        "timestamp,RUNNING_TASKS_topActivity_mPackage\n10,A\n1210,B\n1210,A\n"
    )
    ev = load_source("studentlife", tmp_path).events
    assert ev.rows() == [("u07", "B", 1210)]


# --- MovieLens, atomic ---------------------------------------------------------------------------


def test_movielens_dat_folder_and_file_agree() -> None:
    folder = load_source("movielens-dat", FIX / "movielens-dat")
    file = load_source("movielens-dat", FIX / "movielens-dat" / "ratings.dat")
    assert folder.events.equals(file.events)
    cats = dict(folder.events.select("item", "category").unique().iter_rows())
    assert cats == {"1193": "Drama", "661": "Animation", "914": "Musical", "1357": "Drama", "3068": "Action",
                    "2355": "Animation", "73": "Drama"}  # fmt: skip
    assert folder.events["rating"].to_list()[:2] == [5.0, 3.0] and folder.events["ts"][0] == 978300760


def test_atomic_category_from_first_token_seq(tmp_path: Path) -> None:
    (tmp_path / "toy.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\ta\t4\t100.0\n1\tb\t3\t200.0\n2\ta\t5\t150\n"
    )
    (tmp_path / "toy.item").write_text(
        "item_id:token\tgenres:token_seq\tbrand:token\na\tRock Pop\tAcme\nb\tJazz\t\n"
    )
    data = load_source("atomic", tmp_path)
    assert data.side == ["category", "brand"]
    assert data.events.rows() == [("1", "a", 100, "Rock", "Acme", 4.0), ("1", "b", 200, "Jazz", None, 3.0),
                                  ("2", "a", 150, "Rock", "Acme", 5.0)]  # fmt: skip


# --- sessions -------------------------------------------------------------------------------------


def test_yoochoose_raw_dat() -> None:
    data = load_source("yoochoose", FIX / "yoochoose" / "yoochoose-clicks.dat")
    ev = data.events
    assert ev["user"].to_list() == ["1", "1", "1", "2", "2", "2", "3"]
    assert ev["category"].to_list() == [None, None, None, "S", "S", "3", "2053349813"]  # 0 = missing
    assert ev["ts"][0] == epoch(2014, 4, 7, 10, 51, 9) and data.time_granularity == "millisecond-truncated"


def test_yoochoose_prepared_tsv(tmp_path: Path) -> None:
    (tmp_path / "x_train_full.txt").write_text(
        "SessionId\tItemId\tTime\n1\t10\t1396860669.277\n1\t11\t1396860886.9\n"
    )
    (tmp_path / "x_test.txt").write_text("SessionId\tItemId\tTime\n2\t10\t1396871797.614\n")
    (tmp_path / "x_train_tr.txt").write_text(
        "SessionId\tItemId\tTime\n1\t10\t1396860669.277\n"
    )  # subset, not read
    data = load_source("yoochoose", tmp_path)
    assert data.events.rows() == [("1", "10", 1396860669), ("1", "11", 1396860886), ("2", "10", 1396871797)]


def test_diginetica_user_or_session() -> None:
    data = load_source("diginetica", FIX / "diginetica")
    ev = data.events
    assert ev["user"].to_list() == ["session:1"] * 3 + ["278", "278", "session:3"]
    assert ev["session"].to_list() == ["1", "1", "1", "2", "2", "3"]
    assert ev["ts"].to_list()[0] == epoch(2016, 5, 9) + 526
    assert ev["ts"].to_list()[3:] == [epoch(2016, 5, 2) + 1, epoch(2016, 5, 2) + 9, epoch(2016, 3, 22)]


# --- generic: time units, separators, mapping, parquet ------------------------------------------


@pytest.mark.parametrize(
    ("values", "unit", "expected", "granularity"),
    [
        (["1500000000", "1500086400"], "auto", [1500000000, 1500086400], "second"),
        (["1500000000123", "1500086400999"], "auto", [1500000000, 1500086400], "millisecond-truncated"),
        (["1500000000000", "1500086400000"], "auto", [1500000000, 1500086400], "second"),
        (["1500000000.75", "1500086400.0"], "auto", [1500000000, 1500086400], "millisecond-truncated"),
        (["2017-07-14", "2017-07-15"], "auto", [epoch(2017, 7, 14), epoch(2017, 7, 15)], "day"),
        (["2017-07-14T02:40:00Z", "2017-07-14 02:40:01"], "auto", [1500000000, 1500000001], "second"),
        (
            ["2017-07-14T04:40:00+02:00", "2017-07-14T02:40:00.5Z"],
            "iso",
            [1500000000, 1500000000],
            "millisecond-truncated",
        ),
        (["1500000000", "1500086400"], "ms", [1500000, 1500086], "millisecond-truncated"),
        (["86400", "172800"], "s", [86400, 172800], "day"),
    ],
)
def test_time_units(
    tmp_path: Path, values: list[str], unit: str, expected: list[int], granularity: str
) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user,item,time\n" + "".join(f"u,{k},{v}\n" for k, v in enumerate(values)))
    data = load_source("csv", path, time_unit=unit)  # type: ignore[arg-type]
    assert data.events["ts"].to_list() == expected
    assert data.time_granularity == granularity


@pytest.mark.parametrize("sep", ["\t", ";", "|", ","])
def test_separator_is_sniffed(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "events.txt"
    path.write_text(
        sep.join(["userId", "movieId", "timestamp", "genre"])
        + "\n"
        + sep.join(["7", "9", "1500000000", "Drama"])
        + "\n"
    )
    data = load_source("csv", path)
    assert data.events.rows() == [("7", "9", 1500000000, "Drama")] and data.side == ["category"]


def test_mapping_roles_and_extra_side_features(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        'who,what,when,kind,city,stars\n1,a,1500000000,x,"Paris, FR",4\n2,b,1500000060,y,Oslo,5\n'
    )
    mapping = {
        "user": "who",
        "item": "what",
        "ts": "when",
        "category": "kind",
        "city": "city",
        "rating": "stars",
    }
    data = load_source("csv", path, mapping=mapping)
    assert data.side == ["category", "city"]
    assert data.events.columns == ["user", "item", "ts", "category", "city", "rating"]
    assert data.events.row(0) == ("1", "a", 1500000000, "x", "Paris, FR", 4.0)


def test_tsv_gzip_and_null_values(tmp_path: Path) -> None:
    text = "user_id\titem_id\ttimestamp\tcate_id\n1\t2\t1500000000\t0\n1\t3\t1500000001\t5\n"
    (tmp_path / "e.tsv.gz").write_bytes(gzip.compress(text.encode()))
    data = load_source("tsv", tmp_path / "e.tsv.gz", options={"null_values": ["0"]})
    assert data.events["category"].to_list() == [None, "5"]


def test_latin1_encoding_option(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_bytes("user,item,ts\nJosé,café,1500000000\n".encode("latin-1"))
    data = load_source("csv", tmp_path / "e.csv", options={"encoding": "latin-1"})
    assert data.events.row(0) == ("José", "café", 1500000000)


def test_parquet_matches_csv(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "user_id": [1, 1, 2],
            "item_id": [10.0, 11.0, 10.0],  # integral floats read as integer ids
            "timestamp": [
                datetime(2017, 7, 14, 2, 40, tzinfo=UTC),
                datetime(2017, 7, 14, 2, 41, tzinfo=UTC),
                None,
            ],
            "category": ["a", None, "a"],
        }
    ).with_columns(pl.col("timestamp").fill_null(datetime(2017, 7, 15, tzinfo=UTC)))
    frame.write_parquet(tmp_path / "e.parquet")
    frame.with_columns(pl.col("timestamp").dt.epoch("s"), pl.col("item_id").cast(pl.Int64)).write_csv(
        tmp_path / "e.csv"
    )
    pq = load_source("parquet", tmp_path / "e.parquet")
    csv = load_source("csv", tmp_path / "e.csv")
    assert pq.events.equals(csv.events)
    assert pq.events["item"].to_list() == ["10", "11", "10"] and pq.events["ts"][0] == 1500000000


# --- lines, amazon-csv -------------------------------------------------------------------------------


def test_lines_folder_file_and_whitespace(tmp_path: Path) -> None:
    (tmp_path / "S_item_x.txt").write_text("u1 5 6 7\n\nu2\t8  9\n")
    (tmp_path / "S_time_x.txt").write_text("u1 100 100 200\n\nu2 300 400\n")
    by_folder = load_source("lines", tmp_path)
    by_file = load_source("lines", tmp_path / "S_item_x.txt")
    assert by_folder.events.equals(by_file.events)
    assert by_folder.events.rows() == [
        ("u1", "5", 100),
        ("u1", "6", 100),
        ("u1", "7", 200),
        ("u2", "8", 300),
        ("u2", "9", 400),
    ]


def test_amazon_csv_split_and_merged_layouts_agree(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("user_id\titem_id\ttime\n1\t1\t86400\n2\t2\t86400\n1\t3\t172800\n")
    (tmp_path / "dev.csv").write_text("user_id,item_id,time\n1,2,259200\n")
    (tmp_path / "test.csv").write_text('user_id,item_id,time,neg_items\n1,1,345600,"[2, 3]"\n')
    (tmp_path / "item_meta.csv").write_text("item_id,i_category,r_complement\n1,0,[]\n2,4,[1]\n3,7,[]\n")
    (tmp_path / "interactions_with_category.csv").write_text(
        "user_id,item_id,cate_id,timestamp,split\n1,1,0,86400,train\n2,2,4,86400,train\n1,3,7,172800,train\n"
        "1,2,4,259200,dev\n1,1,0,345600,test\n"
    )
    split = load_source("amazon-csv", tmp_path)
    merged = load_source("amazon-csv", tmp_path, options={"layout": "merged"})
    assert split.events.equals(merged.events) and split.time_granularity == "day"
    assert split.events["category"].to_list() == [None, "4", "7", "4", None]
    assert [p.name for p in split.files] == ["train.csv", "dev.csv", "test.csv", "item_meta.csv"]


def test_din_style_single_csv_keeps_category_zero(tmp_path: Path) -> None:
    (tmp_path / "electronics.csv").write_text(
        "user_id,item_id,time,cate_id\n0,13179,1400457600,0\n0,29247,1400457600,339\n"
    )
    data = load_source("amazon-csv", tmp_path / "electronics.csv")
    assert data.events["category"].to_list() == ["0", "339"]


def test_item_attrs_add_category_and_brand(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("user_id,item_id,timestamp\n1,10,1500000000\n1,11,1500000001\n")
    (tmp_path / "attrs.csv").write_text("item_id,brand,category\n10,acme,3\n11,,4\n10,acme,3\n")
    data = load_source("csv", tmp_path / "e.csv", item_attrs=tmp_path / "attrs.csv")
    assert data.side == ["category", "brand"]
    assert data.events.rows() == [("1", "10", 1500000000, "3", "acme"), ("1", "11", 1500000001, "4", None)]


@pytest.mark.parametrize(
    "values",
    [
        ["1500000000", "1500086400", None],  # all integers: the numeric fast path
        ["1500000000123", "1500086400999"],  # milliseconds by magnitude
        [" 1500000000", "1500086400 "],  # padded: the text path strips them
        ["1500000000", ""],  # an empty string is missing, not an integer
        ["1500000000", "1.5e9"],  # one float among integers
    ],
)
def test_integer_time_strings_parse_as_their_numbers(values: list[str | None]) -> None:
    """Integer strings skip the stripped text copy; the result equals parsing the numbers themselves."""
    from chronorec.data.sources._time import parse_time

    text = parse_time(pl.Series(values, dtype=pl.Utf8))
    numbers = parse_time(pl.Series([None if v is None or not v.strip() else float(v) for v in values]))
    assert text.seconds.to_list() == numbers.seconds.to_list()
    assert text.unit == numbers.unit and text.subsecond == numbers.subsecond
    assert text.missing.to_list() == numbers.missing.to_list()
    assert not text.invalid.any()

"""Source loaders on the shared real datasets (``data_root`` fixture: CHRONOREC_DATA, default
../shared/data): exact counts and cross-checks between layouts of the same data. Skipped, with the
reason, when the data is absent."""

from __future__ import annotations

import itertools
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from chronorec.data.sources import SourceData, load_source
from chronorec.errors import ChronorecWarning


@pytest.fixture
def need(data_root: Path) -> Callable[[str], Path]:
    def get(sub: str) -> Path:
        path = data_root / sub
        if not path.exists():
            pytest.skip(f"real data {path} absent (set CHRONOREC_DATA to the shared data folder)")
        return path

    return get


def counts(data: SourceData) -> tuple[int, int, int]:
    ev = data.events
    return ev.height, ev["user"].n_unique(), ev["item"].n_unique()


def by_key(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns)


def test_amazon_grocery_split_layout(need: Callable[[str], Path]) -> None:
    data = load_source("amazon-csv", need("amazon-grocery"))
    assert counts(data) == (151_254, 14_681, 8_713)
    assert data.side == ["category"] and data.time_granularity == "day"
    items = data.events.select("item", "category").unique()
    assert items.height == 8_713  # one category per item
    # i_category: 56 named level-2 categories; 0 is ReChorus's "none" -> null (57 values with the unknown)
    assert items["category"].drop_nulls().n_unique() == 56
    assert items["category"].n_unique() == 57 and items["category"].null_count() == 8_349
    assert [p.name for p in data.files] == ["train.csv", "dev.csv", "test.csv", "item_meta.csv"]


def test_amazon_grocery_merged_layout_agrees(need: Callable[[str], Path]) -> None:
    split = load_source("amazon-csv", need("amazon-grocery"))
    merged = load_source("amazon-csv", need("amazon-grocery"), options={"layout": "merged"})
    assert by_key(merged.events).equals(by_key(split.events))


def test_amazon_beauty_lines_with_attribute_table(need: Callable[[str], Path]) -> None:
    root = need("amazon-beauty")
    start = time.perf_counter()
    with pytest.warns(ChronorecWarning, match=r"7 of 12101 event items \(43 events\)"):
        data = load_source("lines", root / "raw", item_attrs=root / "item_attributes_from_s3rec.csv")
    elapsed = time.perf_counter() - start
    assert counts(data) == (198_502, 22_363, 12_101)
    assert data.side == ["category"] and data.time_granularity == "day"
    assert elapsed < 10, f"amazon-beauty lines took {elapsed:.2f}s"
    # the long CSV with cate_id (0 = unmapped) is the same data
    csv = load_source("amazon-csv", root / "interactions_with_category.csv")
    assert by_key(csv.events).equals(by_key(data.events))


def test_yelp_lines(need: Callable[[str], Path]) -> None:
    root = need("yelp-a")
    start = time.perf_counter()
    data = load_source("lines", root / "raw")
    elapsed = time.perf_counter() - start
    assert counts(data) == (316_354, 30_431, 20_033)
    assert data.time_granularity == "second" and data.side == []
    assert elapsed < 10, f"yelp-a lines took {elapsed:.2f}s"
    csv = load_source("csv", root / "interactions.csv")
    assert csv.events.equals(data.events)  # same order too: user by user, chronological


def test_ml100k_atomic(need: Callable[[str], Path]) -> None:
    data = load_source("atomic", need("ml-100k"))
    assert counts(data) == (100_000, 943, 1_682)
    ev = data.events
    assert ev.columns == ["user", "item", "ts", "category", "rating"] and data.side == ["category"]
    assert ev["category"].null_count() == 0
    assert ev.row(0) == ("196", "242", 881250949, "Comedy", 3.0)  # Kolya (1996): class "Comedy"
    assert data.time_granularity == "second"


def test_ml_latest_small_generic_csv_and_ml_latest_agree(need: Callable[[str], Path]) -> None:
    root = need("ml-latest-small")
    mapping = {"user": "userId", "item": "movieId", "time": "timestamp", "rating": "rating"}
    generic = load_source("csv", root / "ratings.csv", mapping=mapping)
    assert counts(generic) == (100_004, 671, 9_066)
    ml = load_source("ml-latest", root)
    assert counts(ml) == (100_004, 671, 9_066)
    assert ml.side == ["category", "genres"]
    assert ml.events.select("user", "item", "ts", "rating").equals(generic.events)
    first = ml.events.row(1, named=True)  # movie 1029 = Dumbo (1941)
    assert first["category"] == "Animation" and first["genres"] == "Animation|Children|Drama|Musical"
    no_genre = ml.events.filter(pl.col("genres").is_null())
    assert no_genre.height == 18 and no_genre["category"].null_count() == 18  # "(no genres listed)"


def test_yoochoose_sessions(need: Callable[[str], Path]) -> None:
    data = load_source("yoochoose", need("yoochoose-sessions"))
    assert data.events.height == 83_846 and data.time_granularity == "millisecond-truncated"
    assert [p.name for p in data.files] == [
        "yoochoose-clicks-100k_train_full.txt",
        "yoochoose-clicks-100k_test.txt",
    ]


def test_format_samples(need: Callable[[str], Path]) -> None:
    root = need("format-samples")
    din = load_source("amazon-csv", root / "amazon_electronics_sample.csv")
    assert din.events.height == 100 and din.side == ["category"] and din.events["category"].null_count() == 0
    digi = load_source("diginetica", root / "train-item-views-sample.csv")
    assert digi.events.height == 500 and digi.events["session"].null_count() == 0
    assert digi.events.filter(~pl.col("user").str.starts_with("session:"))["user"].n_unique() == 3
    yoo = load_source("yoochoose", root / "yoochoose-clicks-sample.dat")
    assert yoo.events.height == 500 and yoo.time_granularity == "millisecond-truncated"


def test_studentlife_opens_follow_the_rule(need: Callable[[str], Path]) -> None:
    path = need("studentlife-apps") / "running_app_u00_u01_u02.csv.gz"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChronorecWarning)
        data = load_source("studentlife", path)
    # an independent, plain-Python application of the documented rule
    snaps: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    raw = pl.read_csv(
        path, columns=["userId", "timestamp", "RUNNING_TASKS_topActivity_mPackage"], infer_schema=False
    )
    for user, ts, pkg in raw.iter_rows():
        snaps[user][int(ts)].add(pkg)
    expected = set()
    for user, by_time in snaps.items():
        times = sorted(by_time)
        for prev, cur in itertools.pairwise(times):
            expected |= {(user, pkg, cur) for pkg in by_time[cur] - by_time[prev]}
    got = data.events.rows()
    assert len(got) == len(set(got)) and set(got) == expected
    assert data.events["user"].n_unique() == 3

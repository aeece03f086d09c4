"""prepare on synthetic logs: layout, counts per protocol, order, vocab, bins, groups, cache, atomicity."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chronorec.data import store
from chronorec.data.clean import _first_distinct
from chronorec.data.dataset import PreparedDataset
from chronorec.data.prepare import PrepareOptions, prepare
from chronorec.data.schema import FIRST_ID, SPLITS, DatasetSchema
from chronorec.data.sources import SourceData
from chronorec.data.synthetic import synthetic_source
from chronorec.data.timefeatures import bucketize, equal_frequency_edges
from chronorec.errors import ChronorecError


def _src(events: pl.DataFrame, side: list[str] | None = None, **kw) -> SourceData:
    return SourceData(name="t", events=events, side=side or [], files=[], **kw)


def _quiet_prepare(source, out: Path, **opts) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare(source, out, PrepareOptions(**opts))


def test_layout_and_counts_ctr_leave_one_out(tiny_ctr_dataset: Path, synthetic_data: SourceData) -> None:
    ds = PreparedDataset.open(tiny_ctr_dataset)
    s = ds.schema
    n_u = synthetic_data.events.group_by("user").len()["len"].to_numpy()
    assert s.n_users == n_u.size and s.n_events == n_u.sum()
    assert s.n_items == synthetic_data.events["item"].n_unique()
    assert s.counts["train"] == 2 * int((n_u - 3).sum())
    assert s.counts["valid"] == s.counts["test"] == 2 * n_u.size
    for split in SPLITS:
        smp = ds.samples(split)
        assert smp["label"].sum() * 2 == smp["label"].size  # one negative per positive
    for f in ("schema.json", "manifest.json", "events.parquet", "users.parquet", "items.parquet", "summary.json",
              "samples/train.parquet", "vocab/user.parquet", "vocab/item.parquet", "vocab/category.parquet"):
        assert (tiny_ctr_dataset / f).is_file(), f
    assert s.vocab_sizes["item"] == s.n_items + 2 and s.side_features == ["category"]


def test_layout_and_counts_next_item(tiny_nextitem_dataset: Path, synthetic_data: SourceData) -> None:
    ds = PreparedDataset.open(tiny_nextitem_dataset)
    n_u = synthetic_data.events.group_by("user").len()["len"].to_numpy()
    tr, va, te = (ds.samples(s) for s in SPLITS)
    assert tr["user"].size == va["user"].size == te["user"].size == n_u.size
    assert np.array_equal(tr["hist_end"], va["hist_end"]) and np.array_equal(te["hist_end"], va["hist_end"] + 1)
    assert (tr["item"] == 0).all() and (va["item"] >= FIRST_ID).all()
    # valid target = the event right after the train sequence, test target = the user's last event
    assert np.array_equal(va["item"], ds.events.item[va["hist_end"]])
    assert np.array_equal(te["item"], ds.events.item[te["hist_end"]])
    offs, lens = ds.users["offset"], ds.users["length"]
    assert np.array_equal(te["hist_end"], offs + lens - 1)
    assert np.array_equal(ds.users["n_train"], lens - 2)


def test_unsorted_input_is_sorted_stably(tmp_path: Path) -> None:
    # user a: events given out of order, two events tie at ts=20 (source order must be kept)
    ev = pl.DataFrame({
        "user": ["a", "b", "a", "a", "b", "a", "b"],
        "item": ["x3", "y1", "x1", "tie1", "y2", "tie2", "y3"],
        "ts": [30, 5, 10, 20, 6, 20, 7],
    })
    _quiet_prepare(_src(ev), tmp_path / "p", protocol="next-item-last-out")
    ds = PreparedDataset.open(tmp_path / "p")
    raw = ds.vocab("item")["raw"].to_list()  # idx k -> raw[k - 2] (sorted vocab)
    rows = ds.user_events(FIRST_ID)  # user "a" sorts first
    assert [raw[i - FIRST_ID] for i in ds.events.item[rows]] == ["x1", "tie1", "tie2", "x3"]
    assert ds.events.ts[rows].tolist() == [10, 20, 20, 30]
    assert ds.events.gap[rows].tolist() == [-1, 10, 0, 10]


def test_vocab_sorted_and_deterministic(tmp_path: Path, synthetic_data: SourceData) -> None:
    shuffled = synthetic_data.events.sample(fraction=1.0, shuffle=True, seed=3)
    _quiet_prepare(_src(shuffled, ["category"]), tmp_path / "a", protocol="next-item-last-out")
    ds = PreparedDataset.open(tmp_path / "a")
    for field in ("user", "item", "category"):
        v = ds.vocab(field)
        assert v["raw"].to_list() == sorted(v["raw"].to_list())
        assert v["idx"].to_list() == list(range(FIRST_ID, FIRST_ID + v.height))
    ref = PreparedDataset.open(Path(tmp_path / "a"))
    assert ref.vocab("item").equals(ds.vocab("item"))


def test_item_side_is_the_items_own(tiny_ctr_dataset: Path) -> None:
    ds = PreparedDataset.open(tiny_ctr_dataset)
    table = ds.item_side["category"]
    assert np.array_equal(ds.events.side["category"][: ds.events.n], table[ds.events.item[: ds.events.n]])
    smp = ds.samples("train")
    assert np.array_equal(smp["category"], table[smp["item"]])  # negatives too


def test_bin_edges_and_bucketize(tiny_ctr_dataset: Path) -> None:
    s = DatasetSchema.load(tiny_ctr_dataset / "schema.json")
    for name in ("interval", "gap"):
        e = s.bin_edges[name]
        assert 1 <= len(e) <= 9 and e == sorted(set(e))
    e = [0.0, 10.0, 100.0]
    assert bucketize(np.array([-1, 0, 5, 10, 11, 100, 1e9]), e).tolist() == [1, 1, 2, 2, 3, 3, 4]
    # 60 zeros then 1..40: deciles 1-6 are 0 (deduplicated), the 70/80/90% values are 10, 20, 30
    assert equal_frequency_edges(np.r_[np.zeros(60), np.arange(1, 41)], 10) == [0.0, 10.0, 20.0, 30.0]


def test_groups_head_share(tiny_ctr_dataset: Path) -> None:
    ds = PreparedDataset.open(tiny_ctr_dataset)
    g = ds.schema.groups
    n_train, group = ds.users["n_train"], ds.users["group"]
    thr = g.thresholds[0]
    assert np.array_equal(group == 0, n_train >= thr)
    k = int(np.ceil(0.2 * n_train.size))
    assert np.sort(n_train)[::-1][k - 1] == thr  # ties at the threshold go to head
    assert g.user_share == pytest.approx([(group == 0).mean(), (group == 1).mean()])
    assert ds.group_of_user[0] == ds.group_of_user[1] == 1  # PAD / UNK -> tail


def test_explicit_group_thresholds(tmp_path: Path, synthetic_data: SourceData) -> None:
    res = _quiet_prepare(synthetic_data, tmp_path / "g", protocol="next-item-last-out",
                         group_thresholds=[30, 10], group_names=["head", "torso", "tail"])
    ds = PreparedDataset.open(tmp_path / "g")
    n, grp = ds.users["n_train"], ds.users["group"]
    assert np.array_equal(grp, np.where(n >= 30, 0, np.where(n >= 10, 1, 2)))
    assert res.schema.groups.names == ["head", "torso", "tail"]


def test_ctr_time_split(tmp_path: Path, synthetic_data: SourceData) -> None:
    imps = synthetic_data.impressions
    q = np.quantile(imps["ts"].to_numpy(), [0.7, 0.85]).astype(int)
    import datetime as dt

    d1, d2 = (dt.datetime.fromtimestamp(int(x), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") for x in q)
    res = _quiet_prepare(synthetic_data, tmp_path / "t", protocol="ctr-time-split", split_dates=(d1, d2), history_n=20)
    ds = PreparedDataset.open(tmp_path / "t")
    total = sum(ds.n_samples(s) for s in SPLITS)
    assert total == imps.height
    tr, va, te = (ds.samples(s) for s in SPLITS)
    assert tr["ts"].max() < q[0] <= va["ts"].min() and va["ts"].max() < q[1] <= te["ts"].min()
    assert (tr["hist_end"] - tr["hist_start"]).max() <= 20
    assert res.schema.counts["train_positives"] == int(tr["label"].sum())
    # history = the last 20 behaviors strictly before the impression: the next event is not before it
    ev_ts, ends = ds.events.ts, te["hist_end"]
    offs = ds.users["offset"][te["user"] - FIRST_ID] + ds.users["length"][te["user"] - FIRST_ID]
    inside = ends < offs
    assert (ev_ts[ends[inside]] >= te["ts"][inside]).all()


def test_max_history_cap(tmp_path: Path, synthetic_data: SourceData) -> None:
    _quiet_prepare(synthetic_data, tmp_path / "c", protocol="ctr-leave-one-out", max_history=5)
    ds = PreparedDataset.open(tmp_path / "c")
    for split in SPLITS:
        s = ds.samples(split)
        assert (s["hist_end"] - s["hist_start"]).max() == 5
    assert ds.schema.max_history == 5 and ds.schema.max_history_len == 5


def test_cache_noop_and_rebuild(tmp_path: Path, synthetic_data: SourceData) -> None:
    out = tmp_path / "cache"
    first = _quiet_prepare(synthetic_data, out, protocol="next-item-last-out")
    assert first.rebuilt
    mtime = (out / "manifest.json").stat().st_mtime_ns
    again = _quiet_prepare(synthetic_data, out, protocol="next-item-last-out")
    assert not again.rebuilt and "nothing to do" in again.message and again.key == first.key
    assert (out / "manifest.json").stat().st_mtime_ns == mtime
    other = _quiet_prepare(synthetic_data, out, protocol="next-item-last-out", n_bins=5)
    assert other.rebuilt and other.key != first.key
    assert json.loads((out / "manifest.json").read_text())["options"]["n_bins"] == 5
    changed = synthetic_data.events.with_columns(pl.col("ts") + 1)
    assert _quiet_prepare(_src(changed, ["category"]), out, protocol="next-item-last-out", n_bins=5).rebuilt


def test_atomic_write_keeps_old_dataset(tmp_path: Path, synthetic_data: SourceData, monkeypatch) -> None:
    out = tmp_path / "atomic"
    _quiet_prepare(synthetic_data, out, protocol="next-item-last-out")
    before = {p.name: p.stat().st_size for p in out.rglob("*")}
    key = store.read_manifest(out)["key"]

    def boom(*a, **k):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr("chronorec.data.prepare.save_vocab", boom)
    with pytest.raises(RuntimeError, match="injected"):
        _quiet_prepare(synthetic_data, out, protocol="next-item-last-out", n_bins=4)
    assert store.read_manifest(out)["key"] == key
    assert {p.name: p.stat().st_size for p in out.rglob("*")} == before
    assert [p.name for p in tmp_path.iterdir()] == ["atomic"]  # no temp folder left behind
    PreparedDataset.open(out)


def test_interrupted_subprocess_leaves_nothing_trusted(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "killed"
    code = (
        "import os, sys, warnings; warnings.simplefilter('ignore')\n"
        "from pathlib import Path\n"
        "import chronorec.data.prepare as P\n"
        "from chronorec.data.synthetic import synthetic_source\n"
        "P.save_vocab = lambda *a, **k: os._exit(9)\n"  # die mid-write, no cleanup
        f"P.prepare(synthetic_source(n_users=30, seed=1), Path({str(out)!r}), P.PrepareOptions(protocol='ctr-leave-one-out'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert not out.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".killed.tmp-")
    with pytest.raises(ChronorecError, match="manifest"):
        PreparedDataset.open(leftovers[0])
    _quiet_prepare(synthetic_source(n_users=30, seed=1), out, protocol="ctr-leave-one-out")
    assert [p.name for p in tmp_path.iterdir()] == ["killed"]  # the stale temp folder was cleaned


def test_reader_refuses_folder_without_manifest(tmp_path: Path, tiny_ctr_dataset: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_ctr_dataset, copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ChronorecError, match="no valid manifest"):
        PreparedDataset.open(copy)
    shutil.copytree(tiny_ctr_dataset, tmp_path / "trunc")
    with open(tmp_path / "trunc" / "events.parquet", "ab") as f:
        f.write(b"x")
    with pytest.raises(ChronorecError, match="incomplete or modified"):
        PreparedDataset.open(tmp_path / "trunc")


def test_summary_reported(tiny_ctr_dataset: Path) -> None:
    from chronorec.data.summary import format_summary

    s = store.load_json(tiny_ctr_dataset / "summary.json")
    text = format_summary(s)
    for word in ("users", "train", "valid", "test", "gaps", "groups", "time span"):
        assert word in text
    assert s["splits"]["valid"]["positives"] * 2 == s["splits"]["valid"]["samples"]


def test_synthetic_is_seeded() -> None:
    a, b = synthetic_source(n_users=20, seed=5), synthetic_source(n_users=20, seed=5)
    assert a.events.equals(b.events) and a.impressions.equals(b.impressions)
    assert not a.events.equals(synthetic_source(n_users=20, seed=6).events)
    day = synthetic_source(n_users=20, seed=5, day_granular=True)
    assert (day.events["ts"] % 86_400 == 0).all() and day.time_granularity == "day"


def test_planted_pattern_is_visible(tiny_ctr_dataset: Path, synthetic_data: SourceData) -> None:
    """Positives share the category of recent behaviors far more often than negatives, decaying with position."""
    ds = PreparedDataset.open(tiny_ctr_dataset)
    s, cat = ds.samples("train"), ds.events.side["category"]
    lift = []
    for p in range(1, 6):
        ok = s["hist_end"] - s["hist_start"] >= p
        same = cat[s["hist_end"][ok] - p] == s["category"][ok]
        pos = s["label"][ok] > 0
        lift.append(same[pos].mean() - same[~pos].mean())
    assert lift[0] > 0.15 and lift[0] > lift[2] > lift[4]
    # impressions: a click is likelier when the most recent behavior has the impression's category
    ev = synthetic_data.events.sort("user", "ts")
    imp = synthetic_data.impressions.sort("user", "ts").join_asof(
        ev.select("user", "ts", pl.col("category").alias("last_cat")), on="ts", by="user", strategy="backward",
        check_sortedness=False,
    )
    match = imp.filter(pl.col("last_cat") == pl.col("category"))["label"].mean()
    other = imp.filter(pl.col("last_cat") != pl.col("category"))["label"].mean()
    assert match > other + 0.1


def test_equal_frequency_edges_match_numpy_inverted_cdf() -> None:
    """The partition-based edges equal ``np.quantile(..., method="inverted_cdf")`` (deduplicated),
    in place or on a copy, including ties, tiny arrays and more bins than values."""
    rng = np.random.default_rng(7)
    for _ in range(500):
        n, bins = int(rng.integers(1, 200)), int(rng.integers(2, 15))
        values = rng.integers(0, int(rng.integers(1, 40)), n)
        expected = [float(e) for e in np.unique(np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf"))]
        kept = values.copy()
        assert equal_frequency_edges(values, bins) == expected
        np.testing.assert_array_equal(values, kept)  # overwrite=False leaves the input alone
        assert equal_frequency_edges(values, bins, overwrite=True) == expected


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", None]), st.integers(0, 3)),
        min_size=1,
        max_size=60,
    )
)
@settings(max_examples=150, deadline=None)
def test_first_distinct_matches_whole_row_comparison(rows: list[tuple[str, str | None, int]]) -> None:
    """The hash-then-verify dedupe keeps exactly the rows a whole-row comparison keeps."""
    df = pl.DataFrame(rows, schema={"user": pl.Utf8, "item": pl.Utf8, "ts": pl.Int64}, orient="row")
    expected = df.select(pl.struct(df.columns).is_first_distinct()).to_series()
    got = _first_distinct(df, df.columns)
    if expected.all():
        assert got is None
    else:
        assert got is not None and got.to_list() == expected.to_list()


def test_prepare_leaves_the_source_alone_unless_asked_to_consume_it(tmp_path: Path) -> None:
    src = synthetic_source(seed=1)
    opts = PrepareOptions(protocol="next-item-last-out")
    prepare(src, tmp_path / "a", opts)
    assert src.events is not None and src.events.height > 0
    kept = prepare(src, tmp_path / "b", opts, force=True, consume=True)
    assert src.events is None and kept.rebuilt
    for name in ("events.parquet", "samples/train.parquet", "vocab/item.parquet"):
        assert pl.read_parquet(tmp_path / "a" / name).equals(pl.read_parquet(tmp_path / "b" / name))

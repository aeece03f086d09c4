"""The Alibaba display-ad dataset in the DSIN layout: ``taobao``.

Files (one folder; ``user_profile.csv`` holds user features only and is not read):

- ``behavior_log.csv``: ``user,time_stamp,btag,cate,brand`` - 22 days of behaviors (pv, cart,
  fav, buy) with no ad or item id;
- ``raw_sample.csv``: ``user,time_stamp,adgroup_id,pid,nonclk,clk`` - the labelled impressions;
- ``ad_feature.csv``: ``adgroup_id,cate_id,campaign_id,customer,brand,price``.

TIN uses category and brand as the two semantic parts of a behavior, so (``side = ["category"]``):

- events = behavior_log with item = ``brand``, category = ``cate``, extra column ``btag`` (a
  behavior attribute, not an item feature, so not in ``side``);
- impressions = raw_sample joined with ad_feature on ``adgroup_id``: item = the ad's ``brand``,
  category = ``cate_id``, label = ``clk`` (Int8 0/1), extra column ``adgroup`` (= ``adgroup_id``).

A missing brand (``NULL`` in ad_feature, empty / ``NaN`` in behavior_log) becomes the item token
``"NULL"``: all brand-less behaviors and ads share that one item id, as in DSIN's preprocessing.
Impressions whose adgroup is absent from ad_feature are dropped with a warning; an adgroup listed
twice with different category or brand is an error. ``time_stamp`` is unix seconds.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from chronorec.data.sources._finish import Raw, build, clean_text, unique_attrs
from chronorec.data.sources._io import check_dir_or_file, check_file
from chronorec.data.sources.base import Request, SourceData, register
from chronorec.data.sources.generic import read_table
from chronorec.errors import ChronorecError, warn

NULL_BRAND = "NULL"
_MISSING = ["NULL", "null", "NaN", "nan", "NA"]
BEHAVIOR = {
    "user": ("user",),
    "time": ("time_stamp",),
    "item": ("brand",),
    "category": ("cate",),
    "btag": ("btag",),
}
SAMPLE = {"user": ("user",), "time": ("time_stamp",), "adgroup": ("adgroup_id",), "label": ("clk",)}
ADS = {"adgroup": ("adgroup_id",), "category": ("cate_id",), "brand": ("brand",)}


def _brand(col: str) -> pl.Expr:
    return clean_text(pl.col(col), _MISSING).fill_null(NULL_BRAND)


def _folder(path: Path) -> Path:
    path = check_dir_or_file(path)
    folder = path if path.is_dir() else path.parent
    for name in ("behavior_log.csv", "raw_sample.csv", "ad_feature.csv"):
        if not (folder / name).exists():
            raise ChronorecError(f"no {name} in this folder (DSIN Taobao layout)", file=folder)
    return folder


def _impressions(folder: Path, sep: str | None) -> Raw:
    ads_file = check_file(folder / "ad_feature.csv")
    ads = read_table(ads_file, sep=sep, required=("adgroup", "category", "brand"), optional=(), defaults=ADS)
    table = ads.frame.select(
        clean_text(pl.col("adgroup")).alias("item"),
        clean_text(pl.col("category")),
        _brand("brand").alias("brand"),
        "_row",
    )
    ad_attrs = unique_attrs(table, ads_file, ads.columns).rename({"item": "adgroup"})
    sample = read_table(
        folder / "raw_sample.csv",
        sep=sep,
        required=("user", "time", "adgroup", "label"),
        optional=(),
        defaults=SAMPLE,
    )
    df = sample.frame.with_columns(clean_text(pl.col("adgroup")))
    joined = df.join(ad_attrs, on="adgroup", how="left", maintain_order="left")
    unknown = joined["brand"].is_null() & joined["adgroup"].is_not_null()
    if unknown.any():
        warn(
            f"{sample.files[0]}: dropped {int(unknown.sum())} impressions whose adgroup_id is not in {ads_file.name}"
        )
        joined = joined.filter(~unknown)
    joined = joined.rename({"brand": "item"})
    return Raw(
        joined,
        [*sample.files, ads_file],
        {**sample.columns, "item": "adgroup_id->brand", "category": "cate_id"},
    )


@register(
    "taobao",
    "Alibaba display ads (DSIN layout): behavior_log as events (item = brand), raw_sample+ad_feature as impressions",
    takes_mapping=False,
)
def load_taobao(req: Request) -> SourceData:
    folder = _folder(req.path)
    events = read_table(
        folder / "behavior_log.csv",
        sep=req.sep,
        required=("user", "time", "item", "category"),
        optional=("btag",),
        defaults=BEHAVIOR,
    )
    events = Raw(events.frame.with_columns(_brand("item").alias("item")), events.files, events.columns)
    imps = _impressions(folder, req.sep)
    return build(
        req.name, events, ["category"], time_unit=req.time_unit, options=req.options, impressions=imps
    )

"""The contracts between data stages: the canonical events table and a prepared dataset's schema.

Canonical events table (what every source loader returns, a :class:`polars.DataFrame`):

=============  =========  ====================================================================
column         dtype      meaning
=============  =========  ====================================================================
``user``       Utf8       raw user id as in the source
``item``       Utf8       raw item id as in the source
``ts``         Int64      event time, integer seconds since the Unix epoch (UTC)
``category``   Utf8       optional item category (the deepest one for hierarchical sources)
``brand``      Utf8       optional item brand
``rating``     Float64    optional explicit rating
``session``    Utf8       optional session id
any other      Utf8       optional extra categorical side feature, listed in ``SourceData.side``
=============  =========  ====================================================================

Row order is the source order; ``prepare`` sorts stably by (user, ts), so ties keep it.

Prepared dataset (a folder written by ``chronorec prepare``)::

    DIR/
      schema.json          DatasetSchema below
      manifest.json        cache key (inputs' fingerprint + options + version), created_at
      events.parquet       every event, encoded, sorted by (user, ts, source order); row = global position
                           columns: user, item, <side features...> (Int32 ids), ts (Int64 s),
                           gap (Int64 s to the user's previous event, -1 for the first),
                           hour (0-23), wday (0=Mon), month (1-12) (Int8)
      users.parquet        user (Int32), offset (Int64: first row in events), length (Int32),
                           n_train (Int32: training behaviors), group (Int8: 0 = head, ..., last = tail)
      samples/{train,valid,test}.parquet
                           one row per sample: user (Int32), hist_start, hist_end (Int64, global
                           event rows [start, end) = the history, chronological), item, <side...> (Int32),
                           ts (Int64), label (Float32; 1.0 for next-item targets)
                           next-item train rows: [hist_start, hist_end) is the training sequence and
                           every position t >= 1 predicts event t from events < t (item = 0).
      vocab/<field>.parquet  raw (Utf8) -> idx (Int32) for user, item and every side feature
      items.parquet        item (Int32, every id of the item vocabulary) and <side...> (Int32): each
                           item's own side-feature ids (PAD row 0, UNK row 1), for negatives and serving
      summary.json         the summary printed by prepare (counts, time span, gaps, history lengths)

Id conventions: 0 = padding, 1 = unknown (unseen at serving time), real ids start at 2, so a
vocabulary of n raw values has size n + 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from chronorec.errors import ChronorecError, first_validation_error

PAD = 0
UNK = 1
FIRST_ID = 2

EVENT_COLUMNS = ("user", "item", "ts")
OPTIONAL_COLUMNS = ("category", "brand", "rating", "session")

Protocol = Literal["ctr-leave-one-out", "ctr-time-split", "next-item-last-out"]
Task = Literal["ctr", "next_item"]
SPLITS = ("train", "valid", "test")
SCHEMA_VERSION = 1


class GroupSpec(BaseModel):
    """Activity groups by number of training behaviors (PIN). Group 0 is the most active."""

    names: list[str] = Field(default_factory=lambda: ["head", "tail"])
    # users with n_train >= thresholds[k] fall in group k (first match); the last group takes the rest
    thresholds: list[int] = Field(default_factory=list)
    head_share: float = 0.2
    user_share: list[float] = Field(default_factory=list)  # P(z): share of users in each group

    def group_of(self, n_train: int) -> int:
        for k, thr in enumerate(self.thresholds):
            if n_train >= thr:
                return k
        return len(self.names) - 1


class DatasetSchema(BaseModel):
    """Everything a model, a trainer or a server needs to know about a prepared dataset."""

    version: int = SCHEMA_VERSION
    name: str
    protocol: Protocol
    task: Task
    n_users: int
    n_items: int
    n_events: int
    vocab_sizes: dict[str, int]  # field -> size incl. PAD and UNK (user, item, side features)
    side_features: list[str] = Field(default_factory=list)  # categorical item features beside item
    # equal-frequency bin edges fitted on training data only (seconds), duplicate edges dropped:
    #   "interval": target ts - behavior ts (TTE-T);  "gap": behavior ts - previous behavior ts
    bin_edges: dict[str, list[float]] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)  # samples per split, positives, ...
    time_span: tuple[int, int] = (0, 0)
    max_history: int | None = None  # history cap applied at prepare time (None = full history)
    max_history_len: int = 0  # longest stored history over all samples
    groups: GroupSpec = Field(default_factory=GroupSpec)
    padding_side: Literal["right"] = "right"
    options: dict = Field(default_factory=dict)  # the resolved prepare options

    @property
    def item_vocab(self) -> int:
        return self.vocab_sizes["item"]

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: Path) -> DatasetSchema:
        """Read a prepared folder's ``schema.json``; a missing, truncated or foreign file is a one-line
        :class:`ChronorecError` naming it (never a JSON or pydantic traceback)."""
        path = Path(path)
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ChronorecError("schema.json not found (run `chronorec prepare`)", file=path) from None
        except ValidationError as err:
            loc, msg, _ = first_validation_error(err)
            reason = f"{loc or 'top level'}: {msg}"
        except (OSError, ValueError) as err:  # unreadable, not UTF-8, not JSON (truncated)
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ChronorecError(
            f"corrupt or foreign schema ({reason}); re-run `chronorec prepare --force`", file=path
        )

"""BatchLoader: gathers equal a per-sample reference, order is deterministic, shards, resume, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from chronorec.data.dataset import PreparedDataset
from chronorec.data.loader import BatchLoader, batch_from_histories, sequence_windows
from chronorec.data.timefeatures import calendar_fields
from chronorec.errors import ChronorecError


@pytest.fixture(scope="module")
def ctr(tiny_ctr_dataset: Path) -> PreparedDataset:
    return PreparedDataset.open(tiny_ctr_dataset)


@pytest.fixture(scope="module")
def nxt(tiny_nextitem_dataset: Path) -> PreparedDataset:
    return PreparedDataset.open(tiny_nextitem_dataset)


def _reference_row(ds: PreparedDataset, start: int, end: int, max_len: int) -> dict[str, list]:
    """The obvious per-sample Python version of one history."""
    n = min(end - start, max_len)
    rows = list(range(end - n, end))
    ev = ds.events
    h, w, m = calendar_fields(ev.ts[rows]) if rows else ([], [], [])
    return {
        "item": [int(ev.item[r]) for r in rows],
        "ts": [int(ev.ts[r]) for r in rows],
        "gap": [int(ev.gap[r]) for r in rows],
        "cal": [[int(a) + 1, int(b) + 1, int(c)] for a, b, c in zip(h, w, m, strict=True)],
    }


def test_batches_equal_reference(ctr: PreparedDataset) -> None:
    loader = BatchLoader(ctr, "train", batch_size=37, max_len=7, shuffle=True, seed=3)
    smp = ctr.samples("train")
    for batch in list(loader.iter_epoch(0))[:5]:
        assert batch.max_len == int(batch.lengths.max())  # the batch's own longest row, not the cap
        for b, k in enumerate(batch.index.tolist()):
            ref = _reference_row(ctr, int(smp["hist_start"][k]), int(smp["hist_end"][k]), 7)
            n = len(ref["item"])
            assert batch.lengths[b] == n and batch.mask[b].tolist() == [True] * n + [False] * (batch.max_len - n)
            assert batch.hist_item[b, :n].tolist() == ref["item"] and (batch.hist_item[b, n:] == 0).all()
            assert batch.hist_ts[b, :n].tolist() == ref["ts"] and (batch.hist_ts[b, n:] == 0).all()
            assert batch.hist_gap[b, :n].tolist() == ref["gap"] and (batch.hist_gap[b, n:] == -1).all()
            assert batch.hist_calendar[b, :n].tolist() == ref["cal"] and (batch.hist_calendar[b, n:] == 0).all()
            cat = ctr.item_side["category"]
            assert batch.hist_side["category"][b, :n].tolist() == [int(cat[i]) for i in ref["item"]]
            assert batch.target_item[b] == smp["item"][k] and batch.target_ts[b] == smp["ts"][k]
            assert batch.target_side["category"][b] == smp["category"][k] and batch.label[b] == smp["label"][k]
            assert batch.user[b] == smp["user"][k] and batch.group[b] == ctr.group_of_user[smp["user"][k]]
    assert batch.hist_item.dtype == batch.hist_ts.dtype == batch.hist_calendar.dtype == torch.int64


def test_full_history_by_default(ctr: PreparedDataset) -> None:
    loader = BatchLoader(ctr, "test", batch_size=10_000)
    (batch,) = list(loader)
    smp = ctr.samples("test")
    assert batch.lengths.tolist() == (smp["hist_end"] - smp["hist_start"]).tolist()


def test_shuffle_is_deterministic(ctr: PreparedDataset) -> None:
    a = BatchLoader(ctr, "train", batch_size=50, shuffle=True, seed=1)
    b = BatchLoader(ctr, "train", batch_size=50, shuffle=True, seed=1)
    order = lambda ld, e: np.concatenate(ld.batch_rows(e))  # noqa: E731
    assert np.array_equal(order(a, 0), order(b, 0))
    assert not np.array_equal(order(a, 0), order(a, 1))
    assert not np.array_equal(order(a, 0), order(BatchLoader(ctr, "train", batch_size=50, shuffle=True, seed=2), 0))
    assert np.array_equal(np.sort(order(a, 3)), np.arange(a.n_rows))
    plain = BatchLoader(ctr, "train", batch_size=50)
    assert np.array_equal(order(plain, 0), np.arange(plain.n_rows))
    assert len(plain) == -(-plain.n_rows // 50) == len(plain.batch_rows(0))


@pytest.mark.parametrize("world", [2, 3])
def test_ddp_shards(ctr: PreparedDataset, world: int) -> None:
    n = BatchLoader(ctr, "train").n_rows
    for drop_last in (False, True):
        bs = 1 if drop_last else 64  # drop_last also drops a partial last batch: batch 1 isolates sharding
        shards = [
            np.concatenate(BatchLoader(ctr, "train", batch_size=bs, shuffle=True, seed=9, rank=r, world_size=world,
                                       drop_last=drop_last).batch_rows(4))
            for r in range(world)
        ]
        sizes = {s.size for s in shards}
        assert len(sizes) == 1  # equal-size shares
        allrows = np.concatenate(shards)
        if drop_last:
            assert np.unique(allrows).size == allrows.size == n // world * world  # disjoint
        else:
            assert np.array_equal(np.unique(allrows), np.arange(n))  # covering
            assert allrows.size - n == (-n) % world  # only the wrap-around padding repeats
    lens = {len(BatchLoader(ctr, "train", batch_size=64, rank=r, world_size=world)) for r in range(world)}
    assert len(lens) == 1  # every rank steps the same number of times


def test_resume_from_batch(ctr: PreparedDataset) -> None:
    ld = BatchLoader(ctr, "train", batch_size=40, shuffle=True, seed=5, bucket=True, bucket_chunk=3)
    full = list(ld.iter_epoch(2))
    rest = list(ld.iter_epoch(2, start_batch=4))
    assert len(rest) == len(full) - 4
    for a, b in zip(full[4:], rest, strict=True):
        assert torch.equal(a.index, b.index) and torch.equal(a.hist_item, b.hist_item)


def test_length_bucketing(ctr: PreparedDataset) -> None:
    plain = BatchLoader(ctr, "train", batch_size=32, shuffle=True, seed=0)
    buck = BatchLoader(ctr, "train", batch_size=32, shuffle=True, seed=0, bucket=True, bucket_chunk=4)
    rows = buck.batch_rows(0)
    assert np.array_equal(np.sort(np.concatenate(rows)), np.arange(buck.n_rows))
    pad = lambda ld, rs: sum(int(ld.lengths[r].max()) * r.size - int(ld.lengths[r].sum()) for r in rs)  # noqa: E731
    assert pad(buck, rows) < pad(plain, plain.batch_rows(0)) / 2  # far less padding
    assert all(np.array_equal(a, b) for a, b in zip(rows, buck.batch_rows(0), strict=True))


def test_unshuffled_bucketing_sorts_the_whole_split(ctr: PreparedDataset) -> None:
    """Evaluation loaders (shuffle=False, bucket=True): batches in length order over the whole
    split, every row exactly once, and ``index`` names the rows whatever their order."""
    ld = BatchLoader(ctr, "valid", batch_size=8, shuffle=False, bucket=True, bucket_chunk=1)
    rows = ld.batch_rows(0)
    assert np.array_equal(np.sort(np.concatenate(rows)), np.arange(ld.n_rows))
    lens = np.concatenate([ld.lengths[r] for r in rows])
    assert (np.diff(lens) >= 0).all()  # globally sorted, not only within chunks of bucket_chunk batches
    smp = ctr.samples("valid")
    for batch in ld:
        assert torch.equal(batch.target_item, torch.from_numpy(smp["item"][batch.index.numpy()]))
        assert batch.max_len == max(int(batch.lengths.max()), 1)


def test_next_item_sequence_batches(nxt: PreparedDataset) -> None:
    smp = nxt.samples("train")
    ld = BatchLoader(nxt, "train", batch_size=1000)
    assert ld.sequence
    (batch,) = list(ld)
    assert batch.per_position_targets and batch.target_item.shape == batch.hist_item.shape
    for b, k in enumerate(batch.index.tolist()[:40]):
        s, e = int(smp["hist_start"][k]), int(smp["hist_end"][k])
        n = e - s - 1
        assert batch.lengths[b] == n
        assert batch.hist_item[b, :n].tolist() == nxt.events.item[s : e - 1].tolist()
        assert batch.target_item[b, :n].tolist() == nxt.events.item[s + 1 : e].tolist()
        assert batch.target_ts[b, :n].tolist() == nxt.events.ts[s + 1 : e].tolist()
        assert (batch.target_item[b, n:] == 0).all()


@pytest.mark.parametrize("stride", [None, 3])
def test_next_item_windows_train_every_target_once(nxt: PreparedDataset, stride: int | None) -> None:
    ld = BatchLoader(nxt, "train", batch_size=64, max_len=5, window_stride=stride, shuffle=True, seed=1)
    smp = nxt.samples("train")
    seen = []
    for batch in ld:
        assert batch.max_len <= 5
        for b, k in enumerate(batch.index.tolist()):
            n = int(batch.lengths[b])
            tgt = batch.target_ts[b, :n]
            ok = batch.target_item[b, :n] > 0
            seen += [(k, int(t)) for t in tgt[ok].tolist()]
            if stride is not None:
                assert ok.sum() <= stride
    expected = [(k, int(t)) for k in range(smp["user"].size)
                for t in nxt.events.ts[smp["hist_start"][k] + 1 : smp["hist_end"][k]]]
    assert sorted(seen) == sorted(expected)


def test_sequence_windows_by_hand() -> None:
    seq, a, b, c = sequence_windows(np.array([0, 10]), np.array([8, 12]), max_len=3)
    # row 0: targets 1..7 -> windows [4,7) [1,4) [0,1); row 1: targets 11 -> [10,11)
    assert seq.tolist() == [0, 0, 0, 1] and a.tolist() == [4, 1, 0, 10] and b.tolist() == [7, 4, 1, 11]
    assert (c == a + 1).all()
    seq, a, b, c = sequence_windows(np.array([0]), np.array([8]), max_len=3, stride=2)
    assert a.tolist() == [4, 2, 0, 0] and b.tolist() == [7, 5, 3, 1] and c.tolist() == [6, 4, 2, 1]


def test_max_windows_grows_a_long_sequences_stride_only() -> None:
    """``max_windows=2`` with stride 1: a 3-target sequence gets two windows (its own stride ceil(3/2) = 2),
    a 2-target one keeps stride 1, an 11-target one's stride stops at max_len; every target trained once."""
    starts, ends = np.array([0, 10, 20]), np.array([4, 13, 32])  # 3, 2 and 11 targets
    seq, a, b, c = sequence_windows(starts, ends, max_len=4, stride=1, max_windows=2)
    assert np.bincount(seq).tolist() == [2, 2, 3]  # 11 targets: stride ceil(11/2)=6 > max_len 4 -> capped, 3 windows
    assert b[seq == 0].tolist() == [3, 1] and c[seq == 0].tolist() == [2, 1]  # own stride 2
    assert b[seq == 1].tolist() == [12, 11] and c[seq == 1].tolist() == [12, 11]  # own stride 1
    assert b[seq == 2].tolist() == [31, 27, 23] and c[seq == 2].tolist() == [28, 24, 21]  # own stride 4 = max_len
    for r, (s, e) in enumerate(zip(starts, ends, strict=True)):
        trained = np.concatenate([np.arange(ci, bi + 1) for ci, bi in zip(c[seq == r], b[seq == r], strict=True)])
        assert sorted(trained.tolist()) == list(range(s + 1, e))  # each target once
    assert (b - a <= 4).all()
    with pytest.raises(ChronorecError, match="max_windows"):
        sequence_windows(starts, ends, max_len=4, stride=1, max_windows=0)


def test_batch_from_histories_matches_loader(ctr: PreparedDataset) -> None:
    smp = ctr.samples("valid")
    ld = BatchLoader(ctr, "valid", batch_size=25, max_len=6)
    batch = next(iter(ld))
    k = batch.index.numpy()
    users = smp["user"][k]
    hist_items, hist_ts = [], []
    for u, end in zip(users, smp["hist_end"][k], strict=True):
        rows = ctr.user_events(int(u))
        hist_items.append(ctr.events.item[rows.start : end].tolist())  # the whole history, capped inside
        hist_ts.append(ctr.events.ts[rows.start : end].tolist())
    served = batch_from_histories(
        hist_items, hist_ts, smp["item"][k], smp["ts"][k], item_side=ctr.item_side, max_len=6,
        user=users, group=ctr.group_of_user[users], label=smp["label"][k],
    )
    for name in ("hist_item", "hist_ts", "hist_gap", "hist_calendar", "mask", "lengths", "target_item",
                 "target_ts", "label", "user", "group"):
        assert torch.equal(getattr(batch, name), getattr(served, name)), name
    assert torch.equal(batch.hist_side["category"], served.hist_side["category"])
    assert torch.equal(batch.target_side["category"], served.target_side["category"])


def test_batch_from_histories_edge_cases(ctr: PreparedDataset) -> None:
    b = batch_from_histories([[], [5, 999_999]], [[], [100, 200]], [1, 2], [300, 300],
                             item_side=ctr.item_side, max_len=4)
    assert b.lengths.tolist() == [0, 2] and b.hist_item.shape == (2, 2)
    assert b.hist_gap[1].tolist() == [-1, 100] and not b.mask[0].any()
    assert b.hist_side["category"][1, 1] == 1  # an id outside the table -> UNK
    assert b.group.tolist() == [0, 0] and b.index.tolist() == [0, 1]

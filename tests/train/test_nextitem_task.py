"""NextItemTask: losses against naive loops, full-ranking evaluation, groups, exclusion, predict."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import polars as pl
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.metrics.ranking import ranking_metrics, ranks_from_scores
from chronorec.models.base import ModelOutput, NextItemModel
from chronorec.train.full_softmax import full_softmax_ce
from chronorec.train.nextitem_task import NextItemTask

N = 30  # item vocabulary incl. padding and UNK


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Echo(NextItemModel):
    """Hidden state at position j = a per-item vector of item_j; scores against a separate table."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.enc = nn.Parameter(torch.randn(N, dim, generator=g))
        self.out = nn.Parameter(torch.randn(N, dim, generator=g))

    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(logits=self.enc[batch.hist_item])  # [B, L, D]

    def item_weights(self) -> Tensor:
        return self.out


class Fixed(NextItemModel):
    """Scores of user u are the row S[u] (hidden = one-hot user, item table = S^T)."""

    def __init__(self, S: Tensor) -> None:
        super().__init__()
        self.S = S  # [n_users, N]

    def forward(self, batch: Batch) -> ModelOutput:
        h = torch.eye(self.S.shape[0])[batch.user]  # [B, U]
        return ModelOutput(logits=h[:, None, :].expand(-1, batch.max_len, -1))  # [B, L, U]

    def item_weights(self) -> Tensor:
        return self.S.T  # [N, U]


def train_batch() -> Batch:
    return synthetic_batch(batch_size=7, max_len=9, n_items=N, next_item=True, seed=4)


def test_ce_loss_equals_naive_loop_over_real_positions() -> None:
    m, b = Echo(), train_batch()
    loss = NextItemTask(N).loss(m, b)
    terms = []
    for r in range(len(b)):
        for j in range(b.max_len):
            t = int(b.target_item[r, j])
            if t >= 2:
                logits = m.out @ m.enc[b.hist_item[r, j]]  # [N]
                logits[:2] = float("-inf")
                terms.append(-torch.log_softmax(logits, 0)[t])
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    loss.backward()
    assert m.enc.grad is not None and m.out.grad[:2].abs().sum() == 0  # padding / UNK never scored


def test_epoch_loss_norm_weighs_every_term_alike_whatever_its_batch() -> None:
    """task.loss_norm=epoch: a batch's loss is its SUM over terms / (batch_size x mean window length),
    so a term of a short-sequence batch no longer weighs more than one of a long-sequence batch."""
    from types import SimpleNamespace

    import numpy as np

    b = train_batch()
    n_terms = int((b.target_item >= 2).sum())
    mean_loss = NextItemTask(N).loss(Echo(), b)
    task = NextItemTask(N, loss_norm="epoch")
    torch.testing.assert_close(task.loss(Echo(), b), mean_loss)  # not calibrated: the plain mean
    task.calibrate(SimpleNamespace(row_terms=lambda: np.array([2, 4, 6]), batch_size=5))  # 4 x 5 = 20 terms a batch
    assert task.terms_per_batch == 20.0
    m = Echo()
    loss = task.loss(m, b)
    torch.testing.assert_close(loss, mean_loss * n_terms / 20.0)
    loss.backward()
    ref = Echo()
    (NextItemTask(N).loss(ref, b) * n_terms / 20.0).backward()
    torch.testing.assert_close(m.enc.grad, ref.enc.grad)
    NextItemTask(N).calibrate(SimpleNamespace(row_terms=lambda: np.array([2]), batch_size=5))  # "batch": a no-op
    with pytest.raises(ValueError, match="loss_norm"):
        NextItemTask(N, loss_norm="tokens")


def test_dropout_copies_deal_each_target_to_exactly_one_copy_of_its_row() -> None:
    b = train_batch()
    b.target_item[0, :] = 0
    b.target_item[0, 3] = 5  # a row with one target: one copy
    real = b.target_item >= 2
    for K in (2, 3, 20):
        torch.manual_seed(K)
        out = NextItemTask._deal_targets(b, K)
        rows = [int((out.user == u).sum()) for u in b.user]  # synthetic users are distinct per row
        assert rows == [min(K, int(n)) for n in real.sum(1)]
        for r in range(len(b)):
            copies = out.target_item[out.user == b.user[r]]  # [c, L]
            assert ((copies >= 2).sum(0) == real[r].long()).all()  # each target in exactly one copy
            torch.testing.assert_close(copies.max(0).values * real[r], b.target_item[r] * real[r])
            assert ((copies >= 2).sum(1) >= 1).all()  # no copy without a target
            counts = (copies >= 2).sum(1)
            assert int(counts.max() - counts.min()) <= 1  # dealt evenly
            torch.testing.assert_close(out.hist_item[out.user == b.user[r]], b.hist_item[r].expand(len(copies), -1))


def test_dropout_copies_keep_the_loss_without_dropout_and_draw_fresh_masks_with_it() -> None:
    b = train_batch()
    assert len(set(b.user.tolist())) == len(b)
    m = Echo()
    plain = NextItemTask(N, loss_norm="epoch")
    dealt = NextItemTask(N, loss_norm="epoch", dropout_copies=3)
    for task in (plain, dealt):
        task.terms_per_batch = 17.0
    torch.testing.assert_close(dealt.loss(m, b), plain.loss(m, b))  # the same terms, the same weight
    with pytest.raises(ValueError, match="dropout_copies"):
        NextItemTask(N, dropout_copies=0)

    class Dropped(Echo):
        def forward(self, batch: Batch) -> ModelOutput:
            self.seen = (batch.user, F.dropout(self.enc[batch.hist_item], 0.5, training=True))
            return ModelOutput(logits=self.seen[1])

    d = Dropped()
    _, t, _, _ = NextItemTask(N, dropout_copies=4)._terms(d, b)
    assert len(t) == int((b.target_item >= 2).sum())
    users, x = d.seen  # [R], [R, L, D]: a row's copies see its first behavior through different masks
    first = users == b.user[0]
    assert int(first.sum()) > 1 and not torch.equal(x[first][0, 0], x[first][1, 0])


# one row per chunk, 3 rows, everything; the item gradient per chunk (group_bytes=1) or per call
@pytest.mark.parametrize(("chunk_elems", "group_bytes"), [(1, 1), (1, 1 << 20), (3 * N, 1), (3 * N, 1 << 20), (10**9, 1 << 20)])
def test_fused_ce_matches_autograd_reference(chunk_elems: int, group_bytes: int) -> None:
    g = torch.Generator().manual_seed(0)
    h0, W0 = torch.randn(11, 6, generator=g), torch.randn(N, 6, generator=g)
    t = torch.randint(2, N, (11,), generator=g)
    h, W = h0.clone().requires_grad_(), W0.clone().requires_grad_()
    (3.0 * full_softmax_ce(h, W, t, chunk_elems, group_bytes=group_bytes)).backward()
    hr, Wr = h0.clone().requires_grad_(), W0.clone().requires_grad_()
    z = hr @ Wr.T
    z[:, :2] = float("-inf")
    ref = F.cross_entropy(z, t)
    (3.0 * ref).backward()
    torch.testing.assert_close(full_softmax_ce(h0, W0, t, chunk_elems), ref.detach())
    torch.testing.assert_close(h.grad, hr.grad)
    torch.testing.assert_close(W.grad, Wr.grad)
    empty = full_softmax_ce(torch.zeros(0, 6, requires_grad=True), W, t[:0])
    assert float(empty.detach()) == 0.0


@pytest.mark.parametrize(("chunk_elems", "group_bytes"), [(3 * 500, 1), (3 * 500, 1 << 20), (10**9, 1 << 20)])
def test_bf16_ce_is_close_to_fp32_and_masks_padding(chunk_elems: int, group_bytes: int) -> None:
    g = torch.Generator().manual_seed(1)
    h0, W0 = 0.3 * torch.randn(40, 16, generator=g), 0.3 * torch.randn(500, 16, generator=g)
    t = torch.randint(2, 500, (40,), generator=g)
    grads = {}
    for precision in ("fp32", "bf16"):
        h, W = h0.clone().requires_grad_(), W0.clone().requires_grad_()
        loss = full_softmax_ce(h, W, t, chunk_elems, precision=precision, group_bytes=group_bytes)
        loss.backward()
        assert loss.dtype == torch.float32 and W.grad.dtype == torch.float32
        grads[precision] = (loss.detach(), h.grad, W.grad)
    (l32, gh32, gW32), (l16, gh16, gW16) = grads["fp32"], grads["bf16"]
    assert abs(float(l16 - l32)) < 1e-2 * float(l32)
    assert float((gh16 - gh32).norm() / gh32.norm()) < 2e-2
    assert float((gW16 - gW32).norm() / gW32.norm()) < 2e-2
    assert gW16[:2].abs().sum() == 0  # padding / UNK rows still get no gradient
    with pytest.raises(ValueError, match="fp16"):
        full_softmax_ce(h0, W0, t, precision="fp16")  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_ce_of_an_underflowed_target_probability_is_exact(precision: str) -> None:
    # the loss is read off the softmax at the target; where that underflows (logit gap > ~88) the
    # row is recomputed from the logits instead of reporting log(0)
    W = torch.zeros(N, 4)
    W[2, 0], W[3, 0] = 1.0, -1.0
    h = torch.tensor([[150.0, 0, 0, 0], [0.5, 0, 0, 0]])  # row 0: target 3 sits 300 below item 2
    t = torch.tensor([3, 2])
    z = h @ W.T
    z[:, :2] = float("-inf")
    ref = F.cross_entropy(z, t)  # ~ (300 + small) / 2
    got = full_softmax_ce(h, W, t, precision=precision)  # type: ignore[arg-type]
    assert torch.isfinite(got) and float(ref) > 149
    torch.testing.assert_close(got, ref, rtol=1e-2 if precision == "bf16" else 1e-6, atol=0)


def test_ce_loss_ignores_padding_columns() -> None:
    m, b = Echo(), train_batch()
    wide = replace(b, **{f: torch.cat([getattr(b, f), torch.zeros_like(getattr(b, f)[:, :3])], 1)
                         for f in ("hist_item", "target_item", "hist_ts", "target_ts", "mask")})
    task = NextItemTask(N)
    torch.testing.assert_close(task.loss(m, b), task.loss(m, wide))


def test_sampled_softmax_matches_manual_with_log_q() -> None:
    m, b = Echo(), train_batch()
    counts = torch.arange(N).float()
    task = NextItemTask(N, loss="sampled_softmax", n_negatives=5, item_counts=counts)
    torch.manual_seed(3)
    loss = task.loss(m, b)
    torch.manual_seed(3)
    q = counts.clone()
    q[:2] = 0
    q = q / q.sum()
    neg = torch.multinomial(q, 5, replacement=True)
    real = b.target_item >= 2
    h, t = m.enc[b.hist_item[real]], b.target_item[real]
    lq = torch.log(5 * q)
    s_pos = (h * m.out[t]).sum(-1) - lq[t]
    s_neg = h @ m.out[neg].T - lq[neg]
    s_neg[neg[None] == t[:, None]] = float("-inf")
    manual = -torch.log_softmax(torch.cat([s_pos[:, None], s_neg], 1), 1)[:, 0].mean()
    torch.testing.assert_close(loss, manual)


def test_uniform_sampled_softmax_and_bce_train() -> None:
    for kind in ("sampled_softmax", "bce"):
        m = Echo()
        task = NextItemTask(N, loss=kind, n_negatives=8)  # type: ignore[arg-type]
        loss = task.loss(m, train_batch())
        assert torch.isfinite(loss) and loss > 0
        loss.backward()
        assert m.out.grad.abs().sum() > 0


def test_bce_matches_manual() -> None:
    m, b = Echo(), train_batch()
    torch.manual_seed(5)
    loss = NextItemTask(N, loss="bce").loss(m, b)
    torch.manual_seed(5)
    real = b.target_item >= 2
    h, t = m.enc[b.hist_item[real]], b.target_item[real]
    neg = torch.randint(2, N, t.shape)
    keep = neg != t
    manual = F.softplus(-(h * m.out[t]).sum(-1)).mean() + F.softplus((h * m.out[neg]).sum(-1))[keep].mean()
    torch.testing.assert_close(loss, manual)


def eval_batches(S_users: int) -> list[Batch]:
    b = synthetic_batch(batch_size=S_users, max_len=6, n_items=N, seed=1)
    b = replace(b, user=torch.arange(S_users), group=torch.arange(S_users) % 3)
    return [b.select(torch.arange(0, 5)), b.select(torch.arange(5, S_users))]


def test_evaluate_ranks_groups_and_exclusion() -> None:
    U = 12
    S = torch.randint(0, 4, (U, N)).float()  # many ties
    S[:, 0] = 100.0  # padding must never count
    batches = eval_batches(U)
    task = NextItemTask(N, group_names=["head", "mid", "tail"], exclude_seen=True, ks=(5, 10))
    m = Fixed(S).train()
    out = task.evaluate(m, batches)
    assert m.training, "evaluate restores the training mode"
    target = torch.cat([b.target_item for b in batches])
    hist = torch.cat([b.hist_item for b in batches])
    scores = S.clone()
    scores[:, :2] = float("-inf")
    ranks = ranks_from_scores(scores, target)
    seen = torch.zeros(U, N, dtype=torch.bool).scatter_(1, hist, True)
    ranks_ex = ranks_from_scores(scores, target, seen)
    expected = ranking_metrics(ranks, (5, 10)) | ranking_metrics(ranks_ex, (5, 10), "_exclude_seen")
    for k, v in expected.items():
        assert out[k] == pytest.approx(v), k
    assert out["n"] == U
    group = torch.arange(U) % 3
    for gi, name in enumerate(["head", "mid", "tail"]):
        assert out["groups"][name]["ndcg@10"] == pytest.approx(ranking_metrics(ranks[group == gi], (10,))["ndcg@10"])
        assert out["groups"][name]["n"] == 4
    assert task.select_metric == "ndcg@10" and task.select_metric in out

    df = task.predict(m, batches)
    assert isinstance(df, pl.DataFrame)
    assert df.columns == ["user", "item", "group", "rank", "rank_exclude_seen"]
    assert df["rank"].to_list() == ranks.tolist() and df["item"].to_list() == target.tolist()
    assert df["user"].to_list() == list(range(U))


def test_evaluate_rejects_training_batches_and_plain_keys_without_exclusion() -> None:
    task = NextItemTask(N)
    with pytest.raises(ValueError, match="one target per row"):
        task.evaluate(Echo(), [train_batch()])
    out = task.evaluate(Echo(), [synthetic_batch(batch_size=4, max_len=5, n_items=N)])
    assert not any("exclude" in k for k in out)
    assert {"hit@50", "ndcg@20", "mrr@5"} <= set(out)


def test_epoch_loss_norm_calibrated_from_a_real_loader_also_under_a_weighted_strategy(tiny_nextitem_dataset) -> None:
    """The trainer calibrates the task from its loader (terms_per_batch = batch x mean trained targets
    per row, the mean window length with the default disjoint windows);
    a long-tail strategy's weighted task splits that by the groups' shares of the loader's terms."""
    from chronorec.train import build
    from chronorec.train.config import parse_overrides

    sets = ["model.dim=8", "train.batch_size=16", "task.loss_norm=epoch"]
    for strategy, only in (("joint", None), ("reweight", None), ("tail_only", [1])):
        cfg = build.run_config(tiny_nextitem_dataset, "sasrec", parse_overrides([*sets, f"longtail.strategy={strategy}"]))
        ds = build.open_dataset(cfg.data)
        task = build.make_training_task(cfg, ds)
        loader = build.make_loader(ds, "train", batch_size=16, shuffle=True, seed=0, max_len=50, bucket=True, groups=only)
        build.calibrate_task(task, loader)
        inner = getattr(task, "inner", task)
        assert inner.terms_per_batch == pytest.approx(16 * float(loader.lengths.mean()))
        if strategy == "joint":
            continue
        per_group = task.terms_per_group
        assert float(per_group.sum()) == pytest.approx(inner.terms_per_batch)
        groups = loader.row_groups()
        for z in range(len(per_group)):  # E_z = terms per batch x group z's share of the loader's terms
            share = loader.lengths[groups == z].sum() / loader.lengths.sum()
            assert float(per_group[z]) == pytest.approx(inner.terms_per_batch * share)
        if only is not None:
            assert float(per_group[0]) == 0.0


def test_ce_group_is_small_for_a_small_catalogue_and_unchanged_for_a_large_one() -> None:
    """The item-gradient group (the [group, n] logits buffer): 16 MB at most, as before, but no more
    than 1,024 rows (down to 4 MB) where the catalogue is small, e.g. ml-100k's 1,683 items."""
    from chronorec.train.full_softmax import ce_chunking

    rows, group = ce_chunking(3000, 1683, 4)  # ml-100k, batch 64 x ~47 positions, fp32
    assert rows == 600 and group == 600 and group * 1683 * 4 <= 4 << 20  # was 2,400 rows, 16 MB
    assert ce_chunking(3000, 1683, 2, pad8=True) == (600, 1200)  # bf16: 4 MB of 2-byte logits
    assert ce_chunking(3000, 12103, 4) == (86, 344)  # amazon-beauty fp32: 4 chunks, 16 MB, as before
    assert ce_chunking(3000, 12103, 2, pad8=True) == (88, 616)  # bf16: 7 chunks, 15 MB, as before
    rows, group = ce_chunking(3000, 40, 4)  # a tiny catalogue: one chunk, the whole call one group
    assert rows == 3000 and group >= 3000


def test_window_stride_trains_each_target_once_with_more_history(tiny_nextitem_dataset, tiny_ctr_dataset) -> None:
    """train.window_stride: overlapping training windows (every target still trained once, now with
    at least max_len - stride behaviors before it); refused above the window or on CTR data."""
    import numpy as np

    from chronorec.errors import ChronorecError
    from chronorec.train import build
    from chronorec.train.config import parse_overrides

    ds = None
    loaders = {}
    for stride in (None, 2):
        sets = ["model.max_len=8"] + ([f"train.window_stride={stride}"] if stride else [])
        cfg = build.run_config(tiny_nextitem_dataset, "gru4rec", parse_overrides(sets))
        ds = ds or build.open_dataset(cfg.data)
        loaders[stride] = build.make_train_loader(cfg, ds)
    disjoint, sliding = loaders[None], loaders[2]
    assert sliding.n_rows > disjoint.n_rows
    trained = [np.sort(np.concatenate([np.arange(c, b + 1) for c, b in zip(ld.target_from, ld.end, strict=True)]))
               for ld in (disjoint, sliding)]
    np.testing.assert_array_equal(trained[0], trained[1])  # the same targets, each once
    for ld in (disjoint, sliding):  # row_terms counts them per row (epoch loss norm calibrates on it)
        assert ld.row_terms().sum() == trained[0].size and (ld.row_terms() >= 1).all()
    np.testing.assert_array_equal(disjoint.row_terms(), disjoint.lengths)  # disjoint windows: their lengths
    assert sliding.row_terms().max() <= 2 < sliding.lengths.max()
    context = sliding.target_from - sliding.start  # behaviors before the first trained target (row c is predicted from rows < c)
    full = sliding.start > ds.samples("train")["hist_start"][sliding.row_sample]  # windows not at a history's start
    assert full.any() and (context[full] >= 8 - 2).all()
    with pytest.raises(ChronorecError, match="window_stride=9 needs"):
        build.run_config(tiny_nextitem_dataset, "gru4rec", parse_overrides(["model.max_len=8", "train.window_stride=9"]))
    with pytest.raises(ChronorecError, match="window_stride=2 needs next-item data"):
        build.run_config(tiny_ctr_dataset, "din", parse_overrides(["train.window_stride=2"]))
    # train.max_windows: stride 1, but no sequence cut into more than 3 windows (while max_len allows)
    cfg = build.run_config(tiny_nextitem_dataset, "gru4rec", parse_overrides(
        ["model.max_len=8", "train.window_stride=1", "train.max_windows=3"]))
    capped = build.make_train_loader(cfg, ds)
    n_seq = ds.samples("train")["hist_end"].size
    per_seq = np.bincount(capped.row_sample, minlength=n_seq)
    n_targets = np.maximum(ds.samples("train")["hist_end"] - ds.samples("train")["hist_start"] - 1, 0)
    assert (per_seq[n_targets <= 24] <= 3).all() and (per_seq == np.minimum(n_targets, 3))[n_targets <= 3].all()
    got = np.sort(np.concatenate([np.arange(c, b + 1) for c, b in zip(capped.target_from, capped.end, strict=True)]))
    np.testing.assert_array_equal(got, trained[0])
    with pytest.raises(ChronorecError, match="max_windows=2 needs next-item data"):
        build.run_config(tiny_ctr_dataset, "din", parse_overrides(["train.max_windows=2"]))

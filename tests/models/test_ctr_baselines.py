"""CTR baselines: batching equals one-row-at-a-time, explain terms per model, every temporal
encoding in every model, DSIN's session split, DIEN's auxiliary loss, DIN/BST explain formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.models.ctr.dsin import split_sessions
from chronorec.models.ctr.gru4rec import last_real
from chronorec.models.registry import create_model, list_models

CTR = list_models("ctr")
NO_ATTENTION = {"avgpool_concat", "avgpool_product", "gru4rec_ctr", "sasrec_ctr", "bert4rec_ctr", "tin_wo_ta"}
SMALL = {"dim": 4, "mlp": [8]}


def schema() -> DatasetSchema:
    return DatasetSchema(
        name="t", protocol="ctr-leave-one-out", task="ctr", n_users=10, n_items=48, n_events=100,
        vocab_sizes={"item": 50, "category": 7}, side_features=["category"], max_history_len=10,
        bin_edges={"interval": [3600.0, 86400.0, 604800.0]},
    )


def build(name: str, **over: object) -> nn.Module:
    torch.manual_seed(0)
    cfg = {**SMALL, **({"heads": 2} if name in ("bst", "dsin") else {}), **over}
    return create_model(name, schema(), cfg).eval()


def row(b: Batch, r: int) -> Batch:
    """Row r alone, trimmed to its own length (no padding at all; one padded slot if empty)."""
    one = b.select(torch.tensor([r]))
    n = max(int(one.lengths[0]), 1)
    return Batch(
        hist_item=one.hist_item[:, :n], hist_side={k: v[:, :n] for k, v in one.hist_side.items()},
        hist_ts=one.hist_ts[:, :n], hist_gap=one.hist_gap[:, :n], hist_calendar=one.hist_calendar[:, :n],
        mask=one.mask[:, :n], lengths=one.lengths, target_item=one.target_item, target_side=one.target_side,
        target_ts=one.target_ts, label=one.label, user=one.user, group=one.group, index=one.index,
    )


@pytest.mark.parametrize("name", CTR)
def test_batched_equals_row_by_row(name: str) -> None:
    m = build(name)
    b = synthetic_batch(batch_size=6, max_len=10, seed=7, min_len=0)
    with torch.no_grad():
        batched = m(b).logits
        single = torch.cat([m(row(b, r)).logits for r in range(len(b))])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", CTR)
def test_explain_terms(name: str) -> None:
    m = build(name)
    b = synthetic_batch(batch_size=5, max_len=8, seed=3, min_len=0)
    ex = m.explain(b)
    assert ex.rep_norm is not None and ex.rep_norm.shape == (5, 8)
    assert torch.isfinite(ex.rep_norm).all() and (ex.rep_norm[~b.mask] == 0).all()
    if name in NO_ATTENTION:
        assert ex.attn_logit is None
    else:
        assert ex.attn_logit is not None and ex.attn_logit.shape == (5, 8)
        assert torch.isfinite(ex.attn_logit).all() and (ex.attn_logit[~b.mask] == 0).all()


@pytest.mark.parametrize("temporal", ["none", "ttep", "ttet", "coe", "calendar"])
def test_every_model_takes_every_temporal_encoding(temporal: str) -> None:
    b = synthetic_batch(batch_size=4, max_len=6, seed=1, min_len=0)
    for name in CTR:
        out = build(name, temporal=temporal)(b).logits
        assert out.shape == (4,) and torch.isfinite(out).all(), name


def test_din_explain_is_the_activation_unit_logit() -> None:
    b = synthetic_batch(batch_size=4, max_len=6, seed=2)
    for name, product in (("din", True), ("din_prime", False)):
        m = build(name)
        e, v = m.encode(b)
        ex = m.explain(b)
        torch.testing.assert_close(ex.attn_logit[b.mask], (m.unit(v, e) / math.sqrt(m.D))[b.mask])
        rep = e * v[:, None] if product else e
        torch.testing.assert_close(ex.rep_norm, rep.norm(dim=-1))


def test_bst_and_sasrec_explain_follow_table_2() -> None:
    b = synthetic_batch(batch_size=4, max_len=6, seed=2)
    m = build("bst")
    e, v = m.encode(b)  # COE-encoded behaviors, target at the origin
    ex = m.explain(b)
    torch.testing.assert_close(ex.attn_logit[b.mask], ((e * v[:, None]).sum(-1) / math.sqrt(m.D))[b.mask])
    torch.testing.assert_close(ex.rep_norm, e.norm(dim=-1))
    m = build("sasrec_ctr")
    e, v = m.encode(b)
    torch.testing.assert_close(m.explain(b).rep_norm, (e * v[:, None]).norm(dim=-1))


def test_gru_last_state_equals_packed_final_hidden() -> None:
    m = build("gru4rec_ctr")
    b = synthetic_batch(batch_size=6, max_len=7, seed=4)
    with torch.no_grad():
        hs, _ = m.states(b)
        e, _ = m.encode(b)
        packed = nn.utils.rnn.pack_padded_sequence(e, b.lengths, batch_first=True, enforce_sorted=False)
        _, h_n = m.gru(packed)
    torch.testing.assert_close(last_real(hs, b.lengths), h_n[-1])


def test_dsin_sessions_split_at_30_minute_gaps_and_cap() -> None:
    m = 60
    ts = torch.tensor([
        [0, 10 * m, 50 * m, 55 * m, 200 * m, 201 * m, 0, 0],  # sessions {0,1} {2,3} {4,5}
        [0, 31 * m, 62 * m, 93 * m, 124 * m, 125 * m, 126 * m, 300 * m],  # 6 sessions, keep last 3
        [5, 0, 0, 0, 0, 0, 0, 0],
        [0] * 8,
    ])
    lengths = torch.tensor([6, 8, 1, 0])
    mask = torch.arange(8)[None, :] < lengths[:, None]
    ts = torch.where(mask, ts, torch.randint(0, 10**6, ts.shape))  # junk padding must not matter
    slot, kept, pos, n_kept = split_sessions(ts, mask, lengths, gap=1800, max_sessions=3)
    assert n_kept.tolist() == [3, 3, 1, 0]
    assert slot[0, :6].tolist() == [0, 0, 1, 1, 2, 2] and pos[0, :6].tolist() == [0, 1, 0, 1, 0, 1]
    assert kept[1].tolist() == [False, False, False, True, True, True, True, True]
    assert slot[1, 3:].tolist() == [0, 1, 1, 1, 2] and pos[1, 3:].tolist() == [0, 0, 1, 2, 0]
    assert kept[2].tolist() == [True] + [False] * 7 and not kept[3].any()


def test_dsin_attention_stays_inside_sessions() -> None:
    """Changing a behavior in one session changes only that session's interest vector."""
    model = build("dsin", max_sessions=4)
    b = synthetic_batch(batch_size=1, max_len=6, seed=0, min_len=6)
    b.hist_ts = torch.tensor([[0, 60, 120, 10_000, 10_060, 10_120]]) + 1_300_000_000
    with torch.no_grad():
        s1, sess_mask, *_ = model._sessions(b)
        b.hist_item[0, 4] = (b.hist_item[0, 4] + 1) % 48 + 2
        s2, *_ = model._sessions(b)
    assert sess_mask.tolist() == [[True, True, False, False]]
    torch.testing.assert_close(s1[0, 0], s2[0, 0])
    assert not torch.allclose(s1[0, 1], s2[0, 1])


def test_dien_aux_loss_only_in_training() -> None:
    m = build("dien")
    b = synthetic_batch(batch_size=6, max_len=6, seed=1, min_len=0)
    assert m(b).aux_loss is None  # eval
    m.train()
    aux = m(b).aux_loss
    assert aux is not None and aux.ndim == 0 and torch.isfinite(aux) and aux > 0
    aux.backward()
    assert m.aux.net[0].weight.grad is not None and m.extractor.weight_ih_l0.grad.abs().sum() > 0

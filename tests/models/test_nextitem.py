"""Next-item models: forward/backward, causality, padding invariance, windowing, registry,
BERT4Rec's cloze / [MASK] batches, LightSANs' per-sample position bias."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError
from chronorec.layers.dropout import Dropout
from chronorec.layers.lightsans import ItemToInterest, LightSANsLayer
from chronorec.layers.rhythm import RHYTHM_UNKNOWN
from chronorec.layers.transformer import attention_mask
from chronorec.models.nextitem.common import window_batch
from chronorec.models.registry import build_config, create_model, list_models

N_ITEMS = 50
MODELS = ["bert4rec", "gru4rec", "lightsans", "sasrec"]
CAUSAL = ["gru4rec", "lightsans", "sasrec"]



def schema() -> DatasetSchema:
    return DatasetSchema(
        name="synthetic", protocol="next-item-last-out", task="next_item", n_users=20, n_items=N_ITEMS - 2,
        n_events=500, vocab_sizes={"user": 22, "item": N_ITEMS, "category": 7},
        bin_edges={"gap": [600.0, 3600.0, 86_400.0, 3 * 86_400.0]},
    )


def model(name: str, **cfg: object) -> torch.nn.Module:
    torch.manual_seed(0)
    m = create_model(name, schema(), {"dim": 16, "max_len": 12, "dropout": 0.0, **cfg})
    return m.eval()


def train_batch(seed: int = 0, max_len: int = 12) -> Batch:
    return synthetic_batch(batch_size=6, max_len=max_len, n_items=N_ITEMS, next_item=True, seed=seed)


def eval_batch(seed: int = 0, max_len: int = 12) -> Batch:
    return synthetic_batch(batch_size=6, max_len=max_len, n_items=N_ITEMS, next_item=False, seed=seed)


def test_registry_names_and_defaults() -> None:
    assert set(MODELS) <= set(list_models(task="next_item"))
    sas = build_config("sasrec")
    assert (sas.dim, sas.n_layers, sas.heads, sas.inner, sas.max_len, sas.dropout) == (64, 2, 2, 256, 50, 0.5)
    assert (sas.rhythm, sas.rhythm_bucket, sas.rhythm_scale, sas.rhythm_cap) == ("none", "scaled_days", 0.2, 640)
    assert build_config("lightsans").k_interests == 5
    assert build_config("sasrec").ffn_dropout is None and build_config("bert4rec").ffn_dropout is None
    assert not hasattr(build_config("lightsans"), "ffn_dropout")  # its feed-forward has no inner dropout
    with pytest.raises(ChronorecError, match="ffn_dropout"):
        build_config("sasrec", {"ffn_dropout": 1.0})
    assert build_config("bert4rec").mask_ratio == 0.2
    assert build_config("gru4rec").hidden == 128
    with pytest.raises(ChronorecError, match="rhythm"):
        build_config("sasrec", {"rhythm": "xf"})
    with pytest.raises(ChronorecError):
        build_config("sasrec", {"no_such_option": 1})


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("rhythm", ["none", "bf", "mf", "gf"])
def test_forward_backward_every_parameter(name: str, rhythm: str) -> None:
    m = model(name, rhythm=rhythm, target_time=True, rhythm_bucket="equal_freq").train()
    b = m.prepare_batch(train_batch(), training=True)
    h = m(b).logits  # [B, L, D]
    assert h.shape == (*b.hist_item.shape, 16)
    assert torch.isfinite(h).all()
    real = b.target_item > 0
    loss = (h[real] @ m.item_weights().T).logsumexp(-1).mean()
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert not missing, f"no gradient: {missing}"
    assert m.item_weights().shape == (N_ITEMS, 16)
    assert float(m.item_weights()[0].detach().abs().sum()) == 0.0  # padding row


@pytest.mark.parametrize("name", CAUSAL)
@pytest.mark.parametrize("rhythm", ["none", "gf"])
def test_causal_output_ignores_later_positions(name: str, rhythm: str) -> None:
    m = model(name, rhythm=rhythm)
    b = train_batch()
    j = 4
    later = torch.arange(b.max_len)[None, :] > j
    changed = replace(
        b,
        hist_item=torch.where(later & b.mask, (b.hist_item + 7) % (N_ITEMS - 2) + 2, b.hist_item),
        hist_gap=torch.where(later & b.mask, b.hist_gap * 3 + 5000, b.hist_gap),
    )
    with torch.no_grad():
        h1, h2 = m(b).logits, m(changed).logits
    torch.testing.assert_close(h1[:, : j + 1], h2[:, : j + 1])
    assert not torch.allclose(h1[0, j + 1 :], h2[0, j + 1 :])


@pytest.mark.parametrize("name", CAUSAL)
def test_all_positions_equal_prefix_runs(name: str) -> None:
    """One pass over a sequence gives, at position j, what the prefix 0..j gives at its end."""
    m = model(name, rhythm="bf")
    b = train_batch().select(torch.tensor([0]))  # the full-length row
    with torch.no_grad():
        full = m(b).logits[0]  # [L, D]
        for j in (0, 3, 8):
            prefix = window_batch(replace(b, lengths=torch.tensor([j + 1]), mask=b.mask & (torch.arange(12) <= j)), 12)
            torch.testing.assert_close(m(prefix).logits[0, j], full[j])


@pytest.mark.parametrize("name", MODELS)
def test_padding_invariance(name: str) -> None:
    m = model(name, rhythm="mf", target_time=True)
    b = eval_batch()
    pad = ~b.mask
    junk = replace(b, hist_item=torch.where(pad, 9, b.hist_item), hist_gap=torch.where(pad, 777, b.hist_gap),
                   hist_ts=torch.where(pad, 123, b.hist_ts))
    wider = synthetic_batch(batch_size=6, max_len=12, n_items=N_ITEMS, seed=0)
    wider = replace(  # two more padded columns
        wider, **{f: torch.cat([getattr(wider, f), torch.full_like(getattr(wider, f)[:, :2], v)], 1)
                  for f, v in (("hist_item", 0), ("hist_ts", 0), ("hist_gap", -1), ("mask", False))},
    )
    outs = []
    with torch.no_grad():
        for x in (b, junk, wider):
            p = m.prepare_batch(x, training=False)
            h = m(p).logits
            outs.append(h[torch.arange(6), p.lengths - 1])  # [B, D] the scoring states
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(outs[0], outs[2])


def test_window_keeps_most_recent_and_moves_targets() -> None:
    b = train_batch()
    w = window_batch(b, 5)
    assert w.max_len == 5
    for r in range(len(b)):
        n = int(b.lengths[r])
        k = min(n, 5)
        assert int(w.lengths[r]) == k
        assert w.hist_item[r, :k].tolist() == b.hist_item[r, n - k : n].tolist()
        assert w.target_item[r, :k].tolist() == b.target_item[r, n - k : n].tolist()
        assert w.hist_gap[r, :k].tolist() == b.hist_gap[r, n - k : n].tolist()
        assert (w.hist_item[r, k:] == 0).all() and (w.hist_gap[r, k:] == -1).all()
    short = window_batch(b.select(torch.tensor([1, 3])), 50)  # trims to the longest row
    assert short.max_len == int(b.lengths[[1, 3]].max())


def test_target_time_changes_scores_only_through_elapsed_time() -> None:
    m = model("sasrec", target_time=True)
    b = eval_batch()
    later = replace(b, target_ts=b.target_ts + 40 * 86_400)
    with torch.no_grad():
        h1, h2 = m(b).logits, m(later).logits
    last = torch.arange(6), b.lengths - 1
    assert not torch.allclose(h1[last], h2[last])
    plain = model("sasrec")
    with torch.no_grad():
        torch.testing.assert_close(plain(b).logits, plain(later).logits)


@pytest.mark.parametrize("name", MODELS)
def test_constant_rhythm_control_ignores_the_gaps(name: str) -> None:
    """rhythm_control=constant: the same fusion and parameters, and outputs blind to every gap."""
    b = eval_batch()
    other = replace(b, hist_gap=torch.where(b.hist_gap >= 0, b.hist_gap * 37 + 11 * 86_400, b.hist_gap))
    real, control = model(name, rhythm="mf"), model(name, rhythm="mf", rhythm_control="constant")
    assert [n for n, _ in real.named_parameters()] == [n for n, _ in control.named_parameters()]
    with torch.no_grad():
        assert not torch.allclose(real(b).logits, real(other).logits)
        torch.testing.assert_close(control(b).logits, control(other).logits)


def test_constant_rhythm_control_without_a_time_term_is_an_error() -> None:
    with pytest.raises(ChronorecError, match="rhythm_control"):
        build_config("sasrec", {"rhythm_control": "constant"})
    assert build_config("sasrec", {"rhythm_control": "constant", "target_time": True}).rhythm == "none"


def test_equal_freq_needs_schema_edges() -> None:
    s = schema().model_copy(update={"bin_edges": {}})
    with pytest.raises(ChronorecError, match="bin edges"):
        create_model("sasrec", s, {"rhythm": "bf", "rhythm_bucket": "equal_freq"})


def test_bert_cloze_batch() -> None:
    m = model("bert4rec", max_len=8, mask_ratio=0.3)
    b = train_batch()  # lengths up to 12, 6 rows
    torch.manual_seed(1)
    c = m.prepare_batch(b, training=True)
    assert c.max_len == 8 and c.per_position_targets
    masked = c.hist_item == m.mask_id
    assert masked.any(dim=1).all(), "every row trains at least one slot"
    assert (c.target_item[masked] >= 2).all() and (c.target_item[~masked] == 0).all()
    assert not (masked & ~c.mask).any()
    for r in range(len(b)):
        n = int(b.lengths[r])
        full = [*b.hist_item[r, :n].tolist(), int(b.target_item[r, n - 1])]  # the last target is appended
        kept = full[-8:]
        k = len(kept)
        assert int(c.lengths[r]) == k
        restored = torch.where(masked[r, :k], c.target_item[r, :k], c.hist_item[r, :k]).tolist()
        assert restored == kept
    assert m.item_emb.weight.shape[0] == N_ITEMS + 1 and m.item_weights().shape[0] == N_ITEMS


def test_bert_cloze_share_is_mask_ratio() -> None:
    m = model("bert4rec", max_len=12, mask_ratio=0.2)
    b = synthetic_batch(batch_size=400, max_len=12, n_items=N_ITEMS, next_item=True, seed=3, min_len=11)
    torch.manual_seed(0)
    c = m.prepare_batch(b, training=True)
    share = float((c.hist_item == m.mask_id).sum() / c.mask.sum())
    assert 0.18 < share < 0.23  # 0.2 plus the rare forced mask


def test_bert_fine_tuning_batches_mask_only_the_last_item() -> None:
    """ft_ratio=1: every batch is RecBole's fine-tuning case, the window's last item alone masked."""
    m = model("bert4rec", max_len=8, ft_ratio=1.0)
    b = train_batch()
    c = m.prepare_batch(b, training=True)
    masked = c.hist_item == m.mask_id
    rows = torch.arange(len(b))
    assert (masked.sum(dim=1) == 1).all() and masked[rows, c.lengths - 1].all()
    last_targets = b.target_item[rows, b.lengths - 1]  # the sequence's last item, appended to the window
    assert c.target_item[rows, c.lengths - 1].tolist() == last_targets.tolist()
    assert (c.target_item[~masked] == 0).all()


def _stride_window_batch(k: int) -> tuple[Batch, list[list[int]]]:
    """Long rows whose last ``k`` per-position targets are trained (an overlapping window), and each
    row's full sequence as the cloze batch keeps it (inputs + last target, the most recent 12)."""
    b = synthetic_batch(batch_size=8, max_len=12, n_items=N_ITEMS, next_item=True, seed=5, min_len=11)
    pos = torch.arange(b.max_len)[None, :]
    b = replace(b, target_item=torch.where(pos >= (b.lengths - k)[:, None], b.target_item, 0))
    full = [[*b.hist_item[r, : b.lengths[r]].tolist(), int(b.target_item[r, b.lengths[r] - 1])] for r in range(len(b))]
    return b, [f[-12:] for f in full]


@pytest.mark.parametrize("cut", ["ft", "all"])
def test_bert_cut_ends_rows_at_a_trained_target(cut: str) -> None:
    """cut=ft (fine-tuning batches) / all (every batch): a row is cut after one of its trained targets,
    drawn uniformly; over draws every trained target ends a row, never a context position. A
    fine-tuning row masks exactly its new last item; a cloze row masks only inside the kept part."""
    ft = cut == "ft"
    m = model("bert4rec", max_len=12, ft_ratio=1.0 if ft else 0.0, cut=cut)
    k = 3
    b, full = _stride_window_batch(k)
    rows = torch.arange(len(b))
    picked: set[tuple[int, int]] = set()
    torch.manual_seed(0)
    for _ in range(200):
        c = m.prepare_batch(b, training=True)
        masked = c.hist_item == m.mask_id
        assert (c.mask == (torch.arange(c.max_len)[None, :] < c.lengths[:, None])).all()
        assert (c.hist_item[~c.mask] == 0).all() and (c.hist_gap[~c.mask] == -1).all() and not masked[~c.mask].any()
        if ft:
            assert (masked.sum(dim=1) == 1).all() and masked[rows, c.lengths - 1].all()
        assert (masked.sum(dim=1) >= 1).all() and (c.target_item[~masked] == 0).all()
        for r in range(len(b)):
            n = int(c.lengths[r])
            assert len(full[r]) - k < n <= len(full[r])  # ends at one of the last k items
            kept = [int(t) if t != m.mask_id else full[r][j] for j, t in enumerate(c.hist_item[r, :n].tolist())]
            assert kept == full[r][:n]
            assert c.target_item[r, :n][masked[r, :n]].tolist() == [full[r][j] for j in range(n) if masked[r, j]]
            picked.add((r, len(full[r]) - n))
    assert picked == {(r, j) for r in range(len(b)) for j in range(k)}


def test_bert_cut_ft_leaves_cloze_batches_alone() -> None:
    """cut=ft without fine-tuning batches trains exactly what cut=none does (same draws, same rows)."""
    b, _ = _stride_window_batch(3)
    outs = []
    for cut in ("none", "ft"):
        m = model("bert4rec", max_len=12, cut=cut)
        torch.manual_seed(1)
        outs.append([m.prepare_batch(b, training=True) for _ in range(5)])
    for x, y in zip(*outs, strict=True):
        assert torch.equal(x.hist_item, y.hist_item) and torch.equal(x.lengths, y.lengths)
        assert torch.equal(x.target_item, y.target_item)


def test_bert_ft_ratio_is_a_share_of_batches() -> None:
    m = model("bert4rec", max_len=12, ft_ratio=0.3)
    b = synthetic_batch(batch_size=64, max_len=12, n_items=N_ITEMS, next_item=True, seed=3, min_len=11)

    def fine_tuning_draws() -> list[bool]:  # a batch with one mask per row is a fine-tuning batch
        torch.manual_seed(0)
        return [int((m.prepare_batch(b, training=True).hist_item == m.mask_id).sum()) == len(b) for _ in range(400)]

    kinds = fine_tuning_draws()
    assert 0.24 < sum(kinds) / len(kinds) < 0.36  # with min_len 11 a cloze batch masks ~2 slots per row
    assert fine_tuning_draws() == kinds, "the draw follows torch's seeded generator"


def test_bert_eval_appends_mask_with_unknown_rhythm() -> None:
    m = model("bert4rec", max_len=8, rhythm="bf")
    b = eval_batch()
    p = m.prepare_batch(b, training=False)
    last = torch.arange(len(b)), p.lengths - 1
    assert (p.hist_item[last] == m.mask_id).all()
    assert (p.lengths == torch.clamp(b.lengths, max=7) + 1).all()
    for r in range(len(b)):
        n, k = int(b.lengths[r]), int(p.lengths[r]) - 1
        assert p.hist_item[r, :k].tolist() == b.hist_item[r, n - k : n].tolist()
    # the [MASK] slot's gap is the time to the target, but without target_time its rhythm is "unknown"
    assert (p.hist_gap[last] == b.target_ts - b.hist_ts[torch.arange(len(b)), b.lengths - 1]).all()
    seen: dict[str, torch.Tensor] = {}

    def keep_ids(mod: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        seen["ids"] = args[0]

    m.positions.register_forward_hook(keep_ids)
    with torch.no_grad():
        m(p)
    assert (seen["ids"][last] == RHYTHM_UNKNOWN).all()
    # so the target time cannot change the prediction
    later = m.prepare_batch(replace(b, target_ts=b.target_ts + 10**7), training=False)
    with torch.no_grad():
        torch.testing.assert_close(m(p).logits[last], m(later).logits[last])


def test_lightsans_position_bias_per_sample() -> None:
    m = model("lightsans", rhythm="gf")
    b = train_batch()
    pos = m.morphed_positions(b)  # [B, L, D]: rhythm differs per sample
    layer = m.encoder.layers[0]
    bias = layer.position_logits(pos)
    assert bias.shape == (len(b), 2, b.max_len, b.max_len)
    assert not torch.allclose(bias[0], bias[1])
    plain = model("lightsans")
    shared = plain.encoder.layers[0].position_logits(plain.morphed_positions(b))
    assert shared.shape == (1, 2, b.max_len, b.max_len)


def test_lightsans_layer_accepts_per_sample_bias_and_uses_it() -> None:
    torch.manual_seed(0)
    layer = LightSANsLayer(dim=8, heads=2, k_interests=3, inner=16).eval()
    x = torch.randn(3, 5, 8)
    allowed = attention_mask(torch.ones(3, 5, dtype=torch.bool), causal=True)
    bias = torch.randn(3, 2, 5, 5)
    y = layer(x, bias, allowed)
    y_swapped = layer(x, bias.flip(0), allowed)
    assert y.shape == (3, 5, 8)
    assert not torch.allclose(y[0], y_swapped[0])
    torch.testing.assert_close(y[1], y_swapped[1])  # the middle sample keeps its own bias


def test_item_to_interest_is_causal_softmax_pooling() -> None:
    torch.manual_seed(0)
    pool = ItemToInterest(dim=4, k_interests=2)
    x = torch.randn(1, 3, 4)
    allowed = attention_mask(torch.ones(1, 3, dtype=torch.bool), causal=True)
    out = pool(x, allowed)  # [1, 2, 3, 4]
    for j in range(3):
        for c in range(2):
            w = torch.softmax(x[0, : j + 1] @ pool.theta[:, c], dim=0)
            torch.testing.assert_close(out[0, c, j], w @ x[0, : j + 1])


def test_models_build_from_registry_with_every_bucket_rule() -> None:
    for rule in ("scaled_days", "equal_freq", "log"):
        m = create_model("gru4rec", schema(), {"rhythm": "bf", "rhythm_bucket": rule, "dim": 8})
        assert m.positions.rhythm.num_embeddings == m.rhythm_ids.n_ids


@pytest.mark.parametrize("name", ["sasrec", "bert4rec"])
def test_ffn_dropout_reaches_every_encoder_layer(name: str) -> None:
    for value, kind in ((None, Dropout), (0.0, torch.nn.Identity)):
        m = create_model(name, schema(), {"dim": 16, "max_len": 12, "dropout": 0.3, "ffn_dropout": value})
        assert all(isinstance(layer.ffn[2], kind) for layer in m.encoder.layers)



@pytest.mark.parametrize("name", ["sasrec", "bert4rec"])
def test_training_reads_only_target_positions_with_the_same_loss_and_gradients(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In training the encoders' last layer computes only the positions the loss reads (a window's
    last targets, BERT4Rec's masked slots); loss and gradients are those of the full pass."""
    from chronorec.models.nextitem.common import SequenceRecommender
    from chronorec.train.nextitem_task import NextItemTask

    b = train_batch(seed=3)
    late = torch.arange(b.max_len)[None, :] >= (b.lengths - 2)[:, None]  # [B, L]: a stride-2 window's targets
    b = replace(b, target_item=torch.where(late, b.target_item, torch.zeros_like(b.target_item)))
    import chronorec.layers.transformer as tr

    packed = []
    real_read_rows = tr.read_rows
    monkeypatch.setattr(tr, "read_rows", lambda *a, **k: packed.append(real_read_rows(*a, **k)) or packed[-1])
    task = NextItemTask(N_ITEMS)
    results = []
    for pruned in (True, False):
        m = model(name).train()
        if not pruned:
            monkeypatch.setattr(SequenceRecommender, "read_positions", lambda self, batch: None)
        torch.manual_seed(1)  # BERT4Rec's cloze draws the same masks
        loss = task.loss(m, b)
        loss.backward()
        results.append((loss.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}))
    (lp, gp), (lf, gf) = results
    assert len(packed) == 1 and packed[0] is not None  # the pruned pass really packed its read positions
    torch.testing.assert_close(lp, lf)
    assert gp.keys() == gf.keys()
    for k in gf:
        torch.testing.assert_close(gp[k], gf[k], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_item_bias_adds_a_learnt_score_per_item(name: str) -> None:
    """``item_bias``: scores are <state, E[i]> + b[i] everywhere states meet ``item_weights()``
    (the task's loss here), and the bias trains; off by default."""
    from chronorec.train.nextitem_task import NextItemTask

    assert not build_config(name).item_bias and model(name).item_bias is None
    m = model(name, item_bias=True).train()
    with torch.no_grad():
        m.item_bias.copy_(torch.linspace(-1.0, 1.0, N_ITEMS))
    b = m.prepare_batch(train_batch(), training=True)
    h = m(b).logits  # [B, L, D + 1]
    assert h.shape == (*b.hist_item.shape, 17) and m.item_weights().shape == (N_ITEMS, 17)
    torch.testing.assert_close(h[..., -1], b.mask.to(h.dtype))
    scores = h @ m.item_weights().T
    E = m.item_emb.weight[:N_ITEMS]
    torch.testing.assert_close(scores, h[..., :16] @ E.T + m.item_bias * b.mask[..., None])
    torch.manual_seed(2)
    NextItemTask(N_ITEMS).loss(m, train_batch()).backward()
    assert m.item_bias.grad is not None and float(m.item_bias.grad.abs().sum()) > 0

"""Model-specific behaviour: BERT4Rec's cloze / [MASK] batches, LightSANs' per-sample position bias."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.layers.lightsans import ItemToInterest, LightSANsLayer
from chronorec.layers.rhythm import RHYTHM_UNKNOWN
from chronorec.layers.transformer import attention_mask
from chronorec.models.registry import create_model

N_ITEMS = 50



@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # tiny matrices gain nothing from a second thread, and on a shared machine its spin-wait costs a lot
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def schema() -> DatasetSchema:
    return DatasetSchema(
        name="synthetic", protocol="next-item-last-out", task="next_item", n_users=20, n_items=N_ITEMS - 2,
        n_events=500, vocab_sizes={"user": 22, "item": N_ITEMS}, bin_edges={"gap": [600.0, 86_400.0]},
    )


def model(name: str, **cfg: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, schema(), {"dim": 16, "max_len": 12, "dropout": 0.0, **cfg}).eval()


def train_batch() -> Batch:
    return synthetic_batch(batch_size=6, max_len=12, n_items=N_ITEMS, next_item=True)


def eval_batch() -> Batch:
    return synthetic_batch(batch_size=6, max_len=12, n_items=N_ITEMS)


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

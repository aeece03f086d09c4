"""TIN: the forward pass against a hand-written version of the equations, the Eq. 2 variant, the
ablation presets, Table 2's explain terms, and golden outputs under a fixed seed."""

from __future__ import annotations

import math

import pytest
import torch

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError
from chronorec.models.ctr.tin import TIN
from chronorec.models.registry import build_config, create_model


def schema() -> DatasetSchema:
    return DatasetSchema(
        name="golden", protocol="ctr-leave-one-out", task="ctr", n_users=10, n_items=48, n_events=100,
        vocab_sizes={"item": 50, "category": 7}, side_features=["category"], max_history_len=12,
        bin_edges={"interval": [3600.0, 86400.0, 604800.0]},
    )


def perturbed(model: TIN, seed: int = 1) -> TIN:
    """Seeded noise on every parameter so outputs differ clearly between rows (init is near-constant)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def manual_tin(m: TIN, b: Batch) -> torch.Tensor:
    """The TIN equations written out directly from the model's parameters."""
    item, cat = m.embed.field_weight("item"), m.embed.field_weight("category")
    p = m.temporal.p
    H = b.lengths
    out = []
    for r in range(len(b)):
        n = int(H[r])
        e = torch.cat([item[b.hist_item[r, :n]], cat[b.hist_side["category"][r, :n]]], dim=-1)
        e = e + p[(n - torch.arange(n)).clamp(max=12)]  # TTE-P: H - i + 1 for 1-based i
        v = torch.cat([item[b.target_item[r]], cat[b.target_side["category"][r]]]) + p[0]
        a = torch.softmax(e @ v / math.sqrt(v.numel()), dim=0) if n else torch.zeros(0)
        u = (a[:, None] * e).sum(0)
        u = m.proj.linear(u * m.proj.scale + m.proj.shift)
        out.append(m.mlp(torch.cat([u, v, u * v])).squeeze() + m.bias.weight[b.target_item[r], 0])
    return torch.stack(out)


def test_forward_matches_the_equations() -> None:
    torch.manual_seed(0)
    m = perturbed(create_model("tin", schema(), {"dim": 4, "mlp": [8, 4]}))
    b = synthetic_batch(batch_size=6, max_len=8, seed=0, min_len=0)
    b.lengths[3] = 0
    b.mask[3] = False
    with torch.no_grad():
        torch.testing.assert_close(m(b).logits, manual_tin(m, b))


def test_golden_outputs() -> None:
    """Regression pin: numbers computed once with this seed and committed (not from the paper)."""
    torch.manual_seed(0)
    m = perturbed(create_model("tin", schema(), {"dim": 4, "mlp": [8, 4]}))
    with torch.no_grad():
        got = m(synthetic_batch(batch_size=6, max_len=8, seed=0)).logits
    golden = torch.tensor([-0.553798, -0.137935, -0.021569, -1.053751, -0.36929, -0.397674])
    torch.testing.assert_close(got, golden, rtol=0, atol=2e-5)


def test_eq2_puts_the_product_inside_the_sum() -> None:
    torch.manual_seed(0)
    m = perturbed(create_model("tin", schema(), {"dim": 4, "eq2": True, "affine_u": False}))
    b = synthetic_batch(batch_size=5, max_len=6, seed=4)
    with torch.no_grad():
        e, v = m.encode(b)
        a = torch.softmax((e @ v[:, :, None]).squeeze(-1).masked_fill(~b.mask, -1e9) / math.sqrt(8), dim=1)
        u = (a[..., None] * (e * v[:, None])).sum(1)  # sum_i a_i (e_i * v)
        expected = m.mlp(torch.cat([u, v], -1)).squeeze(-1) + m.bias(b.target_item).squeeze(-1)
        torch.testing.assert_close(m(b).logits, expected)
    with pytest.raises(ChronorecError, match="eq2"):
        build_config("tin", {"eq2": True, "representation": "none"})


def test_ablation_presets() -> None:
    cfg = {n: build_config(n) for n in ("tin", "tin_wo_tte", "tin_wo_ta", "tin_wo_tr", "tin_ttet",
                                        "tin_coe", "tin_calendar")}
    assert (cfg["tin"].temporal, cfg["tin"].attention, cfg["tin"].representation) == ("ttep", "target", "product")
    assert cfg["tin_wo_tte"].temporal == "none"
    assert cfg["tin_wo_ta"].attention == "mean"
    assert cfg["tin_wo_tr"].representation == "none"
    assert [cfg[n].temporal for n in ("tin_ttet", "tin_coe", "tin_calendar")] == ["ttet", "coe", "calendar"]
    assert build_config("tin_wo_tte", {"temporal": "coe"}).temporal == "coe"  # presets stay overridable
    m = create_model("tin_wo_tr", schema(), {"dim": 4})
    assert m.mlp.net[0].in_features == 2 * 8  # [u', v] only


@pytest.mark.parametrize("name", ["tin", "tin_wo_tte", "tin_wo_ta", "tin_wo_tr"])
def test_explain_follows_table_2(name: str) -> None:
    torch.manual_seed(0)
    m = perturbed(create_model(name, schema(), {"dim": 4}))
    b = synthetic_batch(batch_size=4, max_len=7, seed=5, min_len=0)
    ex = m.explain(b)
    e, v = m.encode(b)
    if m.cfg.attention == "mean":
        assert ex.attn_logit is None
    else:
        z = (e * v[:, None]).sum(-1) / math.sqrt(8)
        torch.testing.assert_close(ex.attn_logit[b.mask], z[b.mask])
    rep = e * v[:, None] if m.cfg.representation == "product" else e
    torch.testing.assert_close(ex.rep_norm[b.mask], rep.norm(dim=-1)[b.mask])
    assert (ex.rep_norm[~b.mask] == 0).all()


def _train_recency_task(name: str) -> tuple[float, torch.Tensor]:
    """Positives repeat the most recent behavior as the target, negatives the oldest one: only
    *when* the matching behavior happened separates them. Returns the final loss and the explain
    logits of one item placed at both ends of a history."""
    torch.manual_seed(0)
    m = create_model(name, schema(), {"dim": 8, "mlp": [16]})
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    for step in range(150):
        b = synthetic_batch(batch_size=64, max_len=6, seed=step, min_len=6)
        label = torch.rand(64) < 0.5
        src = torch.where(label, 5, 0)  # column of the behavior the target repeats
        b.target_item = b.hist_item.gather(1, src[:, None]).squeeze(1)
        b.target_side = {"category": b.hist_side["category"].gather(1, src[:, None]).squeeze(1)}
        b.label = label.float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(m(b).logits, b.label)
        opt.zero_grad()
        loss.backward()
        opt.step()
    b = synthetic_batch(batch_size=32, max_len=6, seed=999, min_len=6)
    b.hist_item[:, 0], b.hist_side["category"][:, 0] = b.hist_item[:, -1], b.hist_side["category"][:, -1]
    b.target_item, b.target_side = b.hist_item[:, -1], {"category": b.hist_side["category"][:, -1]}
    z = m.explain(b).attn_logit
    return loss.item(), z[:, -1] - z[:, 0]


def test_target_aware_position_is_what_solves_a_recency_task() -> None:
    loss, dz = _train_recency_task("tin")
    assert loss < 0.3
    assert dz.abs().mean() > 0.05  # the same item gets a different logit at position 1 and H
    loss, dz = _train_recency_task("tin_wo_tte")
    assert loss > 0.6  # permutation-invariant pooling cannot tell the two classes apart
    assert (dz == 0).all()

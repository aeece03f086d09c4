"""Every registered model (all tasks): builds, trains one Adam step, every parameter gets a finite
gradient, and the output ignores whatever sits in the padded tail of a right-padded history."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.models.registry import create_model, get_entry, list_models

N_ITEMS, N_CATS, L = 50, 7, 12



def tiny_schema(task: str) -> DatasetSchema:
    """A small schema matching ``synthetic_batch``'s id ranges (items < 50, categories < 7)."""
    return DatasetSchema(
        name="tiny", protocol="ctr-leave-one-out" if task == "ctr" else "next-item-last-out", task=task,
        n_users=20, n_items=N_ITEMS - 2, n_events=500,
        vocab_sizes={"user": 22, "item": N_ITEMS, "category": N_CATS}, side_features=["category"],
        bin_edges={"interval": [600.0, 3600.0, 21_600.0, 86_400.0, 259_200.0], "gap": [60.0, 3600.0, 86_400.0]},
        max_history_len=L,
    )


def junk_padding(batch: Batch, seed: int = 1) -> Batch:
    """The same batch with random ids/times/gaps/calendar written into every padded position."""
    g = torch.Generator().manual_seed(seed)
    pad = ~batch.mask

    def fill(x: torch.Tensor, high: int) -> torch.Tensor:
        return torch.where(pad, torch.randint(0, high, x.shape, generator=g), x)

    highs = torch.tensor([25, 8, 13])  # hour+1, weekday+1, month id ranges
    cal_junk = (torch.rand(batch.hist_calendar.shape, generator=g) * highs).long()
    cal = torch.where(pad[..., None], cal_junk, batch.hist_calendar)
    return Batch(
        hist_item=fill(batch.hist_item, N_ITEMS), hist_side={k: fill(v, N_CATS) for k, v in batch.hist_side.items()},
        hist_ts=fill(batch.hist_ts, 2_000_000_000), hist_gap=fill(batch.hist_gap, 10**7), hist_calendar=cal,
        mask=batch.mask, lengths=batch.lengths, target_item=batch.target_item, target_side=batch.target_side,
        target_ts=batch.target_ts, label=batch.label, user=batch.user, group=batch.group, index=batch.index,
    )


def with_empty_row(batch: Batch, row: int = 1) -> Batch:
    """The batch with one row's history removed (a cold user with no behavior at all)."""
    keep = torch.ones(len(batch), dtype=torch.bool)
    keep[row] = False
    mask = batch.mask & keep[:, None]
    m = mask.long()
    per_pos = batch.per_position_targets
    return Batch(
        hist_item=batch.hist_item * m, hist_side={k: v * m for k, v in batch.hist_side.items()},
        hist_ts=batch.hist_ts * m, hist_gap=torch.where(mask, batch.hist_gap, -1),
        hist_calendar=batch.hist_calendar * m[..., None], mask=mask, lengths=batch.lengths * keep,
        target_item=batch.target_item * m if per_pos else batch.target_item,
        target_side={k: v * m for k, v in batch.target_side.items()} if per_pos else batch.target_side,
        target_ts=batch.target_ts * m if per_pos else batch.target_ts, label=batch.label, user=batch.user,
        group=batch.group, index=batch.index,
    )


def task_loss(model: nn.Module, batch: Batch, task: str) -> torch.Tensor:
    out = model(batch)
    if task == "next_item":
        scores = out.logits @ model.item_weights().T  # [B, L, n_items]
        real = batch.mask & (batch.target_item > 0)  # [B, L]
        loss = F.cross_entropy(scores[real], batch.target_item[real])
    else:
        loss = F.binary_cross_entropy_with_logits(out.logits, batch.label)
    return loss if out.aux_loss is None else loss + out.aux_loss


def real_outputs(model: nn.Module, batch: Batch, task: str) -> torch.Tensor:
    out = model(batch).logits
    return out[batch.mask] if task == "next_item" else out


@pytest.mark.parametrize("name", list_models())
def test_model_trains_and_ignores_padding(name: str) -> None:
    task = get_entry(name).task
    torch.manual_seed(0)
    model = create_model(name, tiny_schema(task), {})
    # one row has no behavior at all (a cold user): it must not produce NaN anywhere
    batch = with_empty_row(synthetic_batch(batch_size=8, max_len=L, n_items=N_ITEMS, next_item=task == "next_item"))

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = task_loss(model, batch, task)
    assert torch.isfinite(loss), f"{name}: loss {loss}"
    opt.zero_grad()
    loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: no gradient for {pname}"
            assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
    opt.step()

    model.eval()
    with torch.no_grad():
        clean = real_outputs(model, batch, task)
        dirty = real_outputs(model, junk_padding(batch), task)
    assert torch.isfinite(clean).all()
    torch.testing.assert_close(dirty, clean, rtol=1e-5, atol=1e-5)

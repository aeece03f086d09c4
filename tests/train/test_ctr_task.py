"""CTRTask: loss with auxiliary term, metrics equal to the metric functions, predictions frame."""

from __future__ import annotations

import polars as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.metrics.ctr import ctr_metrics
from chronorec.models.base import CTRModel, ModelOutput
from chronorec.train.ctr_task import CTRTask


class Scorer(CTRModel):
    """logit = w * target id / 10 (+ an auxiliary loss when asked)."""

    def __init__(self, aux: float | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.aux = aux

    def forward(self, batch: Batch) -> ModelOutput:
        logits = self.w * batch.target_item.float() / 10 - 1
        aux = None if self.aux is None else self.w * 0 + self.aux
        return ModelOutput(logits=logits, aux_loss=aux)


def _batches() -> list[Batch]:
    out = []
    for s in (2, 0, 1):  # batches out of split order, as a length-sorted loader yields them
        b = synthetic_batch(batch_size=16, n_items=40, seed=s)
        b.index = torch.arange(16) + 16 * s
        out.append(b)
    return out


def test_loss_is_bce_plus_aux() -> None:
    b = _batches()[0]
    task = CTRTask()
    plain = task.loss(Scorer(), b)
    ref = F.binary_cross_entropy_with_logits(0.5 * b.target_item.float() / 10 - 1, b.label)
    assert plain.item() == pytest.approx(ref.item())
    assert task.loss(Scorer(aux=0.25), b).item() == pytest.approx(ref.item() + 0.25)


def test_evaluate_matches_metric_functions_and_restores_mode() -> None:
    batches = _batches()
    model = Scorer().train()
    got = CTRTask(group_names=["head", "tail"]).evaluate(model, batches)
    assert model.training
    labels = torch.cat([b.label for b in batches])
    probs = torch.sigmoid(torch.cat([(0.5 * b.target_item.float() / 10 - 1).double() for b in batches]))
    users = torch.cat([b.user for b in batches])
    groups = torch.cat([b.group for b in batches])
    assert got == ctr_metrics(labels, probs, users, groups, ["head", "tail"])
    assert set(got) == {"gauc", "auc", "logloss", "n", "groups"} and got["n"] == 48


def test_predict_frame() -> None:
    batches = _batches()
    df = CTRTask().predict(Scorer(), batches)
    assert df.columns == ["index", "user", "item", "label", "score"]
    assert df.height == 48 and df.schema["score"] == pl.Float64
    assert df["index"].to_list() == list(range(48))  # back in split order
    by_index = dict(zip(torch.cat([b.index for b in batches]).tolist(),
                        torch.cat([b.target_item for b in batches]).tolist(), strict=True))
    assert df["item"].to_list() == [by_index[i] for i in range(48)]
    assert ((df["score"] > 0) & (df["score"] < 1)).all()

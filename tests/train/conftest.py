"""An in-memory dataset, loader and tiny CTR model, so trainer logic is tested in seconds.

The fake loader honours the real loader's contract: the permutation of an epoch depends only on
(seed, epoch), ``iter_epoch(epoch, start_batch=k)`` starts at batch k of it, and rows are sharded
by rank / world size. The data has a planted pattern (a target whose item appears in the history
is clicked more often), so a few epochs of training visibly raise GAUC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.data.schema import DatasetSchema, GroupSpec
from chronorec.models.base import CTRModel, ModelOutput
from chronorec.train import build
from chronorec.train.config import RunConfig, TrainConfig

N_ITEMS = 30
SIZES = {"train": 600, "valid": 200, "test": 200}


class FakeDataset:
    def __init__(self) -> None:
        self.schema = DatasetSchema(
            name="fake", protocol="ctr-leave-one-out", task="ctr", n_users=60, n_items=N_ITEMS,
            n_events=1000, vocab_sizes={"user": 62, "item": N_ITEMS, "category": 7},
            side_features=["category"], groups=GroupSpec(names=["head", "tail"]),
        )
        self.splits = {s: self._make(n, seed) for seed, (s, n) in enumerate(SIZES.items())}

    @staticmethod
    def _make(n: int, seed: int) -> Batch:
        b = synthetic_batch(batch_size=n, max_len=6, n_items=N_ITEMS, seed=100 + seed)
        g = torch.Generator().manual_seed(200 + seed)
        in_hist = (b.hist_item == b.target_item[:, None]).any(1)
        # half of the targets are copied from the history; those are clicked 90% of the time
        copy = torch.rand(n, generator=g) < 0.5
        b.target_item = torch.where(copy, b.hist_item[:, 0], b.target_item)
        in_hist = in_hist | copy
        p = torch.where(in_hist, 0.9, 0.2)
        b.label = (torch.rand(n, generator=g) < p).float()
        b.user = torch.arange(n) % 60 + 2
        b.group = (b.user % 3 == 0).long()
        b.index = torch.arange(n)
        return b


class FakeLoader:
    def __init__(self, dataset: FakeDataset, split: str, *, batch_size: int, shuffle: bool, seed: int,
                 max_len: int | None, rank: int = 0, world_size: int = 1, bucket: bool = False,
                 groups: list[int] | None = None, window_stride: int | None = None,
                 max_windows: int | None = None) -> None:
        assert groups is None and window_stride is None and max_windows is None, "the fake loader has no groups or windows"
        self.data = dataset.splits[split]
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size

    def _rows(self, epoch: int) -> torch.Tensor:
        n = len(self.data)
        if self.shuffle:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        else:
            perm = torch.arange(n)
        return perm[self.rank :: self.world_size]

    def __len__(self) -> int:
        return -(-len(self._rows(0)) // self.batch_size)

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
        rows = self._rows(epoch)
        for k in range(start_batch, len(self)):
            yield self.data.select(rows[k * self.batch_size : (k + 1) * self.batch_size])


class TinyCTR(CTRModel):
    """Dot product of a target embedding with the mean history embedding; dropout exercises the RNG."""

    def __init__(self, schema: DatasetSchema, dim: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(schema.item_vocab, dim, padding_idx=0)
        self.drop = nn.Dropout(0.2)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, batch: Batch) -> ModelOutput:
        h = self.emb(batch.hist_item) * batch.mask[..., None]  # [B, L, D]
        u = h.sum(1) / batch.lengths.clamp(min=1)[:, None]  # [B, D]
        v = self.drop(self.emb(batch.target_item))  # [B, D]
        return ModelOutput(logits=(u * v).sum(-1) + self.bias)


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> FakeDataset:
    """Route the trainer's dataset, loader and model factories to the fakes above."""
    ds = FakeDataset()
    monkeypatch.setattr(build, "open_dataset", lambda path: ds)
    monkeypatch.setattr(build, "make_loader", lambda dataset, split, **kw: FakeLoader(dataset, split, **kw))
    monkeypatch.setattr(build, "make_model", lambda name, schema, options: TinyCTR(schema, **options))
    return ds


@pytest.fixture
def fake_config(tmp_path: Path) -> Callable[..., RunConfig]:
    """A factory of run configs for the fake data: ``fake_config(epochs=2, eval_unit="step")``."""

    def make(**train: object) -> RunConfig:
        base = {"epochs": 3, "batch_size": 64, "lr": 0.05, "checkpoint_every": 4, "seed": 3, "threads": 1}
        return RunConfig(name="fake-tiny", data=str(tmp_path / "data"), model="tiny", model_options={"dim": 8},
                         train=TrainConfig.model_validate({**base, **train}))

    return make

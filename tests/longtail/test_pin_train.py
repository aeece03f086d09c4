"""PIN end to end through the trainer: two phases, frozen backbone, per-group metrics, reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from chronorec.longtail import PluginModel
from chronorec.train import launch
from chronorec.train.build import run_config, train_sample_share
from chronorec.train.checkpoint import load_checkpoint
from chronorec.train.config import parse_overrides
from chronorec.train.runs import load_run

FAST = ["train.batch_size=256", "train.threads=1", "train.checkpoint_every=0", "model.dim=8"]


def _train(data: Path, model: str, tmp: Path, sets: list[str], name: str) -> Path:
    extra = ["model.mlp=[16]"] if model != "sasrec" else []
    cfg = run_config(data, model, parse_overrides(FAST + extra + sets), seed=0, epochs=1, name=name)
    return launch.train(cfg, out=tmp, verbose=False)


def test_pin_two_phases_freeze_backbone_and_report_groups(tiny_ctr_dataset: Path, tmp_path: Path) -> None:
    run = _train(tiny_ctr_dataset, "din", tmp_path, ["longtail.strategy=pin", "longtail.plugin_epochs=1"], "pin")
    backbone = run / "backbone"
    assert (backbone / "metrics.json").is_file() and (run / "metrics.json").is_file()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["longtail"]["phase"] == "plugins" and cfg["longtail"]["init_from"].endswith("best.pt")
    assert json.loads((backbone / "config.json").read_text())["longtail"]["phase"] == "backbone"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]["groups"]) == {"head", "tail"}
    assert all(0.0 <= metrics["test"]["groups"][g]["auc"] <= 1.0 for g in ("head", "tail"))

    loaded = load_run(run)
    assert isinstance(loaded.model, PluginModel)
    # stage two froze the backbone: its weights equal stage one's best checkpoint
    stage1 = load_checkpoint(backbone / "checkpoints" / "best.pt")["model"]
    for name, value in loaded.model.base.state_dict().items():
        torch.testing.assert_close(value, stage1[name], msg=name)
    # and the plugins moved away from the shared head they started from
    moved = [not torch.allclose(p, stage1[n]) for n, p in
             ((n, loaded.model.plugins[1][n.replace(".", "__")]) for n in loaded.model.head_params)]
    assert any(moved)


@pytest.mark.parametrize("strategy", ["reweight", "tail_only"])
def test_longtail_baselines_train(tiny_ctr_dataset: Path, tmp_path: Path, strategy: str) -> None:
    run = _train(tiny_ctr_dataset, "tin", tmp_path, [f"longtail.strategy={strategy}"], strategy)
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]["groups"]) == {"head", "tail"}
    assert json.loads((run / "config.json").read_text())["longtail"]["strategy"] == strategy


def test_sample_share_sums_to_one(tiny_ctr_dataset: Path, tiny_nextitem_dataset: Path) -> None:
    from chronorec.data.dataset import PreparedDataset

    for path in (tiny_ctr_dataset, tiny_nextitem_dataset):
        share = train_sample_share(PreparedDataset.open(path))
        assert len(share) == 2 and abs(sum(share) - 1.0) < 1e-9
        # head users are the most active: their share of terms exceeds their share of users
        users = PreparedDataset.open(path).schema.groups.user_share
        assert share[0] > users[0]


@pytest.mark.parametrize("extra", [[], ["model.item_bias=true"]], ids=["plain", "item-bias"])
def test_pin_on_next_item_model(tiny_nextitem_dataset: Path, tmp_path: Path, extra: list[str]) -> None:
    run = _train(tiny_nextitem_dataset, "sasrec", tmp_path,
                 ["longtail.strategy=pin", "longtail.plugin_epochs=1", *extra], "pin-sasrec")
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]["groups"]) == {"head", "tail"}
    model = load_run(run).model
    assert isinstance(model, PluginModel)
    assert (model.base.item_bias is not None) == bool(extra)  # the score bias reaches the plugin stage


@pytest.mark.parametrize("fixture", ["tiny_ctr_dataset", "tiny_nextitem_dataset"])
def test_one_group_training_loads_only_that_groups_rows(fixture: str, request: pytest.FixtureRequest) -> None:
    """head_only / tail_only filter rows in the loader: every training batch is all of one group,
    and together the batches cover exactly that group's rows (samples, or windows of sequences)."""
    from chronorec.data.dataset import PreparedDataset
    from chronorec.train.build import make_loader, train_groups

    path = request.getfixturevalue(fixture)
    ds = PreparedDataset.open(path)
    full = make_loader(ds, "train", batch_size=64, shuffle=True, seed=0, max_len=None)
    for strategy, group in (("head_only", 0), ("tail_only", 1)):
        cfg = run_config(path, "din" if "ctr" in fixture else "sasrec", parse_overrides([f"longtail.strategy={strategy}"]),
                         seed=0, epochs=1, name=strategy)
        assert train_groups(cfg, ds.schema) == [group]
        loader = make_loader(ds, "train", batch_size=64, shuffle=True, seed=0, max_len=None, groups=[group])
        seen = torch.cat([b.group for b in loader.iter_epoch(0)])
        assert bool((seen == group).all())
        expected = sum(int((b.group == group).sum()) for b in full.iter_epoch(0))
        assert seen.numel() == expected > 0
    joint = run_config(path, "din" if "ctr" in fixture else "sasrec", parse_overrides([]), seed=0, epochs=1, name="j")
    assert train_groups(joint, ds.schema) is None

"""``--set task.KEY=VALUE`` is validated before training: a wrong type, range, unknown key or a
selection metric the task does not compute is one error naming the option, never a silent
misreading (``exclude_seen=maybe`` on) or a traceback after the first epoch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chronorec.errors import ChronorecError
from chronorec.train.task_options import check_task_options


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"exclude_seen": "maybe"}, "task.exclude_seen 'maybe'"),
        ({"n_negatives": "abc"}, "task.n_negatives 'abc'"),
        ({"n_negatives": -5}, "task.n_negatives -5"),
        ({"ks": "abc"}, "task.ks 'abc'"),
        ({"ks": [0]}, "task.ks [0]"),
        ({"select_metric": "hit@7"}, "select_metric 'hit@7' is not computed"),
        ({"ks": [5, 20]}, "select_metric 'ndcg@10' is not computed"),
        ({"item_counts": 1}, "task.item_counts 1: not an option of the next_item task"),
        ({"loss_precision": "fp16"}, "task.loss_precision 'fp16'"),
        ({"loss_norm": "tokens"}, "task.loss_norm 'tokens'"),
    ],
)
def test_bad_next_item_options(options: dict, says: str) -> None:
    with pytest.raises(ChronorecError, match=says.replace("[", r"\[").replace("]", r"\]")):
        check_task_options("next_item", options)


def test_good_options_are_coerced_and_only_given_keys_kept() -> None:
    got = check_task_options("next_item", {"exclude_seen": "true", "select_metric": "mrr@20_exclude_seen"})
    assert got == {"exclude_seen": True, "select_metric": "mrr@20_exclude_seen"}
    assert check_task_options("ctr", {"gauc_weight": "clicks"}) == {"gauc_weight": "clicks"}
    assert check_task_options("next_item", None) == {}
    assert check_task_options("ctr", {"select_metric": "auc"}) == {"select_metric": "auc"}
    with pytest.raises(ChronorecError, match="not an option of the ctr task"):
        check_task_options("ctr", {"exclude_seen": True})
    with pytest.raises(ChronorecError, match="select_metric"):
        check_task_options("ctr", {"select_metric": "logloss"})  # lower is better: not a selection metric


def test_train_cli_refuses_bad_task_option_before_training(tiny_nextitem_dataset: Path, tmp_path: Path,
                                                           cli_error: Callable[[list[str]], str]) -> None:
    err = cli_error(["train", "--data", str(tiny_nextitem_dataset), "--model", "sasrec", "--set", "model.dim=8",
                     "--set", "train.threads=1", "--epochs", "1", "--quiet", "--set", "task.select_metric=bogus",
                     "--out", str(tmp_path / "runs")])
    assert "select_metric 'bogus'" in err
    assert not any((tmp_path / "runs").rglob("metrics.jsonl"))  # no epoch was trained

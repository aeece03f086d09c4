"""RecBole configuration shared by recbole_prepare.py and recbole_train.py (RecBole venv only).

One place that says how RecBole is configured for the comparison with chronorec:
leave-last-out split in time order (``LS: valid_and_test``, ``order: TO``), full ranking,
history capped at ``MAX_ITEM_LIST_LENGTH``, cross-entropy over all items (no negative sampling),
NDCG/Hit/MRR@10 with NDCG@10 as the validation metric, CPU only, no filtering of users or items.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

# Architecture shared by all four models: hidden 64, 2 layers, 2 heads (GRU4Rec: 2 GRU layers).
MODEL_SIZES: dict[str, Any] = {
    "hidden_size": 64,
    "embedding_size": 64,  # GRU4Rec's item embedding
    "inner_size": 256,
    "n_layers": 2,
    "num_layers": 2,  # GRU4Rec's GRU depth
    "n_heads": 2,
}


def add_common_args(ap: argparse.ArgumentParser) -> None:
    """Command-line options both RecBole runners take."""
    ap.add_argument("--data-path", type=Path, required=True,
                    help="folder holding <dataset>/<dataset>.inter (RecBole atomic files)")
    ap.add_argument("--dataset", required=True, help="dataset name (sub-folder and file stem)")
    ap.add_argument("--max-len", type=int, default=50, help="MAX_ITEM_LIST_LENGTH")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--batch-size", type=int, default=2048, help="train_batch_size (RecBole default 2048)")
    ap.add_argument("--eval-batch-size", type=int, default=4096, help="eval_batch_size (RecBole default 4096)")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where RecBole may write checkpoints/logs (default: a fresh temp dir)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=YAML",
                    help="extra RecBole config entry, value parsed as YAML (repeatable)")


def build_config_dict(args: argparse.Namespace, epochs: int = 1) -> dict[str, Any]:
    """RecBole ``config_dict`` for the leave-last-out next-item comparison."""
    import yaml

    # Resolved before the chdir below: a relative --data-path would otherwise name a folder under the
    # workdir, and RecBole, finding nothing there, silently loads its own bundled ml-100k example.
    data_path = args.data_path.resolve()
    inter = data_path / args.dataset / f"{args.dataset}.inter"
    if not inter.is_file():
        raise SystemExit(f"error: {inter}: no such atomic file (--data-path / --dataset)")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="recbole-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # RecBole writes log_tensorboard/ (and log/) relative to the working directory.
    os.chdir(workdir)
    cfg: dict[str, Any] = {
        "data_path": str(data_path),
        "checkpoint_dir": str(workdir / "saved"),
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "metrics": ["NDCG", "Hit", "MRR"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "epochs": epochs,
        "train_batch_size": args.batch_size,
        "eval_batch_size": args.eval_batch_size,
        "use_gpu": False,
        "show_progress": False,
        "state": "WARNING",
        "seed": args.seed,
        "reproducibility": True,
        "worker": 0,
        "log_wandb": False,
        "save_dataset": False,
        "save_dataloaders": False,
        **MODEL_SIZES,
    }
    for item in args.overrides:
        key, _, value = item.partition("=")
        cfg[key.strip()] = yaml.safe_load(value)
    return cfg


def dataset_stats(dataset: Any, train: Any, valid: Any, test: Any) -> dict[str, Any]:
    """Sizes of the RecBole dataset and its splits (user/item counts exclude RecBole's padding id 0)."""
    return {
        "n_users": int(dataset.user_num - 1),
        "n_items": int(dataset.item_num - 1),
        "train_samples": len(train.dataset),
        "valid_users": len(valid.dataset),
        "test_users": len(test.dataset),
    }

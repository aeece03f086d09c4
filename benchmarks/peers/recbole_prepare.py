"""RecBole data preparation cost: time and peak RSS of create_dataset + data_preparation.

Builds the RecBole ``SequentialDataset`` for SASRec from atomic files and the leave-last-out
split (train / valid / test dataloaders, full ranking, ``MAX_ITEM_LIST_LENGTH`` 50), which is what
RecBole does before its first training step; no model is built, nothing is trained.
Reported (one JSON line): ``import_s``, ``config_s``, ``create_dataset_s``, ``data_preparation_s``,
``prepare_s`` (their sum), the same in process CPU seconds (``*_cpu_s``, steadier
on a shared machine), ``rss_before_mb`` (after imports), ``peak_rss_mb``, dataset sizes.

    benchmarks/.venvs/recbole/bin/python benchmarks/peers/recbole_prepare.py \
        --data-path /work/shared/data --dataset ml-100k
"""

from __future__ import annotations

import argparse
import logging
import warnings

from peerutil import Timer, current_rss_mb, emit, quiet_stdout, set_threads
from recbole_setup import add_common_args, build_config_dict, dataset_stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--model", default="SASRec", help="model whose dataset type is built")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    with Timer() as t_imp:
        import recbole
        import torch
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.utils import init_seed
    set_threads(args.threads)
    rss_before = current_rss_mb()

    with quiet_stdout():
        with Timer() as t_cfg:
            config = Config(model=args.model, dataset=args.dataset, config_dict=build_config_dict(args))
            init_seed(config["seed"], config["reproducibility"])
        set_threads(args.threads)
        with Timer() as t_ds:
            dataset = create_dataset(config)
        n_inter = int(dataset.inter_num)
        with Timer() as t_prep:
            train, valid, test = data_preparation(config, dataset)

    emit({
        "runner": "recbole_prepare",
        "library": f"recbole {recbole.__version__}",
        "dataset": args.dataset,
        "model": args.model,
        "max_len": args.max_len,
        "import_s": round(t_imp.seconds, 3),
        "config_s": round(t_cfg.seconds, 3),
        "create_dataset_s": round(t_ds.seconds, 3),
        "data_preparation_s": round(t_prep.seconds, 3),
        "prepare_s": round(t_ds.seconds + t_prep.seconds, 3),
        "create_dataset_cpu_s": round(t_ds.cpu_seconds, 3),
        "data_preparation_cpu_s": round(t_prep.cpu_seconds, 3),
        "prepare_cpu_s": round(t_ds.cpu_seconds + t_prep.cpu_seconds, 3),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(current_rss_mb(), 1),
        "threads": torch.get_num_threads(),
        **dataset_stats(dataset, train, valid, test),
        "n_inter": n_inter,
    })


if __name__ == "__main__":
    main()

"""torch-rechub 0.9.0 DIN on a materialised CTR export: training throughput, RSS and test AUC.

Input: a folder with train/valid/test (.parquet or .csv) holding user, item, category, label,
hist_item, hist_category (see ctrdata.py); histories are cut to the most recent ``--max-len`` and
right-padded with 0. Model: ``torch_rechub.models.ranking.DIN`` with item and category
embeddings of ``--emb-dim`` each (padding row 0 fixed at zero; each history field shares its
target's table), one attention unit per field (item, category) with MLP ``--att-hidden`` and
``--att-activation``, DNN ``--dnn-hidden``; trained with ``CTRTrainer.train_one_epoch``
(BCE, Adam lr ``--lr``, no weight decay), data through ``DataGenerator`` (batch ``--batch-size``,
shuffled, no workers). Library constraints, kept as they are: the DNN's activation is always Dice
and every MLP layer has BatchNorm; the attention does not mask padding (zero embeddings at
padding contribute nothing to the sum); the DNN input is [pooled history, target, profile] with
no product term; and the model needs at least one non-sequence "profile" field, so without
``--with-user`` a constant one-value field stands in (a learned bias vector).

Reported (one JSON line): ``train_samples_per_s`` (training samples x epochs / training wall
time), ``train_s_epochs``, ``train_cpu_s_epochs``, ``valid_auc_epochs``, ``test_auc``,
``test_logloss`` (best-on-valid-AUC epoch, state kept in memory), ``load_s``, ``peak_rss_mb``.

    benchmarks/.venvs/rechub/bin/python benchmarks/peers/rechub_din.py \
        --data benchmarks/results/ctr/ml-100k --epochs 1
"""

from __future__ import annotations

import copy
import logging
import os
import time
import warnings

import numpy as np
from ctrdata import CtrSplit, load_export, vocab_sizes
from peerutil import Timer, current_rss_mb, din_arg_parser, din_result, emit, quiet_stdout, set_threads


def features(split: CtrSplit, with_user: bool) -> dict[str, np.ndarray]:
    """torch-rechub's input dict (numpy arrays, one row per sample)."""
    x = {"item": split.item, "category": split.category,
         "hist_item": split.hist_item, "hist_category": split.hist_category}
    if with_user:
        x["user"] = split.user
    else:
        x["const"] = np.zeros(len(split), dtype=np.int64)
    return x


def main() -> None:
    t_start = time.perf_counter()
    ap = din_arg_parser(__doc__.splitlines()[0], "--att-activation",
                        "attention MLP activation (sigmoid|dice|relu|prelu); the DNN uses Dice")
    ap.add_argument("--with-user", action="store_true", help="add a user-id embedding as the profile field")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("TQDM_DISABLE", "1")  # the trainer's progress bars

    import torch
    import torch_rechub
    from torch.utils.data import DataLoader
    from torch_rechub.basic.features import SequenceFeature, SparseFeature
    from torch_rechub.models.ranking import DIN
    from torch_rechub.trainers import CTRTrainer
    from torch_rechub.utils.data import DataGenerator, TorchDataset

    set_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    with Timer() as t_load:
        splits = load_export(args.data, args.max_len)
    n_item, n_cat = vocab_sizes(splits)
    rss_load = current_rss_mb()
    train, valid, test = splits["train"], splits["valid"], splits["test"]

    emb = args.emb_dim
    if args.with_user:
        n_user = max(int(s.user.max()) for s in splits.values()) + 1
        profile = [SparseFeature("user", n_user, embed_dim=emb)]
    else:
        profile = [SparseFeature("const", 1, embed_dim=emb)]
    targets = [SparseFeature("item", n_item, embed_dim=emb, padding_idx=0),
               SparseFeature("category", n_cat, embed_dim=emb, padding_idx=0)]
    histories = [SequenceFeature("hist_item", n_item, embed_dim=emb, pooling="concat",
                                 shared_with="item", padding_idx=0),
                 SequenceFeature("hist_category", n_cat, embed_dim=emb, pooling="concat",
                                 shared_with="category", padding_idx=0)]
    model = DIN(features=profile, history_features=histories, target_features=targets,
                mlp_params={"dims": args.dnn_hidden},
                attention_mlp_params={"dims": args.att_hidden, "activation": args.att_activation})
    n_params = sum(p.numel() for p in model.parameters())

    with quiet_stdout():
        # The library's data path for training; evaluation loaders only take a bigger batch.
        train_dl, _, _ = DataGenerator(features(train, args.with_user), train.label).generate_dataloader(
            x_val=features(valid, args.with_user), y_val=valid.label,
            x_test=features(test, args.with_user), y_test=test.label,
            batch_size=args.batch_size)
        valid_dl, test_dl = (
            DataLoader(TorchDataset(features(s, args.with_user), s.label), batch_size=args.eval_batch_size)
            for s in (valid, test))
        trainer = CTRTrainer(model, optimizer_params={"lr": args.lr, "weight_decay": 0.0},
                             n_epoch=args.epochs, device="cpu", model_path=None)

    train_s, train_cpu, valid_auc = [], [], []
    best_auc, best_state = float("-inf"), None
    with quiet_stdout():
        for _ in range(args.epochs):
            with Timer() as t:
                trainer.train_one_epoch(train_dl)
            train_s.append(t.seconds)
            train_cpu.append(t.cpu_seconds)
            auc = trainer.evaluate(model, valid_dl)
            valid_auc.append(float(auc))
            if auc > best_auc:
                best_auc, best_state = auc, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)
        with Timer() as t_test:
            pred = np.asarray(trainer.predict(model, test_dl), dtype=np.float64).ravel()

    emit({
        "runner": "rechub_din",
        "library": f"torch-rechub {getattr(torch_rechub, '__version__', '?')}",
        **din_result(args, train_rows=len(train), train_s=train_s, train_cpu=train_cpu,
                     valid_auc=valid_auc, test_label=test.label, test_pred=pred,
                     test_s=t_test.seconds, load_s=t_load.seconds, rss_after_load_mb=rss_load,
                     wall_s=time.perf_counter() - t_start),
        "att_activation": args.att_activation,
        "profile_field": "user" if args.with_user else "const",
        "n_params": n_params,
        "threads": torch.get_num_threads(),
    })


if __name__ == "__main__":
    main()

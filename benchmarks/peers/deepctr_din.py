"""DeepCTR-Torch 0.3.0 DIN on a materialised CTR export: training throughput, RSS and test AUC.

Input: a folder with train/valid/test (.parquet or .csv) holding user, item, category, label,
hist_item, hist_category (see ctrdata.py); histories are cut to the most recent ``--max-len`` and
right-padded. Model: ``deepctr_torch.models.DIN`` with item and category embeddings of
``--emb-dim`` each (the target and the history share each table; the query/key of the attention
is their concatenation, 2 x 64 = 128), attention MLP ``--att-hidden`` and DNN ``--dnn-hidden``
with ``--activation`` in both, no user embedding, no L2 on embeddings, BCE, Adam lr ``--lr``,
batch ``--batch-size``, shuffled, trained through ``model.fit`` one epoch at a time.
DeepCTR's DIN differs from chronorec's: its DNN input is [target, attention-pooled history] with
no product term, its loss is summed (not averaged) over the batch, and every feature, ids
included, is fed as one float32 matrix.

Reported (one JSON line): ``train_samples_per_s`` (training samples x epochs / training wall
time), ``train_s_epochs``, ``train_cpu_s_epochs``, ``valid_auc_epochs``, ``test_auc``,
``test_logloss`` (best-on-valid-AUC epoch, state kept in memory), ``load_s``, ``peak_rss_mb``.

    benchmarks/.venvs/deepctr/bin/python benchmarks/peers/deepctr_din.py \
        --data benchmarks/results/ctr/ml-100k --epochs 1
"""

from __future__ import annotations

import copy
import logging
import time
import types
import warnings

import numpy as np
from ctrdata import CtrSplit, load_export, vocab_sizes
from peerutil import Timer, current_rss_mb, din_arg_parser, din_result, emit, quiet_stdout, set_threads


def import_deepctr() -> types.ModuleType:
    """Import deepctr_torch without its import-time version check hitting the network.

    deepctr_torch/__init__.py starts a thread that GETs PyPI's JSON for the package; requests.get
    is replaced by a stub answering 'not found' (which the check ignores silently) and left so,
    since the thread may run late and nothing else here uses requests.
    """
    import requests

    requests.get = lambda *a, **kw: types.SimpleNamespace(status_code=404, text="")
    import deepctr_torch

    return deepctr_torch


def features(split: CtrSplit) -> dict[str, np.ndarray]:
    """DeepCTR's input dict: target ids, padded histories and the history length."""
    return {"item": split.item, "category": split.category,
            "hist_item": split.hist_item, "hist_category": split.hist_category,
            "seq_length": split.hist_len}


def main() -> None:
    t_start = time.perf_counter()
    ap = din_arg_parser(__doc__.splitlines()[0])
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    import torch
    from sklearn.metrics import roc_auc_score

    deepctr_torch = import_deepctr()
    from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat
    from deepctr_torch.models import DIN

    set_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    with Timer() as t_load:
        splits = load_export(args.data, args.max_len)
    n_item, n_cat = vocab_sizes(splits)
    rss_load = current_rss_mb()
    train, valid, test = splits["train"], splits["valid"], splits["test"]

    emb = args.emb_dim
    columns = [
        SparseFeat("item", n_item, embedding_dim=emb),
        SparseFeat("category", n_cat, embedding_dim=emb),
        VarLenSparseFeat(SparseFeat("hist_item", n_item, embedding_dim=emb, embedding_name="item"),
                         maxlen=args.max_len, length_name="seq_length"),
        VarLenSparseFeat(SparseFeat("hist_category", n_cat, embedding_dim=emb, embedding_name="category"),
                         maxlen=args.max_len, length_name="seq_length"),
    ]
    act = "Dice" if args.activation.lower() == "dice" else args.activation
    with quiet_stdout():
        model = DIN(columns, ["item", "category"], dnn_hidden_units=args.dnn_hidden, dnn_activation=act,
                    att_hidden_size=args.att_hidden, att_activation=act, l2_reg_embedding=0.0,
                    seed=args.seed, task="binary", device="cpu")
        model.compile(torch.optim.Adam(model.parameters(), lr=args.lr), "binary_crossentropy")
    n_params = sum(p.numel() for p in model.parameters())

    x_train, y_train = features(train), train.label
    train_s, train_cpu, valid_auc = [], [], []
    best_auc, best_state = float("-inf"), None
    for _ in range(args.epochs):
        with quiet_stdout(), Timer() as t:
            model.fit(x_train, y_train, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=True)
        train_s.append(t.seconds)
        train_cpu.append(t.cpu_seconds)
        auc = roc_auc_score(valid.label, model.predict(features(valid), args.eval_batch_size).ravel())
        valid_auc.append(float(auc))
        if auc > best_auc:
            best_auc, best_state = auc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    with Timer() as t_test:
        pred = model.predict(features(test), args.eval_batch_size).ravel().astype(np.float64)

    emit({
        "runner": "deepctr_din",
        "library": f"deepctr-torch {deepctr_torch.__version__}",
        **din_result(args, train_rows=len(train), train_s=train_s, train_cpu=train_cpu,
                     valid_auc=valid_auc, test_label=test.label, test_pred=pred,
                     test_s=t_test.seconds, load_s=t_load.seconds, rss_after_load_mb=rss_load,
                     wall_s=time.perf_counter() - t_start),
        "activation": args.activation,
        "n_params": n_params,
        "threads": torch.get_num_threads(),
    })


if __name__ == "__main__":
    main()

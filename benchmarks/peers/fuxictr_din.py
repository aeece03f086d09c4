"""FuxiCTR 2.3.10 DIN on a materialised CTR export: training throughput, RSS and test AUC.

Input: a folder with train/valid/test (.parquet or .csv) holding user, item, category, label,
hist_item, hist_category (see ctrdata.py); histories are cut to the most recent ``--max-len``.
Model: the wheel's own ``model_zoo.LongCTR.DIN.DIN`` (a ``fuxictr.pytorch.models.BaseModel``
with ``FeatureEmbedding``, ``DIN_Attention`` and ``MLP_Block`` from ``fuxictr.pytorch.layers``),
imported unchanged. Its ``FeatureMap`` is built in memory: two item-side categorical features,
``item_id`` and ``cate_id``, ``--emb-dim`` each with padding index 0 (the target and the history
share each table; the attention query/key is their concatenation, 2 x 64 = 128), plus the meta
columns the LongCTR collator reads (``user_index``, ``item_index``, ``seq_len``). Attention MLP
``--att-hidden`` and DNN ``--dnn-hidden`` with ``--activation`` in both, no user embedding, no
regularizer, no dropout or BatchNorm, BCE (batch mean), Adam lr ``--lr``.

Data go through FuxiCTR's own LongCTR path, not a copy of it: ``ParquetDataset`` (all columns
stacked into one array, one row per ``__getitem__``) and ``BatchCollator`` (default_collate,
history lookup by ``user_index`` cut to ``seq_len``, ``pad_sequences`` to the batch's longest
history, item features looked up by position in an item table), in a plain torch ``DataLoader``
(batch ``--batch-size``, shuffled), exactly as ``LongCTRDataLoader`` assembles them but with
``--num-workers`` (default 0: the collation runs in the timed process, like the other peers'
loaders) and with its Parquet inputs written to in-memory buffers rather than files, since
``LongCTRDataLoader`` only takes paths. The LongCTR layout keeps each user's sequence once and a
sample's history is a prefix of it; the export has materialised histories instead, so every
sample is its own "user" whose sequence is its (already cut) history. Item features come from an
item table, so a category must be a property of the item: ``category_conflicts`` in the output
counts (item, category) pairs that disagree with the table (0 on the ml-100k exports).

Training is ``model.train_epoch`` (FuxiCTR's loop and ``DIN.train_step``: gradient-norm clipping
at 10, FuxiCTR's ``fit`` default) one epoch at a time, with FuxiCTR's in-loop evaluation,
checkpoint file, learning-rate decay on plateau and early stopping left out (``fit`` would do
them); as in the other runners, validation AUC is taken after each epoch and the best state is
kept in memory.

FuxiCTR's DIN differs from chronorec's: its attention weights are the activation unit's raw
outputs, masked but neither scaled nor softmax-normalised (``din_use_softmax=False``, the DIN
paper's form); its DNN input is [target, attention-pooled history] with no product term and no
projection of the pooled vector; histories are left-padded; its gradients are clipped at norm 10;
and the item and category embeddings are looked up for every history position (no de-duplication
of distinct items).

Reported (one JSON line): ``train_samples_per_s`` (training samples x epochs / training wall
time), ``train_s_epochs``, ``train_cpu_s_epochs``, ``valid_auc_epochs``, ``test_auc``,
``test_logloss`` (best-on-valid-AUC epoch, state kept in memory), ``load_s``, ``peak_rss_mb``.

    benchmarks/.venvs/fuxictr/bin/python benchmarks/peers/fuxictr_din.py \
        --data benchmarks/results/ctr/ml-100k --epochs 1
"""

from __future__ import annotations

import copy
import io
import logging
import tempfile
import time
import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ctrdata import CtrSplit, load_export, vocab_sizes
from peerutil import Timer, current_rss_mb, din_arg_parser, din_result, emit, quiet_stdout, set_threads


def parquet_buffer(table: pa.Table) -> io.BytesIO:
    """A Parquet file in memory, for the FuxiCTR readers that call ``pd.read_parquet(path)``."""
    buf = io.BytesIO()
    pq.write_table(table, buf)
    buf.seek(0)
    return buf


def sample_table(split: CtrSplit) -> pa.Table:
    """LongCTR's sample file: each row is its own 'user' (user_index = row), its history length."""
    n = len(split)
    return pa.table({"user_index": np.arange(n, dtype=np.int64), "item_index": split.item,
                     "seq_len": split.hist_len.astype(np.int64), "label": split.label.astype(np.int64)})


def user_table(split: CtrSplit) -> pa.Table:
    """LongCTR's user_info file: ``full_item_seq`` per user_index (here: each sample's history)."""
    keep = np.arange(split.hist_item.shape[1]) < split.hist_len[:, None]
    offsets = np.zeros(len(split) + 1, dtype=np.int32)
    np.cumsum(split.hist_len, out=offsets[1:])
    seqs = pa.ListArray.from_arrays(pa.array(offsets), pa.array(split.hist_item[keep]))
    return pa.table({"full_item_seq": seqs})


def item_table(splits: dict[str, CtrSplit], n_item: int) -> tuple[pa.Table, int]:
    """LongCTR's item_info file: row k = item k (the collator looks items up by position).

    Returns the table and the number of (item, category) occurrences that disagree with it.
    """
    items = [np.concatenate([s.item, s.hist_item[s.hist_item > 0]]) for s in splits.values()]
    cats = [np.concatenate([s.category, s.hist_category[s.hist_item > 0]]) for s in splits.values()]
    item, cat = np.concatenate(items), np.concatenate(cats)
    cate_of = np.zeros(n_item, dtype=np.int64)
    cate_of[item] = cat  # last occurrence wins
    conflicts = int((cate_of[item] != cat).sum())
    ids = np.arange(n_item, dtype=np.int64)
    return pa.table({"item_index": ids, "item_id": ids, "cate_id": cate_of}), conflicts


def build_feature_map(n_item: int, n_cat: int, emb: int, work_dir: str) -> Any:
    """FuxiCTR's FeatureMap, filled in memory (what FeatureMap.load reads from feature_map.json)."""
    from fuxictr.features import FeatureMap

    fmap = FeatureMap("ctr_export", work_dir)
    fmap.labels = ["label"]
    fmap.default_emb_dim = emb
    fmap.features.update({
        "user_index": {"type": "meta"},
        "item_index": {"type": "meta"},
        "seq_len": {"type": "meta"},
        "item_id": {"type": "categorical", "source": "item", "vocab_size": n_item,
                    "embedding_dim": emb, "padding_idx": 0},
        "cate_id": {"type": "categorical", "source": "item", "vocab_size": n_cat,
                    "embedding_dim": emb, "padding_idx": 0},
    })
    fmap.num_fields = fmap.get_num_fields()
    fmap.total_features = n_item + n_cat
    fmap.set_column_index()
    return fmap


def make_loader(fmap: Any, split: CtrSplit, items: io.BytesIO, max_len: int, batch_size: int,
                shuffle: bool, num_workers: int) -> Any:
    """FuxiCTR's ParquetDataset + BatchCollator in a DataLoader, as LongCTRDataLoader builds it."""
    from model_zoo.LongCTR.longctr_dataloader import BatchCollator, ParquetDataset
    from torch.utils.data import DataLoader

    dataset = ParquetDataset(parquet_buffer(sample_table(split)))
    items.seek(0)
    collate = BatchCollator(fmap, max_len, dataset.column_index, parquet_buffer(user_table(split)),
                            items, padding="pre")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      collate_fn=collate)


def main() -> None:
    t_start = time.perf_counter()
    ap = din_arg_parser(__doc__.splitlines()[0])
    ap.add_argument("--max-grad-norm", type=float, default=10.0, help="FuxiCTR's fit default")
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (LongCTRDataLoader's default is 1)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    import fuxictr
    import torch
    from fuxictr.pytorch.torch_utils import seed_everything
    from model_zoo.LongCTR.DIN import DIN
    from sklearn.metrics import roc_auc_score

    set_threads(args.threads)
    seed_everything(args.seed)

    with Timer() as t_load:
        splits = load_export(args.data, args.max_len)
    n_item, n_cat = vocab_sizes(splits)
    rss_load = current_rss_mb()
    train, valid, test = splits["train"], splits["valid"], splits["test"]

    emb = args.emb_dim
    work_dir = tempfile.mkdtemp(prefix="fuxictr_din_")  # model_root: fit's checkpoint dir, unused
    with Timer() as t_data:
        fmap = build_feature_map(n_item, n_cat, emb, work_dir)
        items, conflicts = item_table(splits, n_item)
        items_buf = parquet_buffer(items)
        train_loader = make_loader(fmap, train, items_buf, args.max_len, args.batch_size, True,
                                   args.num_workers)
        valid_loader = make_loader(fmap, valid, items_buf, args.max_len, args.eval_batch_size,
                                   False, args.num_workers)
        test_loader = make_loader(fmap, test, items_buf, args.max_len, args.eval_batch_size,
                                  False, args.num_workers)

    with quiet_stdout():
        model = DIN(fmap, model_id="DIN", gpu=-1, task="binary_classification",
                    dnn_hidden_units=args.dnn_hidden, dnn_activations=args.activation,
                    attention_hidden_units=args.att_hidden,
                    attention_hidden_activations=args.activation, attention_output_activation=None,
                    attention_dropout=0, learning_rate=args.lr, embedding_dim=emb, net_dropout=0,
                    batch_norm=False, din_use_softmax=False, embedding_regularizer=None,
                    net_regularizer=None, optimizer="adam", loss="binary_crossentropy",
                    metrics=["AUC", "logloss"], model_root=work_dir, verbose=0)
    n_params = sum(p.numel() for p in model.parameters())

    # the state BaseModel.fit sets up before its epoch loop; no in-loop evaluation
    model._max_gradient_norm = args.max_grad_norm
    model._eval_steps = 1 << 62
    model._stop_training = False
    model._total_steps = 0
    train_s, train_cpu, valid_auc = [], [], []
    best_auc, best_state = float("-inf"), None
    for epoch in range(args.epochs):
        model._epoch_index = epoch
        with quiet_stdout(), Timer() as t:
            model.train_epoch(train_loader)
        train_s.append(t.seconds)
        train_cpu.append(t.cpu_seconds)
        auc = roc_auc_score(valid.label, model.predict(valid_loader))
        valid_auc.append(float(auc))
        if auc > best_auc:
            best_auc, best_state = auc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    with Timer() as t_test:
        pred = model.predict(test_loader).astype(np.float64)

    emit({
        "runner": "fuxictr_din",
        "library": f"fuxictr {fuxictr.__version__}",
        **din_result(args, train_rows=len(train), train_s=train_s, train_cpu=train_cpu,
                     valid_auc=valid_auc, test_label=test.label, test_pred=pred,
                     test_s=t_test.seconds, load_s=t_load.seconds, rss_after_load_mb=rss_load,
                     wall_s=time.perf_counter() - t_start),
        "activation": args.activation,
        "max_grad_norm": args.max_grad_norm,
        "num_workers": args.num_workers,
        "category_conflicts": conflicts,
        "n_params": n_params,
        "fuxictr_data_s": round(t_data.seconds, 3),
        "threads": torch.get_num_threads(),
    })


if __name__ == "__main__":
    main()

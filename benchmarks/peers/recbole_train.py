"""RecBole next-item training cost and accuracy: SASRec | GRU4Rec | BERT4Rec | LightSANs.

Trains one RecBole sequential model on atomic files with the leave-last-out split (see
recbole_setup.py: hidden 64, 2 layers, 2 heads, MAX_ITEM_LIST_LENGTH 50, CE loss over all items,
no negative sampling), validates on NDCG@10 with full ranking after every epoch, then tests the
best-on-valid model. Reported (one JSON line):

- ``train_s_per_epoch`` (mean of RecBole's ``_train_epoch`` wall time), ``train_cpu_s_per_epoch``
  (the same in process CPU seconds, steadier on a shared machine), ``train_s_epochs`` (each),
  ``valid_s_epochs``, ``time_to_best_s`` (from the start of ``fit`` to the end of the validation
  of the best epoch), ``best_epoch``, ``best_valid_ndcg10``;
- ``test_ndcg10``, ``test_hit10``, ``test_mrr10`` of the best-on-valid model;
- ``prepare_s``, ``rss_after_prepare_mb``, ``peak_rss_mb`` (whole process), ``wall_s``.

``--ranks-out FILE.csv`` also writes the best model's test rank of every user's target (columns
``user,item,rank``: raw ids as in the atomic file, rank 1 = top, ties counted against the target,
padding excluded as RecBole excludes it), the format of ``chronorec predict``'s next-item output, so
``benchmarks/compare_ranks.py`` can compare both libraries user by user. ``--from-checkpoint FILE``
skips training and tests a checkpoint an earlier run left in its workdir (``saved/*.pth``; the same
``--dataset``, ``--model`` and ``--max-len``), e.g. to get the ranks of a run that took hours. ``--resume FILE`` goes on training from such a
checkpoint (model, optimizer, epoch, RecBole's early-stopping count and best valid score): a copy
of it becomes this run's best-model file, so the earlier file is never overwritten and the test
uses the resumed run's best, which may still be the checkpoint itself. The data order after it
differs from the uninterrupted run's (RecBole does not save its sampler state).

Best-model reload: RecBole pickles its Config inside each checkpoint, so ``Trainer.evaluate(
load_best_model=True)`` fails under torch>=2.6's ``torch.load(weights_only=True)`` default.
``--reload checkpoint`` (default) keeps RecBole's own checkpointing in ``fit`` and loads the file
here with ``weights_only=False`` (it is the file this process just wrote), then evaluates with
``load_best_model=False``; ``--reload memory`` skips checkpoint files and keeps a copy of the
best state dict in memory. torch itself is not monkeypatched.

    benchmarks/.venvs/recbole/bin/python benchmarks/peers/recbole_train.py \
        --data-path /work/shared/data --dataset ml-100k --model SASRec --epochs 2
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from peerutil import Timer, current_rss_mb, emit, quiet_stdout, set_threads
from recbole_setup import add_common_args, build_config_dict, dataset_stats

MODELS = ("SASRec", "GRU4Rec", "BERT4Rec", "LightSANs")


def main() -> None:
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--model", choices=MODELS, default="SASRec")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reload", choices=("checkpoint", "memory"), default="checkpoint",
                    help="how the best-on-valid model is restored before testing (see docstring)")
    ap.add_argument("--ranks-out", type=Path, default=None,
                    help="CSV of each test user's target rank under the best model (user,item,rank)")
    ap.add_argument("--from-checkpoint", type=Path, default=None,
                    help="no training: test this RecBole checkpoint (an earlier run's saved/*.pth)")
    ap.add_argument("--resume", type=Path, default=None,
                    help="go on training from this RecBole checkpoint (an earlier run's saved/*.pth)")
    args = ap.parse_args()
    for name in ("ranks_out", "from_checkpoint", "resume"):  # before build_config_dict changes directory
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    for given in (args.from_checkpoint, args.resume):
        if given is not None and not given.is_file():
            raise SystemExit(f"error: {given}: no such checkpoint")
    if args.from_checkpoint is not None and args.resume is not None:
        raise SystemExit("error: --from-checkpoint tests a checkpoint, --resume trains on from one: not both")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    import recbole
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    set_threads(args.threads)
    with quiet_stdout():
        config = Config(model=args.model, dataset=args.dataset,
                        config_dict=build_config_dict(args, epochs=args.epochs))
        init_seed(config["seed"], config["reproducibility"])
        set_threads(args.threads)
        with Timer() as t_prep:
            dataset = create_dataset(config)
            train, valid, test = data_preparation(config, dataset)
        rss_prep = current_rss_mb()

        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        model = get_model(config["model"])(config, train._dataset).to(config["device"])
        n_params = sum(p.numel() for p in model.parameters())
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

        train_s: list[tuple[float, float]] = []
        valid_s: list[tuple[float, float]] = []
        history: list[dict[str, Any]] = []
        best: dict[str, Any] = {"score": float("-inf"), "state": None}
        _time_method(trainer, "_train_epoch", train_s)
        _time_method(trainer, "_valid_epoch", valid_s)
        resumed = _resume(trainer, args.resume, args.model) if args.resume is not None else None
        fit_start = time.perf_counter()

        def on_epoch(epoch: int, score: float) -> None:
            history.append({"epoch": epoch, "valid_ndcg10": float(score),
                            "elapsed_s": time.perf_counter() - fit_start})
            # One line per epoch on stderr, so a long run killed before its end still says how far it got.
            print(json.dumps({"progress": history[-1], "train_s": round(train_s[-1][0], 3)}),
                  file=sys.stderr, flush=True)
            if args.reload == "memory" and score > best["score"]:
                best["score"] = score
                best["state"] = copy.deepcopy(model.state_dict())

        if args.from_checkpoint is None:
            trainer.fit(train, valid, verbose=False, saved=args.reload == "checkpoint",
                        show_progress=False, callback_fn=on_epoch)
        fit_s = time.perf_counter() - fit_start

        if args.reload == "checkpoint" or args.from_checkpoint is not None:
            # RecBole's checkpoint holds its pickled Config: weights_only=False is needed to read it
            # (a file this process just wrote, or one the user named).
            ckpt = torch.load(args.from_checkpoint or trainer.saved_model_file, map_location=config["device"],
                              weights_only=False)
            if args.from_checkpoint is not None and ckpt["config"]["model"] != args.model:
                raise SystemExit(f"error: {args.from_checkpoint}: a {ckpt['config']['model']} checkpoint, "
                                 f"not {args.model}")
            model.load_state_dict(ckpt["state_dict"])
            model.load_other_parameter(ckpt.get("other_parameter"))
        elif best["state"] is not None:
            model.load_state_dict(best["state"])
        ranks: list[Any] = []
        if args.ranks_out is not None:
            _capture_ranks(trainer, ranks)
        with Timer() as t_test:
            result = trainer.evaluate(test, load_best_model=False, show_progress=False)
        if args.ranks_out is not None:
            _write_ranks(args.ranks_out, dataset, ranks)

    best_row = max(history, key=lambda r: r["valid_ndcg10"]) if history else None
    if resumed is not None and (best_row is None or best_row["valid_ndcg10"] <= resumed["best_valid_ndcg10"]):
        best_row = {"epoch": resumed["epoch"], "valid_ndcg10": resumed["best_valid_ndcg10"], "elapsed_s": None}
    emit({
        "runner": "recbole_train",
        "library": f"recbole {recbole.__version__}",
        "dataset": args.dataset,
        "model": args.model,
        "epochs": 0 if args.from_checkpoint is not None else args.epochs,
        "batch_size": args.batch_size,
        "max_len": args.max_len,
        "seed": ckpt["config"]["seed"] if args.from_checkpoint is not None else config["seed"],
        "from_checkpoint": str(args.from_checkpoint) if args.from_checkpoint is not None else None,
        "resumed_from": resumed,
        "ranks_out": str(args.ranks_out) if args.ranks_out is not None else None,
        "n_params": n_params,
        "train_s_per_epoch": _mean(w for w, _ in train_s),
        "train_cpu_s_per_epoch": _mean(c for _, c in train_s),
        "train_s_epochs": [round(w, 3) for w, _ in train_s],
        "valid_s_epochs": [round(w, 3) for w, _ in valid_s],
        "valid_cpu_s_epochs": [round(c, 3) for _, c in valid_s],
        "fit_s": round(fit_s, 3),
        # None when the best is a resumed checkpoint: reached in an earlier process
        "time_to_best_s": round(best_row["elapsed_s"], 3) if best_row and best_row["elapsed_s"] is not None else None,
        "best_epoch": best_row["epoch"] if best_row else None,
        "best_valid_ndcg10": round(best_row["valid_ndcg10"], 5) if best_row else None,
        "valid_ndcg10_epochs": [round(r["valid_ndcg10"], 5) for r in history],
        "test_ndcg10": float(result["ndcg@10"]),
        "test_hit10": float(result["hit@10"]),
        "test_mrr10": float(result["mrr@10"]),
        "test_s": round(t_test.seconds, 3),
        "prepare_s": round(t_prep.seconds, 3),
        "prepare_cpu_s": round(t_prep.cpu_seconds, 3),
        "rss_after_prepare_mb": round(rss_prep, 1),
        "wall_s": round(time.perf_counter() - t_start, 3),
        "threads": torch.get_num_threads(),
        "reload": args.reload,
        **dataset_stats(dataset, train, valid, test),
    })


def _resume(trainer: Any, path: Path, model_name: str) -> dict[str, Any]:
    """Load a checkpoint into ``trainer`` to train on from it (RecBole's ``resume_checkpoint`` calls
    ``torch.load`` with torch>=2.6's ``weights_only=True`` default, which its pickled Config fails)."""
    import shutil

    import torch

    ckpt = torch.load(path, map_location=trainer.device, weights_only=False)
    if ckpt["config"]["model"] != model_name:
        raise SystemExit(f"error: {path}: a {ckpt['config']['model']} checkpoint, not {model_name}")
    trainer.model.load_state_dict(ckpt["state_dict"])
    trainer.model.load_other_parameter(ckpt.get("other_parameter"))
    trainer.optimizer.load_state_dict(ckpt["optimizer"])
    trainer.start_epoch = ckpt["epoch"] + 1
    trainer.cur_step = ckpt["cur_step"]
    trainer.best_valid_score = ckpt["best_valid_score"]
    # The resumed run's best-model file starts as a copy: a run that never beats it still tests it.
    shutil.copyfile(path, trainer.saved_model_file)
    return {"file": str(path), "epoch": int(ckpt["epoch"]), "cur_step": int(ckpt["cur_step"]),
            "best_valid_ndcg10": round(float(ckpt["best_valid_score"]), 5)}


def _mean(values: Any) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 3) if values else None


def _capture_ranks(trainer: Any, sink: list[Any]) -> None:
    """Wrap RecBole's full-sort batch evaluation: append (user ids, target ids, pessimistic ranks)."""
    inner = trainer._full_sort_batch_eval
    uid = trainer.config["USER_ID_FIELD"]

    def with_ranks(batched_data: Any) -> Any:
        interaction, scores, positive_u, positive_i = inner(batched_data)
        target = scores[positive_u, positive_i]  # [P]
        row = scores[positive_u]  # [P, n_items], padding column already -inf
        # chronorec.metrics.ranking.ranks_from_scores's rule (that package is not in this venv): ties count
        # against the target, the target's own column supplying the 1 of a 1-based rank
        rank = (row > target[:, None]).sum(1) + (row == target[:, None]).sum(1)
        sink.append((interaction[uid][positive_u].cpu(), positive_i.cpu(), rank.cpu()))
        return interaction, scores, positive_u, positive_i

    trainer._full_sort_batch_eval = with_ranks


def _write_ranks(path: Path, dataset: Any, ranks: list[Any]) -> None:
    """``user,item,rank`` CSV with raw ids, written beside ``path`` and moved into place."""
    import csv

    import torch

    users = torch.cat([u for u, _, _ in ranks]).numpy()
    items = torch.cat([i for _, i, _ in ranks]).numpy()
    rank = torch.cat([r for _, _, r in ranks]).tolist()
    raw_u = dataset.id2token(dataset.uid_field, users)
    raw_i = dataset.id2token(dataset.iid_field, items)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "rank"])
        w.writerows(zip(raw_u.tolist(), raw_i.tolist(), rank, strict=True))
    tmp.replace(path)


def _time_method(obj: Any, name: str, sink: list[float]) -> None:
    """Wrap ``obj.name`` so that each call's (wall, CPU) seconds are appended to ``sink``."""
    inner = getattr(obj, name)

    def timed(*a: Any, **kw: Any) -> Any:
        with Timer() as t:
            out = inner(*a, **kw)
        sink.append((t.seconds, t.cpu_seconds))
        return out

    setattr(obj, name, timed)


if __name__ == "__main__":
    main()

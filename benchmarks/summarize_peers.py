"""Render the peer measurements in benchmarks/results/peers/*.json as Markdown tables.

    python benchmarks/summarize_peers.py [--dir benchmarks/results/peers] [--json OUT.json]

Three tables: RecBole data preparation, RecBole next-item training, DIN training. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common import RESULTS, markdown_table


def load(folder: Path) -> dict[str, dict[str, Any]]:
    """``{job: result}`` for every ``<job>.json`` in the folder."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def tables(results: dict[str, dict[str, Any]]) -> str:
    """The Markdown text of the three tables (sections without results are left out)."""
    out = []
    prep = [r for j, r in results.items() if j.startswith("prepare-")]
    if prep:
        out += ["RecBole 1.2.1 data preparation (`create_dataset` + `data_preparation`, SASRec, "
                "leave-last-out, max length 50):", "",
                markdown_table(prep, ["dataset", "n_inter", "n_users", "n_items", "train_samples",
                                      "prepare_s", "prepare_cpu_s", "rss_before_mb", "peak_rss_mb",
                                      "loadavg_1m_end"],
                               ["dataset", "interactions", "users", "items", "train samples",
                                "prepare wall s", "prepare CPU s", "RSS after imports MB",
                                "peak RSS MB", "load (1 min)"]), ""]
    train = [r for j, r in results.items() if j.startswith("train-")]
    if train:
        out += ["RecBole 1.2.1 next-item training on ml-100k (hidden 64, 2 layers, 2 heads, length 50, "
                "CE over all items, batch 2048):", "",
                markdown_table(train, ["model", "epochs", "n_params", "train_s_per_epoch",
                                       "train_cpu_s_per_epoch", "valid_s_epochs", "peak_rss_mb",
                                       "best_valid_ndcg10", "test_ndcg10", "test_hit10", "test_mrr10",
                                       "loadavg_1m_end"],
                               ["model", "epochs", "params", "train wall s/epoch", "train CPU s/epoch",
                                "valid wall s", "peak RSS MB", "valid NDCG@10", "test NDCG@10",
                                "test HIT@10", "test MRR@10", "load (1 min)"]), ""]
    din = [r for j, r in results.items() if j.startswith("din-")]
    if din:
        out += ["DIN on the ml-100k CTR export (194,342 train rows, history ≤ 50, batch 1024, "
                "Adam 1e-3):", "",
                markdown_table(din, ["library", "epochs", "n_params", "train_samples_per_s",
                                     "train_samples_per_cpu_s", "train_s_epochs", "peak_rss_mb",
                                     "test_auc", "test_logloss", "loadavg_1m_end"],
                               ["library", "epochs", "params", "train samples/s (wall)",
                                "train samples per CPU s", "train wall s", "peak RSS MB", "test AUC",
                                "test logloss", "load (1 min)"]), ""]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=RESULTS / "peers")
    ap.add_argument("--json", type=Path, default=None, help="also write all results as one JSON file")
    args = ap.parse_args()
    results = load(args.dir)
    print(tables(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

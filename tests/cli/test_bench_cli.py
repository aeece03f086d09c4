"""`chronorec bench` runs real training steps / batch gathers and reports consistent numbers."""

from __future__ import annotations

import json
from pathlib import Path

from chronorec.cli import main


def _json_line(capsys) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_train_counts_samples(tiny_ctr_dataset: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    main(["bench", "train", "--data", str(tiny_ctr_dataset), "--model", "din", "--steps", "3", "--warmup", "1",
          "--set", "train.batch_size=64", "--set", "train.threads=1", "--set", "model.dim=8", "--json"])
    out = _json_line(capsys)
    assert out["steps"] == 3 and out["samples"] == 3 * 64  # the synthetic train split has > 4 batches of 64
    assert out["samples_per_s"] > 0 and out["cpu_s_per_1k_samples"] > 0 and out["peak_rss_mb"] > 0


def test_bench_loader_covers_the_split(tiny_ctr_dataset: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from chronorec.data.dataset import PreparedDataset

    main(["bench", "loader", "--data", str(tiny_ctr_dataset), "--batch-size", "100", "--json"])
    out = _json_line(capsys)
    n = PreparedDataset.open(tiny_ctr_dataset).n_samples("train")
    assert out["rows"] == n and out["batches"] == -(-n // 100)

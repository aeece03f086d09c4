"""Run folders in the trainer's layout (config.json, metrics.json, metrics.jsonl) with known metrics."""

from __future__ import annotations

import json
from pathlib import Path

TIN_GAUC = (0.70, 0.72, 0.74)  # three seeds: mean 0.72, sample std 0.02
DIN_GAUC = (0.65, 0.66)


def _config(name: str, model: str, data: Path, seed: int, lr: float = 1e-3) -> dict:
    return {
        "name": name, "data": str(data), "cache_key": None, "dataset": "synthetic-planted", "task": "ctr",
        "model": model, "model_options": {"dim": 8, "note": "<script>alert(1)</script>"}, "task_options": {},
        "train": {"optimizer": "adam", "lr": lr, "epochs": 2, "max_len": None, "seed": seed, "threads": 1},
    }


def _metrics(gauc: float) -> dict:
    groups = {"head": {"gauc": gauc + 0.01, "auc": 0.8, "logloss": 0.5, "n": 40},
              "tail": {"gauc": gauc - 0.01, "auc": 0.7, "logloss": 0.6, "n": 160}}
    return {"valid": {"gauc": gauc - 0.005, "auc": 0.7, "logloss": 0.6, "n": 200},
            "test": {"gauc": gauc, "auc": gauc + 0.05, "logloss": 0.55, "n": 200, "groups": groups},
            "select_metric": "gauc", "best_epoch": 2}


def write_runs(root: Path, data: Path) -> Path:
    specs = [("tin", "tin", s, g, 1e-3) for s, g in enumerate(TIN_GAUC)]
    specs += [("din", "din", s, g, 1e-3) for s, g in enumerate(DIN_GAUC)]
    specs.append(("din", "din", 0, 0.60, 1e-2))  # another lr: a separate group with the same name
    for k, (name, model, seed, gauc, lr) in enumerate(specs):
        d = root / name / f"2026-s{seed}-{k}"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(_config(name, model, data, seed, lr)))
        (d / "metrics.json").write_text(json.dumps(_metrics(gauc)))
        lines = [{"epoch": e, "step": 10 * e, "split": "valid", "metrics": {"gauc": gauc - 0.02 / e}}
                 for e in (1, 2)]
        (d / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    # a PIN-style run: its own checkpoint path in the config and a nested backbone run folder;
    # two seeds finished, one still running (no metrics yet)
    for seed in (0, 1, 2):
        d = root / "tin-pin" / f"2026-s{seed}"
        (d / "backbone").mkdir(parents=True)
        cfg = _config("tin-pin", "tin", data, seed) | {
            "longtail": {"strategy": "pin", "init_from": f"{d}/backbone/checkpoints/best.pt"}}
        (d / "config.json").write_text(json.dumps(cfg))
        (d / "backbone" / "config.json").write_text(json.dumps(_config("tin-pin", "tin", data, seed)))
        if seed < 2:
            (d / "metrics.json").write_text(json.dumps(_metrics(0.75 + 0.01 * seed)))
    return root

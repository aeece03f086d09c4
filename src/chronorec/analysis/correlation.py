"""The semantic-temporal correlation analysis end to end (TIN paper §2 and §4.3, App. A.2-A.3).

``run_correlation(data_dir, run_dirs, out_dir, options)`` writes to ``out_dir``:

* ``ctc.parquet`` — ground-truth CTC (Eq. 1) of every non-empty (target category, history
  category, position) cell, with raw category names (:mod:`chronorec.analysis.ctc`);
* ``learned_<run>.parquet`` — each model's mean learned correlation per cell (Eq. 4, Table 2;
  :mod:`chronorec.analysis.learned`);
* ``agreement.json`` / ``agreement.md`` / ``agreement_targets.parquet`` — Pearson r per target
  category and the share of strong / medium / poor per model (Fig. 6;
  :mod:`chronorec.analysis.agreement`);
* ``gauc_by_length.json`` / ``.md`` — test GAUC per history-length bucket per model (Table 3);
* ``fig1_heatmaps.png``, ``fig4_intervals.png``, ``fig6_pearson_bins.png``,
  ``fig7_sequences.png``, ``table3_gauc_by_length.png``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, Field
from torch import nn

from chronorec.analysis import agreement, extras, plots
from chronorec.analysis.ctc import (
    ctc_table,
    dense_grid,
    lookup_cells,
    position_matrix,
    same_category_curves,
    select_targets,
    target_index,
)
from chronorec.analysis.learned import LearnedOn, learned_table, learned_values, predict_scores
from chronorec.analysis.prepared import PreparedArrays
from chronorec.analysis.runs import RunRef, group_runs, load_model
from chronorec.data.schema import FIRST_ID, UNK, DatasetSchema
from chronorec.errors import ChronorecError, warn


class CorrelationOptions(BaseModel):
    """Options of ``chronorec analyze correlation`` (defaults: the paper's App. A.2 setting)."""

    splits: list[str] = Field(default_factory=lambda: ["train", "valid", "test"])  # all labelled samples
    n_positions: int = Field(10, ge=2)
    top_categories: int | None = Field(200, ge=1)
    min_samples: int = Field(50, ge=1)
    learned_on: LearnedOn = "all"
    batch_size: int = Field(1024, ge=1)
    heatmap_target: str | None = None  # raw category for Fig. 1/3 (default: most frequent target)
    heatmap_rows: int = Field(5, ge=1)
    n_examples: int = Field(2, ge=1)
    length_edges: list[int] = Field(default_factory=lambda: list(extras.DEFAULT_LENGTH_EDGES))
    seed: int = 0


def _named(df: pl.DataFrame, names: dict[int, str]) -> pl.DataFrame:
    """Add raw category names beside the id columns."""
    if not names:
        return df
    m = pl.DataFrame({"idx": list(names), "raw": list(names.values())},
                     schema={"idx": pl.Int32, "raw": pl.Utf8})
    out = df
    for col in ("target_category", "category"):
        if col not in out.columns:
            continue
        out = out.join(m.rename({"idx": col, "raw": f"{col}_raw"}), on=col, how="left")
    return out


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


ModelLoader = Callable[[RunRef, DatasetSchema], nn.Module]


def run_correlation(data_dir: Path, runs: Sequence[RunRef], out_dir: Path,
                    options: CorrelationOptions | None = None, loader: ModelLoader = load_model
                    ) -> dict[str, Any]:
    """Compute and write the whole analysis; returns the content of ``agreement.json``.

    ``runs`` come from :func:`chronorec.analysis.runs.find_runs`; ``loader`` turns each into its
    trained model (default: :func:`chronorec.analysis.runs.load_model`). With no runs only the
    ground truth and the model-free figures are written.
    """
    opt = options or CorrelationOptions()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = PreparedArrays(data_dir)
    field = data.category_field()
    C = data.schema.vocab_sizes[field]
    P = opt.n_positions
    names = data.vocab(field)
    samples = data.samples(opt.splits)
    tcat = samples.side[field]
    pos_cat = position_matrix(data.event_column(field), samples.hist_start, samples.hist_end, P)
    targets = select_targets(tcat, opt.top_categories, opt.min_samples)
    if targets.size == 0:
        raise ChronorecError(f"no target {field} has at least {opt.min_samples} samples in "
                             f"{'+'.join(opt.splits)}; lower --min-samples")
    ctc = ctc_table(tcat, samples.label, pos_cat, targets, C)
    _named(ctc, names).write_parquet(out_dir / "ctc.parquet")
    gt_curves = same_category_curves(ctc, "mi", targets, P)
    tidx = target_index(tcat, targets)
    selected = tidx >= 0
    if opt.learned_on == "positives":
        selected &= samples.label > 0.5
    n_per_target = np.bincount(tidx[tidx >= 0], minlength=targets.size)

    examples = extras.pick_examples(samples, tcat, pos_cat, tidx >= 0, opt.n_examples, opt.seed)
    heat_target = _heatmap_target(opt.heatmap_target, names, targets)
    rows = extras.heatmap_rows(heat_target, tcat, pos_cat, opt.heatmap_rows)

    summaries: dict[str, dict[str, Any]] = {}
    per_target = []
    grids: dict[str, np.ndarray] = {}
    example_values: dict[str, np.ndarray] = {}
    pearson_heat: dict[str, float] = {}
    gauc_tables: dict[str, dict[str, dict[str, float]]] = {}
    for run in runs:
        _check_data(run, data_dir)
        model = loader(run, data.schema)
        sel_idx = np.flatnonzero(selected)
        values = np.full((len(samples), P), np.nan)
        values[sel_idx] = learned_values(model, data, samples.take(sel_idx), P, opt.batch_size, run.max_len)
        learned = learned_table(tcat, samples.label, pos_cat, values, targets, C, opt.learned_on)
        _named(learned, names).write_parquet(out_dir / f"learned_{run.label}.parquet")
        curves = same_category_curves(learned, "learned", targets, P, fill=np.nan)
        r, reason = agreement.pearson_rows(gt_curves, curves)
        summaries[run.label] = {"run": str(run.path), "model": run.model_name,
                                **agreement.summarize(r, reason)}
        per_target.append(pl.DataFrame({
            "model": [run.label] * targets.size, "target_category": targets.astype(np.int32),
            "n_samples": n_per_target, "pearson_r": r, "bin": agreement.pearson_bin(r).astype(str),
            "reason": reason.astype(str),
        }))
        grids[run.label] = dense_grid(learned, "learned", heat_target, rows, P, fill=np.nan)
        pearson_heat[run.label] = float(r[np.flatnonzero(targets == heat_target)[0]])
        example_values[run.label] = values[examples]
        gauc_tables[run.label] = _gauc_by_length(run, model, data, opt)

    result = {
        "dataset": data.schema.name, "data": str(data_dir), "category_field": field,
        "options": opt.model_dump(), "n_samples": len(samples),
        "n_positive": int((samples.label > 0.5).sum()),
        "targets": [{"id": int(t), "raw": names.get(int(t), str(t)), "n_samples": int(n)}
                    for t, n in zip(targets, n_per_target, strict=True)],
        "models": summaries,
    }
    settings = _settings(runs)
    result["settings"] = settings
    (out_dir / "agreement.json").write_text(json.dumps(_json_safe(result), indent=2))
    seeds_md = ""
    if any(len(v) > 1 for v in settings.values()):
        seeds_md = ("\n## Per setting, mean ± std over seeds\n\n"
                    + agreement.settings_table(summaries, settings))
    (out_dir / "agreement.md").write_text(
        f"# Semantic-temporal correlation agreement — {data.schema.name}\n\n"
        f"{len(targets)} target categories ({'+'.join(opt.splits)} samples, learned correlation over "
        f"{opt.learned_on} samples).\n\n"
        + (agreement.markdown_table(summaries) if summaries else "No runs given: ground truth only.\n")
        + seeds_md)
    if per_target:
        _named(pl.concat(per_target), names).write_parquet(out_dir / "agreement_targets.parquet")

    _figures(out_dir, data, samples, opt, ctc, tcat, pos_cat, rows, heat_target, grids, pearson_heat,
             summaries, examples, example_values, gauc_tables, names, C, settings)
    return result


def _settings(runs: Sequence[RunRef]) -> dict[str, list[str]]:
    """Run labels per setting (the same config but for the seed), as the report groups them."""
    return {g.label: [r.label for r in g.runs] for g in group_runs(list(runs))}


def _heatmap_target(raw: str | None, names: dict[int, str], targets: np.ndarray) -> int:
    if raw is None:
        return int(targets[0])
    ids = [i for i, v in names.items() if v == raw]
    if not ids or ids[0] not in set(targets.tolist()):
        raise ChronorecError(f"heatmap target category {raw!r} is not among the selected target categories")
    return ids[0]


def _check_data(run: RunRef, data_dir: Path) -> None:
    d = run.data_dir
    if d is not None and d.exists() and d.resolve() != data_dir.resolve():
        warn(f"run {run.path} was trained on {d}, analysing it on {data_dir}; vocabularies must match")


def _gauc_by_length(run: RunRef, model: Any, data: PreparedArrays, opt: CorrelationOptions
                    ) -> dict[str, dict[str, float]]:
    """Table 3 for one run: the run's saved test predictions when present, else a fresh pass."""
    if not (data.path / "samples" / "test.parquet").is_file():
        return {}
    test = data.samples(["test"])
    pred_path = run.path / "predictions" / "test.parquet"
    scores = None
    if pred_path.is_file():
        pred = pl.read_parquet(pred_path)
        if {"index", "score"} <= set(pred.columns) and pred.height == len(test):
            scores = np.empty(len(test))
            scores[pred["index"].to_numpy()] = pred["score"].to_numpy()
    if scores is None:
        scores = predict_scores(model, data, test, max(opt.batch_size, 2048), run.max_len)
    return extras.gauc_by_length(test.hist_len, test.label, scores, test.user, opt.length_edges)


def _figures(out: Path, data: PreparedArrays, samples: Any, opt: CorrelationOptions, ctc: pl.DataFrame,
             tcat: np.ndarray, pos_cat: np.ndarray, rows: np.ndarray, heat_target: int,
             grids: dict[str, np.ndarray], pearson_heat: dict[str, float], summaries: dict[str, Any],
             examples: np.ndarray, example_values: dict[str, np.ndarray],
             gauc_tables: dict[str, dict[str, dict[str, float]]], names: dict[int, str], C: int,
             settings: dict[str, list[str]] | None = None) -> None:
    P = opt.n_positions

    def label(c: int) -> str:
        return "unknown" if int(c) == UNK else names.get(int(c), str(int(c)))

    gt = dense_grid(ctc, "mi", heat_target, rows, P)
    target_row = int(np.flatnonzero(rows == heat_target)[0])
    plots.heatmaps(gt, grids, [label(c) for c in rows], label(heat_target), target_row, pearson_heat,
                   out / "fig1_heatmaps.png")
    intervals = extras.sample_intervals(samples, data.event_column("ts"), seed=opt.seed)
    plots.interval_distribution(intervals, data.schema.bin_edges.get("interval", []),
                                out / "fig4_intervals.png", title=data.schema.name)
    if summaries:
        plots.pearson_bins(summaries, out / "fig6_pearson_bins.png", settings)
    if examples.size:
        gt_ex = lookup_cells(ctc, "mi", tcat[examples], pos_cat[examples], C, fill=0.0)
        exs = []
        for k, i in enumerate(examples.tolist()):  # a handful of plotted examples, not samples
            cats = pos_cat[i]
            exs.append({
                "title": f"sample {k + 1}: target category {label(tcat[i])}, label {int(samples.label[i])}",
                "labels": [label(c) if c else "–" for c in cats],
                "same": (cats == tcat[i]).tolist(),
                "gt": np.where(cats >= FIRST_ID, gt_ex[k], np.nan),  # no CTC cell for unknown categories
                "learned": {m: v[k] for m, v in example_values.items()},
            })
        plots.sequences(exs, out / "fig7_sequences.png")
    if gauc_tables and any(gauc_tables.values()):
        tab = {m: {b: v["gauc"] for b, v in t.items()} for m, t in gauc_tables.items() if t}
        plots.gauc_by_length(tab, out / "table3_gauc_by_length.png")
        (out / "gauc_by_length.json").write_text(json.dumps(_json_safe(gauc_tables), indent=2))
        buckets = list(next(iter(tab.values())))
        first = next(t for t in gauc_tables.values() if t)
        md = ["| model | " + " | ".join(buckets) + " |", "|---|" + "---:|" * len(buckets)]
        md += [f"| {m} | " + " | ".join("–" if not math.isfinite(x) else f"{x:.4f}" for x in t.values()) + " |"
               for m, t in tab.items()]
        md.append("| samples | " + " | ".join(str(first[b]["n"]) for b in buckets) + " |")
        (out / "gauc_by_length.md").write_text("# Test GAUC by history length (TIN paper, Table 3)\n\n"
                                               + "\n".join(md) + "\n")

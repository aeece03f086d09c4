"""``chronorec report``: one self-contained HTML page (and a Markdown twin) about trained runs.

Reads only run folders (``config.json``, ``metrics.json``, ``metrics.jsonl``), the prepared
dataset each config names (its ``schema.json``, and its events for the gap table of
:mod:`chronorec.analysis.gaps`), and optionally an analysis folder written by
``chronorec analyze correlation``. Runs whose configs differ only in the seed (and in settings that
do not change results: threads, device, logging) form one group; metrics are reported as
``mean ± std`` over the group's seeds (sample standard deviation, ddof = 1, as the TIN paper's
"five runs, mean and standard deviation"; "–" with a single run).

The HTML embeds every PNG as a ``data:image/png;base64`` URI and carries its CSS inline, so it
opens offline and can be mailed as one file. The Markdown version (``<stem>.md``) links PNG files
written to ``<stem>_files/``.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from chronorec import atomic
from chronorec.analysis import agreement, plots
from chronorec.analysis.report_render import Figure, Section, Table, render_html, render_markdown
from chronorec.analysis.runs import RunGroup, find_runs, fmt_mean_std, group_runs
from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError, warn

_FIRST_METRICS = ("gauc", "auc", "logloss")
_ANALYSIS_FIGURES = (
    ("fig1_heatmaps.png", "Figures 1/3 — ground truth vs learned correlation",
     "Mutual information (ground truth) and each model's mean exp(attention logit)·‖representation‖ "
     "per history category and position, for one target category; r = Pearson over the target's own row."),
    ("fig6_pearson_bins.png", "Figure 6 — agreement over target categories",
     "Share of target categories whose same-category curves correlate poorly, medium or strongly."),
    ("fig7_sequences.png", "Figure 7 — two sampled sequences",
     "Ground-truth CTC of each of the last behaviors vs each model's learned correlation (row-scaled)."),
    ("fig4_intervals.png", "Figure 4 — target-behavior intervals",
     "Distribution of t_target − t_behavior with the TTE-T equal-frequency bin edges."),
    ("table3_gauc_by_length.png", "Table 3 — GAUC by history length", "Test GAUC per history-length bucket."),
)


def _metric_names(groups: list[RunGroup], split: str) -> list[str]:
    seen: list[str] = []
    for g in groups:
        for r in g.runs:
            for k, v in (r.metrics.get(split) or {}).items():
                if isinstance(v, int | float) and k != "n" and k not in seen:
                    seen.append(k)
    return [m for m in _FIRST_METRICS if m in seen] + sorted(m for m in seen if m not in _FIRST_METRICS)


def metrics_table(groups: list[RunGroup]) -> Table:
    test = _metric_names(groups, "test")
    valid = _metric_names(groups, "valid")[:1]
    cols = ["run group", "model", "runs (seeds)", *(f"test {m}" for m in test), *(f"valid {m}" for m in valid)]
    rows = []
    for g in groups:
        seeds = ", ".join("?" if s is None else str(s) for s in g.seeds)
        unfinished = sum(1 for r in g.runs if not r.metrics.get("test"))
        runs = f"{len(g.runs)} ({seeds})" + (f", {unfinished} unfinished" if unfinished else "")
        row = [g.label, g.runs[0].model_name, runs]
        row += [fmt_mean_std([(r.metrics.get("test") or {}).get(m) for r in g.runs]) for m in test]
        row += [fmt_mean_std([(r.metrics.get("valid") or {}).get(m) for r in g.runs]) for m in valid]
        rows.append(row)
    return Table("Test metrics (mean ± std over seeds)", cols, rows,
                 "Std is the sample standard deviation over the runs of a group; – means one run.")


def group_metrics_table(groups: list[RunGroup]) -> Table | None:
    """Head / tail (activity group) test metrics, when the runs report them."""
    names: list[str] = []
    for g in groups:
        for r in g.runs:
            for n in ((r.metrics.get("test") or {}).get("groups") or {}):
                if n not in names:
                    names.append(n)
    if not names:
        return None
    metrics = [m for m in _metric_names(groups, "test") if m in _FIRST_METRICS] or _metric_names(groups, "test")[:3]
    cols = ["run group", "user group", "samples", *metrics]
    rows = []
    for g in groups:
        for n in names:
            per = [((r.metrics.get("test") or {}).get("groups") or {}).get(n) or {} for r in g.runs]
            if not any(per):
                continue
            count = next((p.get("n") for p in per if p.get("n") is not None), "–")
            rows.append([g.label, n, str(count), *(fmt_mean_std([p.get(m) for p in per]) for m in metrics)])
    return Table("Test metrics per user activity group (PIN's head / tail)", cols, rows)


def dataset_rows(path: Path) -> list[list[str]]:
    schema = DatasetSchema.load(path / "schema.json")
    t0, t1 = (datetime.fromtimestamp(t, tz=UTC).date().isoformat() for t in schema.time_span)
    edges = schema.bin_edges.get("interval", [])
    rows = [
        ["name", schema.name], ["folder", str(path)], ["protocol", schema.protocol], ["task", schema.task],
        ["users / items / events", f"{schema.n_users:,} / {schema.n_items:,} / {schema.n_events:,}"],
        ["time span", f"{t0} … {t1}"],
        ["side features", ", ".join(f"{f} ({schema.vocab_sizes.get(f, 0) - 2:,} values)"
                                    for f in schema.side_features) or "none"],
        ["samples", ", ".join(f"{k}: {v:,}" for k, v in schema.counts.items())],
        ["longest history", f"{schema.max_history_len:,}" + (f" (capped at {schema.max_history})"
                                                             if schema.max_history else "")],
        ["user groups", ", ".join(schema.groups.names)
         + (f" (thresholds {schema.groups.thresholds})" if schema.groups.thresholds else "")],
    ]
    if edges:
        rows.append(["TTE-T interval bin edges (days)", ", ".join(f"{e / 86400:.4g}" for e in edges)])
    return rows


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _log_records(log: Path) -> list[dict]:
    """The records of a ``metrics.jsonl``. A run killed while appending leaves its last line cut
    short: skipped with a warning. Any other unreadable line is an error naming the file and line."""
    lines = log.read_text(errors="replace").splitlines()
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                warn(f"{log}: last line (line {i}) is cut short, as a killed run leaves it; skipped")
                continue
            raise ChronorecError("not valid JSON (metrics log line)", file=log, row=i) from None
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _curves_figure(groups: list[RunGroup], work: Path) -> Path | None:
    """Validation selection metric over epochs per group (mean over seeds), from metrics.jsonl."""
    series: dict[str, dict[int, list[float]]] = {}
    metric = "gauc"
    for g in groups:
        for r in g.runs:
            log = r.path / "metrics.jsonl"
            if not log.is_file():
                continue
            metric = r.metrics.get("select_metric", metric)
            for rec in _log_records(log):
                val = (rec.get("metrics") or {}).get(metric)
                if rec.get("split") == "valid" and isinstance(val, int | float):
                    series.setdefault(g.label, {}).setdefault(int(rec.get("epoch", 0)), []).append(float(val))
    if not series or max(len(s) for s in series.values()) < 2:
        return None  # no curve to draw from single evaluations
    curves = {k: {e: float(np.mean(v)) for e, v in sorted(s.items())} for k, s in series.items()}
    return plots.training_curves(curves, metric, work / "training_curves.png")


def _gap_sections(data_dirs: list[Path], files: Path) -> tuple[list[Table], list[Figure]]:
    """Per dataset: its gaps and how each rhythm bucketing rule splits them (``analyze gaps``)."""
    from chronorec.analysis import gaps as gap_analysis

    tables: list[Table] = []
    figures: list[Figure] = []
    for k, d in enumerate(data_dirs):
        try:
            summary, gaps = gap_analysis.analyse(d)
        except ChronorecError as err:  # a damaged or gap-less dataset: the rest of the report still stands
            warn(f"gap analysis of {d} skipped: {err}")
            continue
        name = summary["dataset"]
        tables.append(Table(f"Gaps between consecutive interactions: {name}", gap_analysis.RULE_HEADER,
                            gap_analysis.rule_rows(summary), gap_analysis.share_line(summary)
                            + ". Rules as `model.rhythm_bucket` buckets them (INTERPOS)."))
        png = gap_analysis.figure(summary, gaps, files / f"gaps-{k}.png")
        figures.append(Figure(f"Gap distribution: {name}", "Gaps to the previous interaction of the same user; "
                              "the shaded span is one bucket of the default scaled_days rule.", png.name, _data_uri(png)))
    return tables, figures


def _analysis_sections(adir: Path) -> tuple[list[Table], list[tuple[Path, str, str]]]:
    tables: list[Table] = []
    agree = adir / "agreement.json"
    if agree.is_file():
        js = json.loads(agree.read_text())
        rows = []
        for name, s in js.get("models", {}).items():
            sh, why = s["share"], ", ".join(f"{v} {k}" for k, v in s.get("undefined_reasons", {}).items())
            pct = ["–" if sh[b] is None else f"{100 * sh[b]:.1f}%" for b in ("strong", "medium", "poor")]
            mean_r = "–" if s.get("mean_r") is None else f"{s['mean_r']:.3f}"
            rows.append([name, s["model"], str(s["n_targets"]), *pct,
                         f"{s['counts']['undefined']}" + (f" ({why})" if why else ""), mean_r])
        opts = js.get("options", {})
        tables.append(Table(
            "Semantic-temporal correlation agreement (TIN paper, Fig. 6)",
            ["run", "model", "target categories", "strong", "medium", "poor", "undefined r", "mean r"], rows,
            f"Dataset {js.get('dataset')}; {js.get('n_samples', 0):,} samples of {'+'.join(opts.get('splits', []))}; "
            f"Pearson r between ground-truth MI and learned correlation over positions 1..{opts.get('n_positions')} "
            f"of the target's own category; bins poor [-1, 0.2], medium (0.2, 0.8], strong (0.8, 1]."))
        settings = js.get("settings") or {}
        if any(len(v) > 1 for v in settings.values()):
            tables.append(Table(
                "Correlation agreement per setting (mean ± std over seeds)", agreement.SETTINGS_HEADER,
                agreement.settings_rows(js.get("models", {}), settings),
                "Shares of the target categories per Pearson bin, averaged over the runs of one setting."))
    gbl = adir / "gauc_by_length.json"
    if gbl.is_file():
        js = json.loads(gbl.read_text())
        buckets = list(next(iter(js.values()), {}))
        rows = [[m, *("–" if v[b]["gauc"] is None else f"{v[b]['gauc']:.4f}" for b in buckets)] for m, v in js.items()]
        first = next(iter(js.values()), {})
        rows.append(["samples", *(str(first[b]["n"]) for b in buckets)])
        tables.append(Table("Test GAUC by history length (TIN paper, Table 3)", ["run", *buckets], rows))
    figs = [(adir / f, t, c) for f, t, c in _ANALYSIS_FIGURES if (adir / f).is_file()]
    return tables, figs


def build_report(run_paths: list[Path], out: Path, analysis_dir: Path | None = None,
                 title: str = "chronorec report") -> tuple[Path, Path]:
    """Write ``out`` (HTML) and ``out.with_suffix('.md')`` (+ ``<stem>_files/``); returns both paths."""
    runs = find_runs(run_paths)
    groups = group_runs(runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    files = out.parent / f"{out.stem}_files"
    if files.exists():
        shutil.rmtree(files)
    files.mkdir()
    sections: list[Section] = []

    results = [metrics_table(groups)]
    gtab = group_metrics_table(groups)
    if gtab is not None:
        results.append(gtab)
    figures: list[Figure] = []
    curves = _curves_figure(groups, files)
    if curves is not None:
        figures.append(Figure("Validation curves", "Selection metric on the validation split per epoch "
                              "(mean over the seeds of a group).", curves.name, _data_uri(curves)))
    sections.append(Section("Results", results, figures))

    data_dirs = sorted({str(r.data_dir) for r in runs if r.data_dir is not None})
    ds_tables = [Table(f"Dataset {DatasetSchema.load(Path(d) / 'schema.json').name}", ["property", "value"], dataset_rows(Path(d)))
                 for d in data_dirs if (Path(d) / "schema.json").is_file()]
    missing = [d for d in data_dirs if not (Path(d) / "schema.json").is_file()]
    note = f"Prepared data not found: {', '.join(missing)}" if missing else ""
    gap_tables, gap_figures = _gap_sections([Path(d) for d in data_dirs if d not in missing], files)
    sections.append(Section("Data", ds_tables + gap_tables, gap_figures, note))

    if analysis_dir is not None:
        tables, figs = _analysis_sections(analysis_dir)
        figures = []
        for path, t, c in figs:
            shutil.copyfile(path, files / path.name)
            figures.append(Figure(t, c, path.name, _data_uri(path)))
        sections.append(Section("Semantic-temporal correlation analysis", tables, figures,
                                "" if tables or figures else f"No analysis outputs in {analysis_dir}."))

    configs = [(g.label, [str(r.path) for r in g.runs], json.dumps(g.runs[0].config, indent=2, sort_keys=True))
               for g in groups]
    meta = {"title": title, "generated": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "n_runs": len(runs), "n_groups": len(groups)}
    atomic.write_text(out, render_html(meta, sections, configs))
    md = out.with_suffix(".md")
    atomic.write_text(md, render_markdown(meta, sections, configs, files.name))
    return out, md

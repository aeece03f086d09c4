"""Multi-seed reproduction of the TIN and INTERPOS papers' tables on a prepared dataset.

``reproduce(plan, data, seeds)`` trains every (model, seed) of a plan into one folder and writes the
tables (:mod:`chronorec.train.tables`) in the papers' layouts::

    OUT/<name>/                      name defaults to reproduce-<plan>-<dataset>
      runs/<model-label>/seed<k>/    ordinary run folders (config, env, metrics, checkpoints, predictions)
      results.json                   per row: model, overrides, per-seed test metrics (+ GAUC by length)
      tables.md                      TIN: Tables 1, 3, 3b and 4; INTERPOS: the ranking table

It is resumable: a (model, seed) whose run folder holds ``metrics.json`` is skipped, one with a
checkpoint is resumed, so re-running the command after an interruption only does what is missing.
A run folder started with a different configuration is an error (choose another ``--name``).
``jobs > 1`` trains that many runs at a time, each in its own process with ``cores // jobs`` torch
threads unless ``train.threads`` says otherwise; the tables are the same. Those runs go seed by seed
(every row at the first seed, then every row at the next), runs already started first, so a table
cut short by the end of a session has all its rows at the seeds it reached.

Plans are fixed lists of rows (label, registry name, model options); models not registered are
skipped with a warning. Table 3 (GAUC by history length, TTE-P vs COE) and Table 3b (GAUC by the
history's time span in days, TTE-P vs TTE-T: the paper credits TTE-T's Amazon gain to behaviors
spread over years) are computed from each run's ``predictions/test.parquet`` and the test samples'
stored histories.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import ValidationError

from chronorec.errors import ChronorecError, first_validation_error, warn
from chronorec.models.registry import list_models
from chronorec.train import launch, tables
from chronorec.train.runs import CONFIG, METRICS, checkpoint_path, write_json


@dataclass(frozen=True)
class Spec:
    """One row of a plan: a registered model with option overrides."""

    label: str
    model: str
    overrides: dict[str, Any] = field(default_factory=dict)
    code: str = ""  # TIN Table 1 component code: temporal information, target attention, target representation
    base: str | None = None  # INTERPOS: the row whose NDCG@20 a rhythm variant is compared with

    @property
    def slug(self) -> str:
        keep = "".join(c if c.isalnum() else "-" for c in self.label.lower().replace("'", " prime"))
        return "-".join(p for p in keep.split("-") if p)


TIN_TABLE1 = [
    Spec("Avg Pooling & Concat", "avgpool_concat", code="×××"),
    Spec("Avg Pooling & Product", "avgpool_product", code="××✓"),
    Spec("DIN'", "din_prime", code="×✓×"),
    Spec("DIN", "din", code="×✓✓"),
    Spec("GRU4Rec", "gru4rec_ctr", code="✓×✓"),
    Spec("SASRec", "sasrec_ctr", code="✓×✓"),
    Spec("BERT4Rec", "bert4rec_ctr", code="✓×✓"),
    Spec("DIEN", "dien", code="✓✓×"),
    Spec("DSIN", "dsin", code="✓✓×"),
    Spec("BST", "bst", code="✓✓×"),
    Spec("TIN", "tin", code="✓✓✓"),
    Spec("TIN w/o TTE", "tin_wo_tte", code="×✓✓"),
    Spec("TIN w/o TA", "tin_wo_ta", code="✓×✓"),
    Spec("TIN w/o TR", "tin_wo_tr", code="✓✓×"),
]
TIN_ENCODINGS = [  # Table 4 rows (TTE-P is TIN itself) and Table 3's COE
    Spec("TIN (TTE-T)", "tin_ttet"),
    Spec("TIN (timestamp encoding)", "tin_calendar"),
    Spec("TIN (COE)", "tin_coe"),
]
TIN_PLAN = TIN_TABLE1 + TIN_ENCODINGS
TABLE4_ROWS = {"TTE-P": "TIN", "TTE-T": "TIN (TTE-T)", "Timestamp Encoding": "TIN (timestamp encoding)",
               "COE": "TIN (COE)"}


def _rhythm_rows(label: str, model: str, options: dict[str, Any]) -> list[Spec]:
    return [Spec(label, model, options)] + [
        Spec(f"{label} + rhythm ({f.upper()})", model, {**options, "rhythm": f}, base=label) for f in ("bf", "mf", "gf")
    ]


# INTERPOS's released configs: SASRec hidden 128, LightSANs hidden 64 with 5 interests
INTERPOS_PLAN = [*_rhythm_rows("SASRec", "sasrec", {"dim": 128}),
                 *_rhythm_rows("LightSANs", "lightsans", {"dim": 64, "k_interests": 5}),
                 Spec("GRU4Rec", "gru4rec"), Spec("BERT4Rec", "bert4rec")]
PLANS = {"tin": TIN_PLAN, "interpos": INTERPOS_PLAN}
# training / task defaults of each plan (under the user's --set): INTERPOS early-stops on valid NDCG@10
# (the choice; the released INTERPOS configs stop on MRR@10: --set task.select_metric=mrr@10)
# with patience 10; TIN uses the trainer's defaults (Adam 1e-3, clip 5). Batch sizes differ in unit:
# the released INTERPOS configs' 4096 is RecBole's, i.e. 4096 (prefix, target) pairs, while a chronorec
# next-item batch holds whole sequences (every position trained at once). 64 sequences are ~2,500
# target positions on ml-100k's 50-event windows and ~400 on amazon-beauty's short sequences; on
# ml-100k, 256 sequences left GRU4Rec at test NDCG@10 0.028 after 20 epochs (~200 steps), 32 reached
# 0.0635 in a probe run, 64 reached 0.0575 over 2 seeds (docs/results.md §6). Large datasets may raise
# it (--set train.batch_size=256) for speed.
PLAN_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "tin": {"train": {}, "task": {}},
    "interpos": {"train": {"patience": 10, "batch_size": 64}, "task": {"select_metric": "ndcg@10"}},
}

ConfigMaker = Callable[[Spec, int], Any]  # (row, seed) -> RunConfig


def select(plan: list[Spec], models: list[str] | None) -> list[Spec]:
    """The plan's rows whose model is registered (and in ``models`` when given, by name or label)."""
    known = set(list_models())
    if models:
        wanted = set(models)
        unknown = wanted - {s.model for s in plan} - {s.label for s in plan}
        if unknown:
            raise ChronorecError(f"not in this plan: {', '.join(sorted(unknown))}; plan models: "
                                 f"{', '.join(dict.fromkeys(s.model for s in plan))}")
        plan = [s for s in plan if s.model in wanted or s.label in wanted]
    missing = sorted({s.model for s in plan} - known)
    if missing:
        warn(f"models not registered, skipped: {', '.join(missing)}")
    return [s for s in plan if s.model in known]


def _saved_config(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / CONFIG).read_text())
    except (OSError, ValueError) as err:  # cut short by a kill while it was written
        raise ChronorecError(f"cannot read run config: {err}; remove that run folder", file=run_dir / CONFIG) from None


_SET_SECTION = {"model_options": "model", "task_options": "task"}  # config.json key -> --set section


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{_SET_SECTION.get(key, key) if not prefix else key}"
        out.update(_flat(value, name + ".") if isinstance(value, dict) and value else {name: value})
    return out


def config_differences(config: Any, run_dir: Path) -> list[str]:
    """What differs between ``config`` and the run folder's saved one, as ``option: there X, now Y``
    (``--set`` names); empty when they are the same run."""
    raw = _saved_config(run_dir)
    try:  # read as a RunConfig: an old config.json compares with the options it was trained with
        saved = type(config).model_validate(raw).model_dump(mode="json")
    except ValidationError as err:
        return [f"its config.json is not a run config of this version ({first_validation_error(err)[0]})"]
    there, now = _flat(saved), _flat(config.model_dump(mode="json"))
    return [f"{k}: {there.get(k, '(unset)')} there, {now.get(k, '(unset)')} now"
            for k in sorted(set(there) | set(now)) if there.get(k) != now.get(k)]


def _same_config(config: Any, run_dir: Path) -> bool:
    return not config_differences(config, run_dir)


def finished(config: Any, run_dir: Path) -> dict[str, Any] | None:
    """The metrics.json of a finished run of exactly ``config`` in ``run_dir``, else None."""
    if not (run_dir / METRICS).is_file() or not _same_config(config, run_dir):
        return None
    return json.loads((run_dir / METRICS).read_text())


def run_one(config: Any, run_dir: Path, verbose: bool) -> dict[str, Any]:
    """Train (or resume, or skip) one run folder; returns its metrics.json."""
    if (run_dir / CONFIG).is_file():
        differ = config_differences(config, run_dir)
        if differ:
            raise ChronorecError(f"{run_dir} was started with a different configuration ({'; '.join(differ[:3])}"
                                 f"{'; ...' if len(differ) > 3 else ''}); give the same options, another --name, "
                                 "or remove that folder")
        if not (run_dir / METRICS).is_file():
            launch.resume(run_dir, verbose=verbose)
    else:
        launch.train(config, run_dir=run_dir, verbose=verbose)
    return json.loads((run_dir / METRICS).read_text())


def _history_lengths(data: Path) -> np.ndarray:
    s = pl.read_parquet(data / "samples" / "test.parquet", columns=["hist_start", "hist_end"])
    return (s["hist_end"] - s["hist_start"]).to_numpy()


def _history_spans(data: Path) -> np.ndarray:
    """Per test sample, whole days from its first history behavior to its target (0 without history)."""
    s = pl.read_parquet(data / "samples" / "test.parquet", columns=["hist_start", "hist_end", "ts"])
    ev_ts = pl.read_parquet(data / "events.parquet", columns=["ts"])["ts"].to_numpy()
    start, end, ts = (s[c].to_numpy() for c in ("hist_start", "hist_end", "ts"))
    has = end > start
    first = ev_ts[np.where(has, start, 0)] if ev_ts.size else np.zeros_like(ts)
    return np.where(has, (ts - first) // 86_400, 0)


def _by_length_and_span(
    run_dir: Path, lengths: np.ndarray, spans: np.ndarray
) -> tuple[dict[str, float], dict[str, float]] | None:
    """GAUC by history length and by history time span (days), from one read of the run's predictions."""
    p = run_dir / "predictions" / "test.parquet"
    if not p.is_file():
        return None
    df = pl.read_parquet(p)
    if not {"index", "label", "score", "user"} <= set(df.columns):
        return None
    idx = df["index"].to_numpy()
    label, score, user = df["label"].to_numpy(), df["score"].to_numpy(), df["user"].to_numpy()
    return (tables.gauc_by_length(label, score, user, lengths[idx]),
            tables.gauc_by_length(label, score, user, spans[idx], tables.DEFAULT_SPAN_EDGES_DAYS))


def _share_cores(jobs: int) -> None:
    """Worker start-up: this host's cores are shared by ``jobs`` processes (the trainer's default
    thread count divides the cores by the local world size)."""
    os.environ["LOCAL_WORLD_SIZE"] = str(jobs)


def parallel_order(todo: list[tuple[Any, Path, str]]) -> list[tuple[Any, Path, str]]:
    """The ``(config, run_dir, label)`` items not yet finished, those with a checkpoint (started
    earlier) first, the rest in their given order."""
    todo = [item for item in todo if not (item[1] / METRICS).is_file()]
    return sorted(todo, key=lambda item: not checkpoint_path(item[1], "last").is_file())  # stable


def _summary(metrics: dict[str, Any]) -> str:
    """One line of a finished run's metrics.json: the selection metric on test and valid, best epoch."""
    key = metrics.get("select_metric", "")
    test, valid = (f"{v:.4f}" if isinstance(v, float) else "-" for v in
                   (metrics.get("test", {}).get(key), metrics.get("valid", {}).get(key)))
    return (f"test {key} {test} (valid {valid}, best epoch {metrics.get('best_epoch')} of "
            f"{metrics.get('epochs')}, {metrics.get('train_seconds', 0) / 60:.1f} min training)")


def run_parallel(todo: list[tuple[Any, Path, str]], jobs: int, echo: Callable[[str], None] = print) -> None:
    """Train ``(config, run_dir, label)`` items ``jobs`` at a time in fresh processes; the first
    failure cancels what has not started and is raised once the running ones end."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ChronorecError("reproduce --jobs runs its own processes; do not start it under torchrun")
    context = multiprocessing.get_context("spawn")  # a fork would copy this process's torch threads
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_share_cores, initargs=(jobs,)) as pool:
        futures = {pool.submit(run_one, config, run_dir, False): label for config, run_dir, label in todo}
        try:
            for n, future in enumerate(as_completed(futures), 1):
                echo(f"[{n}/{len(todo)}] finished {futures[future]}: {_summary(future.result())}")
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _finished_rows(rows: list[Spec], seeds: list[int], out_dir: Path,
                   make_config: ConfigMaker) -> dict[str, list[dict[str, Any]]]:
    """Of ``rows``, those whose every seed has a finished run folder in ``out_dir`` with the config the
    same call would give it, as label -> metrics.json per seed (a row started with other options, or
    not finished, stays out)."""
    done = {}
    for spec in rows:
        try:
            metrics = [finished(make_config(spec, seed), out_dir / "runs" / spec.slug / f"seed{seed}") for seed in seeds]
        except ChronorecError:  # an option this row's model does not take, or an unreadable folder
            continue
        if all(m is not None for m in metrics):
            done[spec.label] = metrics
    return done


def reproduce(
    plan_name: str, plan: list[Spec], data: Path, seeds: list[int], out_dir: Path, make_config: ConfigMaker,
    *, verbose: bool = True, echo: Callable[[str], None] = print, jobs: int = 1, full: list[Spec] | None = None,
) -> dict[str, Any]:
    """Run every (row, seed) of ``plan`` into ``out_dir`` and write results.json and tables.md.

    ``full``: the paper's whole plan when ``plan`` is a ``--models`` subset of it. Its other rows are not
    trained, but those already finished in ``out_dir`` with the same options stay in the tables, so
    re-running a few rows of a table does not drop the others from it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if jobs > 1:
        todo = parallel_order([(make_config(spec, seed), out_dir / "runs" / spec.slug / f"seed{seed}",
                                f"{spec.label} seed {seed}") for seed in seeds for spec in plan])
        echo(f"{len(todo)} runs to train, {jobs} at a time")
        run_parallel(todo, jobs, echo)
    total, k = len(plan) * len(seeds), 0
    kept: dict[str, list[dict[str, Any]]] = {}  # label -> metrics per seed of rows not trained by this call
    if full:
        kept = _finished_rows([s for s in full if s not in plan], seeds, out_dir, make_config)
        if kept:
            echo(f"kept in the tables (finished earlier, same options): {', '.join(kept)}")
        plan = [s for s in full if s in plan or s.label in kept]  # the paper's row order
    lengths = _history_lengths(data) if plan_name == "tin" else None
    spans = _history_spans(data) if plan_name == "tin" else None
    rows: dict[str, dict[str, Any]] = {}
    for spec in plan:
        row = rows.setdefault(spec.label, {"model": spec.model, "overrides": spec.overrides, "seeds": [],
                                           "test": [], "valid": [], "by_length": [], "by_span": []})
        for i, seed in enumerate(seeds):
            run_dir = out_dir / "runs" / spec.slug / f"seed{seed}"
            if spec.label in kept:
                m = kept[spec.label][i]
            else:
                k += 1
                echo(f"[{k}/{total}] {spec.label} seed {seed} -> {run_dir}")
                m = run_one(make_config(spec, seed), run_dir, verbose)
            row["seeds"].append(seed)
            row["test"].append(m["test"])
            row["valid"].append(m["valid"])
            if lengths is not None and spans is not None:
                buckets = _by_length_and_span(run_dir, lengths, spans)
                if buckets is not None:
                    row["by_length"].append(buckets[0])
                    row["by_span"].append(buckets[1])
        write_json(out_dir / "results.json", {"plan": plan_name, "data": str(data), "rows": rows})
    text = render(plan_name, plan, rows, data, seeds)
    (out_dir / "tables.md").write_text(text)
    return {"rows": rows, "tables": text}


def render(plan_name: str, plan: list[Spec], rows: dict[str, dict[str, Any]], data: Path, seeds: list[int]) -> str:
    """tables.md: the plan's tables from collected per-seed metrics."""
    tests = {label: r["test"] for label, r in rows.items()}
    head = f"# Reproduction: {plan_name} on `{data}`\n\nSeeds: {', '.join(map(str, seeds))}; test split; mean ± std over seeds.\n"
    if plan_name != "tin":
        bases = {s.label: s.base for s in plan if s.base}
        return head + "\n## Next-item ranking (INTERPOS)\n\n" + tables.ranking_table(tests, bases) + "\n"
    codes = {s.label: s.code for s in plan}
    t1 = {s.label: tests[s.label] for s in TIN_TABLE1 if s.label in tests}
    parts = [head, "## Table 1: overall (Δ% vs Avg Pooling & Concat)\n", tables.table1(t1, codes, "Avg Pooling & Concat")]
    by_len = {"TTE-P": rows.get("TIN", {}).get("by_length", []), "COE": rows.get("TIN (COE)", {}).get("by_length", [])}
    if by_len["TTE-P"] or by_len["COE"]:
        parts += ["\n## Table 3: GAUC by history length, TTE-P vs COE\n", tables.table3(by_len)]
    by_span = {"TTE-P": rows.get("TIN", {}).get("by_span", []), "TTE-T": rows.get("TIN (TTE-T)", {}).get("by_span", [])}
    if by_span["TTE-P"] or by_span["TTE-T"]:
        parts += ["\n## Table 3b: GAUC by history time span (days), TTE-P vs TTE-T\n",
                  tables.table3(by_span, other="TTE-T", header="History time span (days)")]
    t4 = {enc: tests[label] for enc, label in TABLE4_ROWS.items() if label in tests}
    if t4:
        parts += ["\n## Table 4: temporal encodings (Δ% vs TTE-P)\n", tables.table4(t4)]
    return "\n".join(parts) + "\n"

"""The Python API: what the CLI does, as functions (``import chronorec as cr``).

    import chronorec as cr

    prep = cr.prepare("atomic", "../shared/data/ml-100k", out="prepared/ml100k-next",
                      protocol="next-item-last-out")
    run = cr.fit(prep.out, "sasrec", seed=0, epochs=5, model={"rhythm": "mf"}, train={"batch_size": 64})
    loaded = cr.load_run(run)              # model (eval mode), dataset, task, config
    loaded.evaluate("test")                # {"ndcg@10": ..., ...}, the metrics `chronorec evaluate` prints
    loaded.predict("test", raw_ids=True)   # Polars frame, the rows `chronorec predict` writes
    table = cr.reproduce("interpos", prep.out, seeds=3, jobs=2, train={"batch_size": 64})
    cr.report([table["folder"]], out="report.html")

Every function validates as its command does and raises :class:`chronorec.errors.ChronorecError`
with the same one-line message. Option sections (``model``, ``train``, ``task``, ``longtail``) are
dicts of the options ``chronorec models --options`` and ``docs/training.md`` list; nested keys are
nested dicts (``model={"mlp": {"hidden": [80, 40]}}``).

Torch is imported only by the functions that train or load a model, so ``prepare`` stays as light
as ``chronorec prepare``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chronorec.errors import ChronorecError

if TYPE_CHECKING:
    from chronorec.data.prepare import PrepareResult
    from chronorec.train.runs import LoadedRun

__all__ = ["fit", "list_models", "load_run", "prepare", "report", "reproduce", "resume"]


def prepare(
    source: str,
    path: str | Path | None = None,
    *,
    out: str | Path,
    protocol: str,
    mapping: dict[str, str] | None = None,
    time_unit: str = "auto",
    sep: str | None = None,
    item_attrs: str | Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> PrepareResult:
    """Load ``path`` with the source ``source`` and write the prepared dataset folder ``out``.

    ``mapping`` maps roles to column names (``{"user": "userId", "item": "movieId", "time":
    "timestamp"}``) for tabular sources; ``options`` are :class:`~chronorec.data.prepare.PrepareOptions`
    fields (``kcore``, ``max_history``, ``n_bins``, ``head_share``, ``group_thresholds``,
    ``group_names``, ``split_dates``, ``history_n``, ``dedupe``, ``min_user_events``,
    ``short_users``, ``seed``, ``name``). ``source="synthetic"`` generates the planted-pattern log
    (no ``path``). A repeated call with the same inputs and options returns at once without reading
    the data (``result.rebuilt`` is False); ``force`` rebuilds. ``progress`` is called with each
    stage's name.
    """
    from chronorec.data import store
    from chronorec.data.prepare import PrepareOptions, cached_result
    from chronorec.data.prepare import prepare as run_prepare
    from chronorec.data.sources import load_source

    out = store.check_out_dir(Path(out))
    path = Path(path) if path is not None else None
    item_attrs = Path(item_attrs) if item_attrs is not None else None
    synthetic = source == "synthetic"
    if options.get("split_dates") is not None:
        options["split_dates"] = tuple(options["split_dates"])
    if options.get("name") is None:
        options["name"] = out.absolute().name or None
    opts = PrepareOptions.create(protocol=protocol, **options)
    if not synthetic and path is None:
        raise ChronorecError(f"source {source!r} needs a path (only 'synthetic' has none)")
    if path is not None and not synthetic and not path.exists():
        raise ChronorecError("input path not found", file=path)
    # a key of the request itself (inputs' size and mtime, options), so an unchanged call skips loading
    request_key = store.cache_key({
        "source": source,
        "path": store.file_fingerprint([path]) if path is not None and not synthetic else None,
        "item_attrs": store.file_fingerprint([item_attrs]) if item_attrs else None,
        "map": mapping, "time_unit": time_unit, "sep": sep,
        "options": opts.model_dump(mode="json"),
    })  # fmt: skip
    manifest = store.read_manifest(out)
    if not force and manifest is not None and manifest.get("request_key") == request_key:
        try:
            store.validate_prepared(out)
            return cached_result(out, manifest.get("key", ""), 0.0)
        except ChronorecError:
            pass  # damaged or hand-edited: rebuild
    if synthetic:
        from chronorec.data.synthetic import synthetic_source

        data = synthetic_source(seed=opts.seed)
    else:
        assert path is not None
        data = load_source(source, path, mapping=mapping, time_unit=time_unit, sep=sep,  # type: ignore[arg-type]
                           item_attrs=item_attrs)
    return run_prepare(data, out, opts, force=force, progress=progress, request_key=request_key, consume=True)


def fit(
    data: str | Path,
    model: str,
    /,
    *,
    seed: int | None = None,
    epochs: int | None = None,
    out: str | Path = "runs",
    name: str | None = None,
    verbose: bool = True,
    **sections: dict[str, Any],
) -> Path:
    """Train ``model`` on the prepared dataset ``data``; returns the run folder ``out/<name>/<id>``.

    ``sections`` are ``model=``, ``train=``, ``task=`` and ``longtail=`` option dicts, validated as
    ``--set SECTION.KEY=VALUE`` is (``longtail={"strategy": "pin"}`` trains PIN around ``model``).
    (``data`` and ``model`` are positional, so the ``model=`` options dict does not clash with the name.)
    Under ``torchrun`` every process calls this and they train one run with DDP.
    """
    from chronorec.train import launch
    from chronorec.train.build import run_config
    from chronorec.train.config import SECTIONS

    overrides = _sections(sections, SECTIONS)
    cfg = run_config(Path(data), model, overrides, seed=seed, epochs=epochs, name=name)
    return launch.train(cfg, out=Path(out), verbose=verbose)


def resume(run_dir: str | Path, *, verbose: bool = True) -> Path:
    """Continue a killed or interrupted run from its last checkpoint (a finished run is left alone)."""
    from chronorec.train import launch

    return launch.resume(Path(run_dir), verbose=verbose)


def load_run(run_dir: str | Path, checkpoint: str = "best") -> LoadedRun:
    """A trained run rebuilt from its folder: ``.model`` (eval mode, CPU), ``.dataset``, ``.task``,
    ``.config``; ``.evaluate(split)`` and ``.predict(split, raw_ids=...)``. ``checkpoint`` is
    ``best`` (falls back to ``last``) or ``last``."""
    from chronorec.train.runs import load_run as load

    if checkpoint not in ("best", "last"):
        raise ChronorecError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    return load(run_dir, checkpoint)  # type: ignore[arg-type]


def list_models(task: str | None = None) -> list[str]:
    """Registered model names, all or those of one task (``ctr`` or ``next_item``)."""
    from chronorec.models.registry import list_models as registered

    if task not in (None, "ctr", "next_item"):
        raise ChronorecError(f"task must be 'ctr' or 'next_item', got {task!r}")
    return registered(task)


def reproduce(
    plan: str,
    data: str | Path,
    *,
    seeds: int = 3,
    seed_base: int = 0,
    epochs: int | None = None,
    models: list[str] | None = None,
    out: str | Path = "runs",
    name: str | None = None,
    jobs: int = 1,
    verbose: bool = True,
    echo: Callable[[str], None] = print,
    **sections: dict[str, Any],
) -> dict[str, Any]:
    """A paper's table over seeds: ``plan`` is ``tin`` (TIN Tables 1, 3, 4) or ``interpos``.

    Trains every row of the plan (or the ``models`` subset, by registry name or row label) for each
    seed into ``out/<name>/runs/<row>/seed<N>/`` (finished runs are kept, killed ones resume), ``jobs``
    at a time, and writes the tables there. ``sections`` (``model=``, ``train=``, ``task=``) apply
    to every run over the plan's defaults. Returns ``{"tables": markdown, "folder": Path, ...}``.
    """
    from chronorec.data.schema import DatasetSchema
    from chronorec.train import reproduce as repro
    from chronorec.train.build import run_config
    from chronorec.train.config import SECTIONS

    if plan not in repro.PLANS:
        raise ChronorecError(f"unknown plan {plan!r}; plans: {', '.join(repro.PLANS)}")
    over = _sections(sections, SECTIONS)
    data = Path(data).expanduser().resolve()
    if not (data / "schema.json").is_file():
        raise ChronorecError(f"not a prepared dataset (no schema.json): {data}")
    schema = DatasetSchema.load(data / "schema.json")
    want = "ctr" if plan == "tin" else "next_item"
    if schema.task != want:
        raise ChronorecError(f"reproduce {plan} needs a {want} dataset; {data} was prepared for {schema.task}")
    rows = repro.select(repro.PLANS[plan], models)
    if not rows:
        raise ChronorecError("no registered model left to run")
    defaults = repro.PLAN_DEFAULTS[plan]

    def make_config(spec: repro.Spec, seed: int) -> Any:
        merged = {"model": {**spec.overrides, **over["model"]}, "train": {**defaults["train"], **over["train"]},
                  "task": {**defaults["task"], **over["task"]}, "longtail": over["longtail"]}
        return run_config(data, spec.model, merged, seed=seed, epochs=epochs, name=f"{schema.name}-{spec.slug}")

    for spec in rows:  # fail on a bad option before the first hour of training, not after it
        make_config(spec, seed_base)
    folder = Path(out) / (name or f"reproduce-{plan}-{schema.name}")
    result = repro.reproduce(plan, rows, data, list(range(seed_base, seed_base + seeds)), folder, make_config,
                             verbose=verbose, echo=echo, jobs=jobs)
    return {**result, "folder": folder}


def report(runs: list[str | Path], *, out: str | Path = "report.html", analysis: str | Path | None = None,
           title: str = "chronorec report") -> tuple[Path, Path]:
    """One offline HTML report (and its Markdown twin) over run folders or folders holding runs:
    metrics as mean ± std over seeds, head/tail groups, configs, dataset summaries and gaps, and the
    figures of an ``analyze correlation`` folder. Returns the HTML and Markdown paths."""
    import os

    from chronorec.analysis.report import build_report

    out = Path(out)
    if analysis is not None and not Path(analysis).is_dir():
        raise ChronorecError("analysis folder not found (write it with `chronorec analyze correlation`)",
                             file=analysis)
    if out.is_dir():
        raise ChronorecError("the report's output is a folder; give an .html file name", file=out)
    try:  # before reading any run: an unwritable output fails at once, as one line
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.{os.getpid()}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ChronorecError(f"cannot write the report here: {err.strerror or err}", file=out) from None
    return build_report([Path(r) for r in runs], out, Path(analysis) if analysis is not None else None, title)


def _sections(sections: dict[str, Any], known: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Option sections passed as keyword dicts, checked and completed with empty ones."""
    unknown = sorted(set(sections) - set(known))
    if unknown:
        raise ChronorecError(f"unknown option section {', '.join(unknown)}; sections: {', '.join(known)}")
    for section, values in sections.items():
        if not isinstance(values, dict):
            raise ChronorecError(f"{section}= must be a dict of options, got {type(values).__name__}")
    return {s: dict(sections.get(s) or {}) for s in known}

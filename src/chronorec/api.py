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

import os
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

    _check(source, str, "source", "a source name such as 'csv' or 'synthetic'")
    _check(time_unit, str, "time_unit", "one of auto, s, ms, iso")
    _check(sep, (str, type(None)), "sep", "a separator string or None")
    if mapping is not None and not (isinstance(mapping, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())):
        raise ChronorecError(f"mapping= must be a dict of role -> column name, got {mapping!r}")
    if progress is not None and not callable(progress):
        raise ChronorecError(f"progress= must be a function of the stage name, got {progress!r}")
    out = store.check_out_dir(_path(out, "out"))
    path = _path(path, "path") if path is not None else None
    item_attrs = _path(item_attrs, "item_attrs") if item_attrs is not None else None
    synthetic = source == "synthetic"
    if options.get("split_dates") is not None:
        dates = options["split_dates"]
        if isinstance(dates, str) or not isinstance(dates, (list, tuple)):
            raise ChronorecError(f"split_dates= must be a pair (VALID_START, TEST_START), got {dates!r}")
        options["split_dates"] = tuple(dates)
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
    command: list[str] | None = None,
    **sections: dict[str, Any],
) -> Path:
    """Train ``model`` on the prepared dataset ``data``; returns the run folder ``out/<name>/<id>``.

    ``sections`` are ``model=``, ``train=``, ``task=`` and ``longtail=`` option dicts, validated as
    ``--set SECTION.KEY=VALUE`` is (``longtail={"strategy": "pin"}`` trains PIN around ``model``).
    (``data`` and ``model`` are positional, so the ``model=`` options dict does not clash with the name.)
    Under ``torchrun`` every process calls this and they train one run with DDP. Training sets
    process-wide torch state that stays after the call: the thread count (``train.threads``) and
    deterministic algorithms (``train.deterministic``). ``command`` is recorded in the run's env.json.
    """
    from chronorec.train import launch
    from chronorec.train.build import run_config
    from chronorec.train.config import SECTIONS
    from chronorec.train.task_options import check_task_options

    overrides = _sections(sections, SECTIONS)
    _check(name, (str, type(None)), "name", "a run name or None")
    out = _run_parent(out)
    cfg = run_config(_path(data, "data"), model, overrides, seed=seed, epochs=epochs, name=name)
    check_task_options(cfg.task, cfg.task_options)  # before the run folder exists, not inside it
    return launch.train(cfg, out=out, command=command, verbose=verbose)


def resume(run_dir: str | Path, *, verbose: bool = True) -> Path:
    """Continue a killed or interrupted run from its last checkpoint (a finished run is left alone)."""
    from chronorec.train import launch

    return launch.resume(_path(run_dir, "run_dir"), verbose=verbose)


def load_run(run_dir: str | Path, checkpoint: str = "best") -> LoadedRun:
    """A trained run rebuilt from its folder: ``.model`` (eval mode, CPU), ``.dataset``, ``.task``,
    ``.config``; ``.evaluate(split)`` and ``.predict(split, raw_ids=...)``. ``checkpoint`` is
    ``best`` (falls back to ``last``) or ``last``."""
    from chronorec.train.runs import load_run as load

    if checkpoint not in ("best", "last"):
        raise ChronorecError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    return load(_path(run_dir, "run_dir"), checkpoint)  # type: ignore[arg-type]


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
    models: list[str] | str | None = None,
    out: str | Path = "runs",
    name: str | None = None,
    jobs: int = 1,
    verbose: bool = True,
    echo: Callable[[str], None] = print,
    **sections: dict[str, Any],
) -> dict[str, Any]:
    """A paper's table over seeds: ``plan`` is ``tin`` (TIN Tables 1, 3, 4) or ``interpos``.

    Trains every row of the plan (or the ``models`` subset, by registry name or row label; a string is
    comma-separated, as ``--models``) for each seed into ``out/<name>/runs/<row>/seed<N>/`` (finished
    runs are kept, killed ones resume), ``jobs`` at a time, and writes the tables there. ``sections`` (``model=``, ``train=``, ``task=``) apply
    to every run over the plan's defaults. Returns ``{"tables": markdown, "folder": Path, ...}``.
    With ``jobs > 1`` the runs train in spawned processes, so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    from chronorec.data.schema import DatasetSchema
    from chronorec.train import reproduce as repro
    from chronorec.train.build import check_name, run_config
    from chronorec.train.config import SECTIONS

    if plan not in repro.PLANS:
        raise ChronorecError(f"unknown plan {plan!r}; plans: {', '.join(repro.PLANS)}")
    over = _sections(sections, SECTIONS)
    seeds, seed_base, jobs = _int(seeds, "seeds", 1), _int(seed_base, "seed_base"), _int(jobs, "jobs", 1)
    _check(name, (str, type(None)), "name", "a folder name or None")
    if isinstance(models, str):  # "sasrec,gru4rec", as --models takes it
        models = [m.strip() for m in models.split(",") if m.strip()]
    if models is not None and not (models and all(isinstance(m, str) for m in models)):
        raise ChronorecError(f"models= must be a non-empty list of model names or row labels, got {models!r}")
    out = _run_parent(out)
    data = _path(data, "data").resolve()
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
    folder = Path(out) / (check_name(name, "table name") if name is not None else f"reproduce-{plan}-{schema.name}")
    result = repro.reproduce(plan, rows, data, list(range(seed_base, seed_base + seeds)), folder, make_config,
                             verbose=verbose, echo=echo, jobs=jobs, full=repro.select(repro.PLANS[plan], None))
    return {**result, "folder": folder}


def report(runs: list[str | Path] | str | Path, *, out: str | Path = "report.html", analysis: str | Path | None = None,
           title: str = "chronorec report") -> tuple[Path, Path]:
    """One offline HTML report (and its Markdown twin) over run folders or folders holding runs:
    metrics as mean ± std over seeds, head/tail groups, configs, dataset summaries and gaps, and the
    figures of an ``analyze correlation`` folder (``runs`` may be one folder). Returns the HTML and
    Markdown paths."""
    from chronorec.analysis.report import build_report

    if isinstance(runs, (str, os.PathLike)):  # one folder, not a list of its characters
        runs = [runs]
    if not isinstance(runs, (list, tuple)) or not runs:
        raise ChronorecError(f"runs must be a non-empty list of run folders, got {runs!r}")
    folders = [_path(r, "each of runs") for r in runs]
    _check(title, str, "title", "a string")
    out = _path(out, "out")
    analysis = _path(analysis, "analysis") if analysis is not None else None
    if analysis is not None and not analysis.is_dir():
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
    return build_report(folders, out, analysis, title)


def _sections(sections: dict[str, Any], known: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Option sections passed as keyword dicts, checked and completed with empty ones."""
    unknown = sorted(set(sections) - set(known))
    if unknown:
        raise ChronorecError(f"unknown option section {', '.join(unknown)}; sections: {', '.join(known)}")
    for section, values in sections.items():
        if not isinstance(values, dict):
            raise ChronorecError(f"{section}= must be a dict of options, got {type(values).__name__}")
    return {s: dict(sections.get(s) or {}) for s in known}


def _path(value: object, what: str) -> Path:
    """A path argument (``str`` or ``os.PathLike``, ``~`` expanded) as a Path; anything else one line."""
    if isinstance(value, (str, os.PathLike)) and str(os.fspath(value)).strip():
        return Path(value).expanduser()
    raise ChronorecError(f"{what} must be a path (str or pathlib.Path), got {value!r}")


def _run_parent(out: object) -> Path:
    """The parent folder of run folders: refused at once when it is a file (not by a raw OSError later)."""
    path = _path(out, "out")
    if path.exists() and not path.is_dir():
        raise ChronorecError("output path exists and is not a folder", file=path)
    return path


def _int(value: object, what: str, minimum: int | None = None) -> int:
    """An integer argument (an integer string like ``"3"`` is accepted, as the option parsers do)."""
    try:
        number = int(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None:
        raise ChronorecError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise ChronorecError(f"{what} must be at least {minimum}, got {number}")
    return number


def _check(value: object, kinds: type | tuple[type, ...], what: str, expected: str) -> None:
    if not isinstance(value, kinds):
        raise ChronorecError(f"{what} must be {expected}, got {value!r}")

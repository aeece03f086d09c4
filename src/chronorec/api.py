"""The Python API: what the CLI does, as functions (``import chronorec as cr``).

    import chronorec as cr

    prep = cr.prepare("atomic", "../shared/data/ml-100k", out="prepared/ml100k-next",
                      protocol="next-item-last-out")
    run = cr.fit(prep.out, "sasrec", seed=0, epochs=5, model={"rhythm": "mf"}, train={"batch_size": 64})
    loaded = cr.load_run(run)              # model (eval mode), dataset, task, config
    loaded.evaluate("test")                # {"ndcg@10": ..., ...}, the metrics `chronorec evaluate` prints
    loaded.predict("test", raw_ids=True)   # Polars frame, the rows `chronorec predict` writes

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

__all__ = ["fit", "list_models", "load_run", "prepare", "resume"]


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

    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ChronorecError(f"unknown option section {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
    for section, values in sections.items():
        if not isinstance(values, dict):
            raise ChronorecError(f"{section}= must be a dict of options, got {type(values).__name__}")
    overrides = {s: dict(sections.get(s) or {}) for s in SECTIONS}
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

"""Start or continue a run: the run folder, the process group, and which training to drive.

:func:`train` makes a new run folder (rank 0, shared with the other ``torchrun`` processes) and
fits a :class:`~chronorec.train.trainer.Trainer`, or PIN's two phases (:mod:`chronorec.train.pin`);
:func:`resume` continues a run from its ``checkpoints/last.pt`` (see the trainer's "exact resume").
A start-up error removes the fresh run folder again while it is still empty.
"""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from chronorec.errors import ChronorecError
from chronorec.train.build import manifest_key
from chronorec.train.config import RunConfig
from chronorec.train.ddp import broadcast, init_distributed, shutdown
from chronorec.train.runs import CONFIG, METRICS, new_run_dir
from chronorec.train.trainer import Trainer


def _launch(config: RunConfig, run_dir: Path | None, out: Path, resume: bool,
            command: list[str] | None, verbose: bool) -> Path:
    info = init_distributed(config.train.device)
    fresh: Path | None = None  # a folder this call created, removed again if start-up fails before writing
    try:
        if info.is_main and run_dir is None:
            run_dir = fresh = new_run_dir(out, config.name, config.train.seed)
        elif info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(broadcast(str(run_dir), info))
        if verbose and info.is_main:
            tqdm.write(f"{'resuming' if resume else 'run'} {run_dir}")
        if config.longtail.strategy == "pin" and config.longtail.phase == "full":
            from chronorec.train.pin import fit_pin

            fit_pin(config, run_dir, info, resume, command, verbose)
        else:
            Trainer(config, run_dir, info, resume=resume, command=command, verbose=verbose).fit()
    except BaseException:
        for folder in (fresh, fresh.parent) if fresh is not None else ():
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # e.g. a bad task option: no empty run (or run-name) folder left behind
        raise
    finally:
        shutdown(info)
    return run_dir


def train(config: RunConfig, *, out: Path = Path("runs"), run_dir: Path | None = None,
          command: list[str] | None = None, verbose: bool = True) -> Path:
    """Train a new run into ``run_dir`` (default ``out/<config.name>/<id>``); returns the run folder.

    Under ``torchrun`` every process calls this; rank 0 creates the folder and tells the others.
    """
    return _launch(config, run_dir, out, False, command, verbose)


def resume(run_dir: Path, *, command: list[str] | None = None, verbose: bool = True) -> Path:
    """Continue a run from its ``checkpoints/last.pt`` (from scratch if it never checkpointed).

    A run that already wrote ``metrics.json`` is left as it is.
    """
    run_dir = Path(run_dir)
    plan = run_dir / "pin.json"  # a PIN run resumes from its full plan (stage one may be unfinished)
    source = plan if plan.is_file() else run_dir / CONFIG
    config = RunConfig.load(source) if source.is_file() else None
    if config is None:
        raise ChronorecError(f"not a run folder (no {CONFIG}): {run_dir}")
    if (run_dir / METRICS).is_file():
        if verbose:
            tqdm.write(f"run {run_dir} already finished (metrics.json exists)")
        return run_dir
    key = manifest_key(config.data)
    if config.cache_key and key and key != config.cache_key:  # re-prepared with other inputs or options
        raise ChronorecError(
            f"prepared data {config.data} changed since this run started (cache key {key[:12]}..., run "
            f"started on {config.cache_key[:12]}...); resuming would train on other data: start a new run",
            file=source,
        )
    return _launch(config, run_dir, run_dir.parent, True, command, verbose)

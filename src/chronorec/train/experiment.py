"""Experiment files: a whole run described in one YAML, TOML or JSON file (``chronorec train --config``).

The keys are :class:`~chronorec.train.config.RunConfig`'s, so a run's own ``config.json`` is an
experiment file too (``chronorec train --config runs/x/<id>/config.json --seed 1`` re-runs it with
another seed)::

    # sasrec-mf.yaml
    data: prepared/beauty-next      # relative paths are taken from the working directory
    model: sasrec
    name: beauty-sasrec-mf          # optional (default <dataset>-<model>)
    model_options: {rhythm: mf, dim: 64}
    train: {batch_size: 64, epochs: 60, patience: 10}
    task: {}                        # or task_options, as config.json writes it
    longtail: {}

``--data``, ``--model``, ``--seed``, ``--epochs``, ``--name`` and ``--set SECTION.KEY=VALUE`` given
beside the file override it. A PIN run's ``config.json`` describes only its plugin stage on that run's backbone, so its
``pin.json`` (the whole two-stage plan) is read instead, with a warning. ``cache_key``, ``dataset``
and the task name of a saved config.json are not options: the key is only compared with the
prepared folder's when the run uses that same folder (a warning when the data changed since), the
task name must be the data's task, and a name that is just the ``<dataset>-<model>`` default is
derived anew (so ``--data`` or ``--model`` gives the run its own default name). An empty file or a
key given twice is an error, not silently nothing or the last value.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from chronorec.errors import ChronorecError, first_validation_error, warn
from chronorec.train.config import with_legacy_options

SUFFIXES = (".yaml", ".yml", ".toml", ".json")
TASKS = ("ctr", "next_item")


class Experiment(BaseModel):
    """An experiment file's content, before the options are validated against the model and task."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)

    data: str | None = None
    model: str | None = None
    name: str | None = None
    model_options: dict[str, Any] = Field(default_factory=dict)
    task_options: dict[str, Any] = Field(default_factory=dict, alias="task")
    train: dict[str, Any] = Field(default_factory=dict)
    longtail: dict[str, Any] = Field(default_factory=dict)
    cache_key: str | None = None  # a saved config.json's: compared with the prepared folder's, not an option
    dataset: str | None = None  # a saved config.json's schema name: ignored, it follows from the data
    _task: str | None = PrivateAttr(None)  # a saved config.json's task name, checked against the data's
    _file: Path | None = PrivateAttr(None)

    def overrides(self) -> dict[str, dict[str, Any]]:
        """The file's options by ``--set`` section."""
        return {"model": dict(self.model_options), "train": dict(self.train), "task": dict(self.task_options),
                "longtail": dict(self.longtail)}

    def default_name(self) -> bool:
        """Whether ``name`` is just the ``<dataset>-<model>`` default a saved config.json records (so a
        run on other data or with another model gets its own default instead)."""
        return self.dataset is not None and self.name == f"{self.dataset}-{self.model}"

    def check_task(self, data: Path) -> None:
        """A file written for one task (its ``task: ctr`` name) refused on data prepared for the other."""
        from chronorec.data.schema import DatasetSchema

        schema = Path(data).expanduser() / "schema.json"
        if self._task is None or not schema.is_file():
            return  # no task name, or not prepared data (run_config says so)
        task = DatasetSchema.load(schema).task
        if task != self._task:
            raise ChronorecError(f"this file describes a {self._task} run but {data} was prepared for {task}",
                                 file=self._file)


def _unique(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A JSON object from its key-value pairs; a key given twice is an error (not the last one silently)."""
    out: dict[Any, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ChronorecError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _read(path: Path) -> Any:
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text, object_pairs_hook=_unique)
    if path.suffix == ".toml":
        return tomllib.loads(text)  # TOML itself refuses a key given twice
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[tuple[str, str]] = set()
            for key, _ in node.value:  # written keys only: a merge (<<) may be overridden
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in seen:
                        raise ChronorecError(f"key {key.value!r} is given twice (at line {key.start_mark.line + 1})")
                    seen.add((key.tag, key.value))
            return super().construct_mapping(node, deep=deep)

    return yaml.load(text, Loader=Loader)  # a SafeLoader subclass: safe


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; every problem is one line naming the file."""
    path = Path(path)
    if path.name == "config.json" and (path.parent / "pin.json").is_file():
        # a PIN run's config.json is its plugin stage, bound to this run's backbone checkpoint
        warn(f"{path} is the plugin stage of a PIN run; reading the whole run's plan, {path.parent / 'pin.json'}")
        path = path.parent / "pin.json"
    if path.suffix not in SUFFIXES:
        raise ChronorecError(f"experiment file must end in {', '.join(SUFFIXES)}", file=path)
    try:
        raw = _read(path)
    except FileNotFoundError:
        raise ChronorecError("experiment file not found", file=path) from None
    except ChronorecError as err:
        raise ChronorecError(err.message, file=path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ChronorecError(f"cannot read experiment file: {err}", file=path) from None
    except Exception as err:  # the parsers' own errors (JSONDecodeError, TOMLDecodeError, YAMLError)
        mark = getattr(err, "problem_mark", None)  # YAML's errors carry the place apart from the text
        if mark is not None:
            first = f"{getattr(err, 'problem', None) or 'syntax error'} (at line {mark.line + 1}, column {mark.column + 1})"
        else:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ChronorecError(f"not valid {path.suffix[1:].upper()}: {first}", file=path) from None
    if raw is None or raw == {}:
        raise ChronorecError("the experiment file is empty (no keys)", file=path)
    if not isinstance(raw, dict):
        raise ChronorecError(f"an experiment file holds a mapping of keys, got {type(raw).__name__}", file=path)
    if isinstance(raw.get("task"), dict) and "task_options" in raw:  # (a config.json's task is its name)
        raise ChronorecError("give task or task_options (the same options), not both", file=path)
    task = raw.get("task")
    if "task" in raw and not isinstance(task, dict):  # config.json's task name, not options
        if task is not None and task not in TASKS:
            raise ChronorecError(f"key 'task': a dict of task options or a task name ({', '.join(TASKS)}), "
                                 f"got {task!r}", file=path)
        raw = {k: v for k, v in raw.items() if k != "task"}
        if isinstance(raw.get("task_options"), dict):  # trained with these where the saved file is silent
            raw["task_options"] = with_legacy_options(task, raw["task_options"])
    try:
        exp = Experiment.model_validate(raw)
        exp._task, exp._file = (task if isinstance(task, str) else None), path
        return exp
    except ValidationError as err:
        loc, msg, kind = first_validation_error(err)
        if kind == "extra_forbidden":
            known = "data, model, name, model_options, task (or task_options), train, longtail"
            raise ChronorecError(f"unknown key {loc!r}; keys: {known}", file=path) from None
        raise ChronorecError(f"key {loc!r}: {msg}", file=path) from None


def merge(base: dict[str, dict[str, Any]], top: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``top``'s options over ``base``'s, section by section; nested option dicts merge key by key."""

    def deep(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for key, value in b.items():
            out[key] = deep(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    return {s: deep(base.get(s, {}), top.get(s, {})) for s in {*base, *top}}

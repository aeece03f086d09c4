"""The ``task.*`` options of each task, typed, so ``--set task.KEY=VALUE`` is checked before training.

Without this the options went straight into the task's constructor: a wrong type was accepted
silently (``task.exclude_seen=maybe`` switched the option on, ``task.n_negatives=abc`` was kept as
a string) or failed only after the first epoch (``task.select_metric=hit@7`` as a ``KeyError``).
:func:`check_task_options` validates them and returns the values to pass to the task (coerced:
``"true"`` -> ``True``); an error is one line naming the option and the value.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chronorec.errors import ChronorecError, first_validation_error
from chronorec.metrics.ctr import GaucWeight
from chronorec.metrics.ranking import DEFAULT_KS
from chronorec.train.full_softmax import Precision
from chronorec.train.nextitem_task import EXCLUDE_SUFFIX, LossKind, LossNorm


class CTRTaskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gauc_weight: GaucWeight = "impressions"
    select_metric: Literal["gauc", "auc"] = "gauc"


class NextItemTaskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loss: LossKind = "ce"
    n_negatives: int = Field(256, ge=1)
    exclude_seen: bool = False
    ks: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: list(DEFAULT_KS), min_length=1)
    select_metric: str = "ndcg@10"
    loss_precision: Precision = "fp32"
    loss_norm: LossNorm = "epoch"  # run_config records the value in config.json (old files: batch)
    dropout_copies: int = Field(1, ge=1)  # encode each training row up to K times, its targets dealt among them

    @model_validator(mode="after")
    def _metric_is_computed(self) -> NextItemTaskOptions:
        suffixes = ("", EXCLUDE_SUFFIX) if self.exclude_seen else ("",)
        names = [f"{m}@{k}{s}" for s in suffixes for k in self.ks for m in ("hit", "ndcg", "mrr")]
        if self.select_metric not in names:
            raise ValueError(f"select_metric {self.select_metric!r} is not computed; choose one of {', '.join(names)}")
        return self


_OPTIONS: dict[str, type[BaseModel]] = {"ctr": CTRTaskOptions, "next_item": NextItemTaskOptions}


def check_task_options(task: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` validated for ``task`` ("ctr" or "next_item"), with only the keys given."""
    values = dict(options or {})
    cls = _OPTIONS.get(task)
    if cls is None:
        raise ChronorecError(f"unknown task {task!r}; expected one of {', '.join(_OPTIONS)}")
    try:
        return cls.model_validate(values).model_dump(include=set(values))
    except ValidationError as err:
        loc, msg, kind = first_validation_error(err)
        key = loc.split(".")[0] if loc else ""
        if kind == "extra_forbidden":
            msg = f"not an option of the {task} task (its options: {', '.join(cls.model_fields)})"
        where = f"option task.{key} {values[key]!r}" if key in values else "task options"
        raise ChronorecError(f"{where}: {msg}") from None

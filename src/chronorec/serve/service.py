"""A trained run loaded for serving: the model, its preprocessing tables and the two operations.

:class:`ServedModel` is the one object the HTTP layer talks to. It owns

- the model in eval mode (scored under :func:`torch.inference_mode`);
- the lookups of :class:`~chronorec.serve.features.FeatureTables`;
- the history cap (:func:`history_cap`: the training loader's cap, within the model's ``max_len``);
- activity-group routing, :meth:`ServedModel.group_of`: a raw user id → group via the prepared
  users' ``n_train`` and ``schema.groups``. The group goes into ``Batch.group``, so a wrapper that
  routes by group (PIN) needs nothing special here.

Example (in-process, no HTTP)::

    served = ServedModel.load("runs/tin/20240101-000000")
    served.score(served.models.score.model_validate({"history": [...], "candidates": [...], "ts": ...}))
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from chronorec.data.batch import Batch
from chronorec.data.schema import PAD, UNK, DatasetSchema
from chronorec.errors import ChronorecError
from chronorec.serve.features import Encoded, FeatureTables, make_batch
from chronorec.serve.runs import RunInfo, check_prepared, load_model, read_run_info
from chronorec.serve.schemas import Limits, RequestModels, build_request_models, check_times


def model_max_len(model: nn.Module, info: RunInfo | None = None) -> int | None:
    """The longest history a model takes (``max_len`` on the model or its config), if it has one."""
    for holder in (model, getattr(model, "config", None), getattr(model, "cfg", None)):
        value = getattr(holder, "max_len", None) if holder is not None else None
        if isinstance(value, int) and value > 0:
            return value
    if info is not None:
        from chronorec.models.registry import build_config

        try:
            value = getattr(build_config(info.model_name, info.overrides), "max_len", None)
        except ChronorecError:
            value = None
        if isinstance(value, int) and value > 0:
            return value
    return None


def history_cap(info: RunInfo, schema: DatasetSchema, model: nn.Module) -> int:
    """The most recent behaviors a request keeps, as the training loader keeps them: the run's
    ``train.max_len`` (else the longest stored history), within ``schema.max_history`` and the
    model's own ``max_len``."""
    caps = [info.max_len or max(1, schema.max_history_len), schema.max_history, model_max_len(model, info)]
    return min(c for c in caps if c)


class ServedModel:
    """A run ready to answer ``score`` (CTR) or ``recommend`` (next-item) requests."""

    def __init__(self, info: RunInfo, schema: DatasetSchema, model: nn.Module, tables: FeatureTables,
                 limits: Limits | None = None) -> None:
        self.info = info
        self.schema = schema
        self.model = model.eval()
        self.tables = tables
        self.limits = limits or Limits()
        self.models: RequestModels = build_request_models(schema.side_features, self.limits)
        self.task: str = getattr(model, "task", schema.task)
        self.cap: int = history_cap(info, schema, model)
        self._item_weights: torch.Tensor | None = None
        if self.task == "next_item":
            with torch.inference_mode():
                self._item_weights = model.item_weights().detach().contiguous()  # type: ignore[operator]
            if self._item_weights.shape[0] > len(tables.item_raw):
                raise ChronorecError(
                    f"model scores {self._item_weights.shape[0]} items but the item vocabulary has "
                    f"{len(tables.item_raw)}"
                )

    @classmethod
    def load(cls, run_dir: str | Path, limits: Limits | None = None) -> ServedModel:
        """Load a run folder and the lookups of its prepared data."""
        info = read_run_info(run_dir)
        schema = check_prepared(info)
        model = load_model(info, schema)
        return cls(info, schema, model, FeatureTables(info.data_dir, schema), limits)

    @property
    def name(self) -> str:
        return self.info.model_name

    # ------------------------------------------------------------------ routing
    def group_of(self, user: str | None) -> int:
        """Activity group of a raw user id (unseen or absent users: the tail group)."""
        return self.tables.group_of_user(user)

    # ------------------------------------------------------------------ requests
    def _encode(self, rows: list[Any], with_ts: bool) -> Encoded:
        items = [r.item for r in rows]
        sides = {f: [getattr(r, f) for r in rows] for f in self.tables.side_features}
        ts = [r.ts for r in rows] if with_ts else None
        return self.tables.encode(items, sides, ts)

    def _history(self, req: Any) -> tuple[Encoded, int]:
        request_ts = req.ts if req.ts is not None else int(time.time())
        hist = self._encode(req.history, with_ts=True)
        check_times(hist.ts, request_ts)
        return hist, request_ts

    def score(self, req: Any) -> dict[str, Any]:
        """Click probabilities of every candidate after one shared history (one batch).

        ``req`` is an instance of ``self.models.score`` (built per dataset, hence typed ``Any``).
        """
        if self.task != "ctr":
            raise ChronorecError(f"{self.name} is a {self.task} model: use /recommend")
        hist, request_ts = self._history(req)
        cand = self._encode(req.candidates, with_ts=False)
        user = req.user
        batch = make_batch(hist, cand, request_ts, self.tables.user_id(user), self.group_of(user),
                           self.cap, self.tables.side_features)
        with torch.inference_mode():
            probs = torch.sigmoid(self._shared_logits(batch).double())
        unknown_side = {f: hist.unknown_side[f] + cand.unknown_side[f] for f in self.tables.side_features}
        return {
            "scores": probs.tolist(),
            "model": self.name,
            "unknown_items": hist.unknown_items + cand.unknown_items,
            "unknown_side": unknown_side,
        }

    def _shared_logits(self, batch: Batch) -> torch.Tensor:
        """Logits of a batch whose rows share one history: the model's shared-history path
        (history encoded once, ``CTRBase.score_shared_history``) when it has one, else forward."""
        shared = getattr(self.model, "score_shared_history", None)
        return shared(batch) if shared is not None else self.model(batch).logits

    def recommend(self, req: Any) -> dict[str, Any]:
        """Top-k items over the whole catalogue (one matmul), padding/UNK/excluded ids masked.

        ``req`` is an instance of ``self.models.recommend``.
        """
        if self.task != "next_item" or self._item_weights is None:
            raise ChronorecError(f"{self.name} is a {self.task} model: use /score")
        hist, request_ts = self._history(req)
        user = req.user
        batch = make_batch(hist, None, request_ts, self.tables.user_id(user), self.group_of(user),
                           self.cap, self.tables.side_features)
        with torch.inference_mode():
            prepare = getattr(self.model, "prepare_batch", None)  # windowing / BERT4Rec's [MASK] slot
            if prepare is not None:
                batch = prepare(batch, False)
            out = self.model(batch).logits
            if out.dim() == 3:  # [1, L, D]: the state after the most recent behavior
                last = (batch.lengths - 1).clamp(min=0)
                out = out[torch.arange(out.shape[0]), last]
            scores = self._item_weights @ out[0]  # [n_items]
            scores[PAD] = float("-inf")
            scores[UNK] = float("-inf")
            excluded, _ = self.tables.items(req.exclude)
            if req.exclude_history:
                excluded = np.concatenate([excluded, hist.item])
            excluded = excluded[excluded < scores.shape[0]]
            if len(excluded):
                scores[torch.from_numpy(excluded)] = float("-inf")
            k = min(int(req.k), int(torch.isfinite(scores).sum()))
            top = torch.topk(scores, k)
        ids = top.indices.numpy()
        return {
            "items": [{"item": str(r), "score": float(s)}
                      for r, s in zip(self.tables.item_raw[ids], top.values.tolist(), strict=True)],
            "model": self.name,
            "unknown_items": hist.unknown_items,
            "unknown_side": dict(hist.unknown_side),
        }

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` returns."""
        from chronorec.models.registry import build_config

        try:
            config: dict[str, Any] = build_config(self.name, self.info.overrides).model_dump(mode="json")
        except ChronorecError:
            config = dict(self.info.overrides)
        return {
            "name": self.name,
            "task": self.task,
            "config": config,
            "schema_version": self.schema.version,
            "dataset": self.schema.name,
            "protocol": self.schema.protocol,
            "trained_at": self.info.trained_at,
            "metrics": self.info.metrics,
            "side_features": list(self.schema.side_features),
            "n_items": self.schema.n_items,
            "history_cap": self.cap,
            "groups": list(self.schema.groups.names),
            "limits": {
                "max_candidates": self.limits.max_candidates,
                "max_history": self.limits.max_history,
                "max_k": self.limits.max_k,
                "max_exclude": self.limits.max_exclude,
            },
        }

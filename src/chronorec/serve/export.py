"""Export a run's scoring path as TorchScript or ONNX, with a parity check against the eager model.

The exported module takes plain tensors, in this order (``S`` = the schema's side features)::

    hist_item [B, L] int64        hist_<s> [B, L] int64 for s in S     hist_ts [B, L] int64
    hist_gap [B, L] int64         hist_calendar [B, L, 3] int64        mask [B, L] bool
    lengths [B] int64             target_item [B] int64                target_<s> [B] int64 for s in S
    target_ts [B] int64           group [B] int64 (activity group; only group-routing models read it)

and returns ``prob [B]`` (CTR: click probabilities) or ``scores [B, n_items]`` (next-item: the
score of every item after the most recent behavior; rows 0 and 1 are padding/UNK). Histories are
right-padded to **exactly** ``L = history_len`` (recorded in the sidecar ``FILE.json``): the models
read sequence lengths as Python ints, which tracing freezes, so ``L`` is fixed and the batch size
``B`` is dynamic. Padding changes nothing (every model is padding-safe), so fixing ``L`` costs only
the padded compute. The ONNX exporter drops inputs a model never reads; feed the session the inputs
it lists.

The parity check runs the exported file (TorchScript, or onnxruntime for ONNX) and the eager model
on two batches — the tracing batch and one with another batch size and short/empty histories — and
fails with a :class:`ChronorecError` when they differ beyond ``atol``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from chronorec.data.batch import Batch, synthetic_batch
from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError

Format = Literal["torchscript", "onnx"]


def input_names(side_features: Sequence[str]) -> list[str]:
    """Names of the exported inputs, in positional order."""
    return [
        "hist_item", *(f"hist_{s}" for s in side_features), "hist_ts", "hist_gap", "hist_calendar",
        "mask", "lengths", "target_item", *(f"target_{s}" for s in side_features), "target_ts", "group",
    ]


def batch_inputs(batch: Batch, side_features: Sequence[str]) -> tuple[Tensor, ...]:
    """A :class:`Batch` as the exported module's positional inputs (contiguous tensors)."""
    parts = [
        batch.hist_item, *(batch.hist_side[s] for s in side_features), batch.hist_ts, batch.hist_gap,
        batch.hist_calendar, batch.mask, batch.lengths, batch.target_item,
        *(batch.target_side[s] for s in side_features), batch.target_ts, batch.group,
    ]
    return tuple(t.contiguous() for t in parts)


class ScoringModule(nn.Module):
    """A model's scoring path over plain tensors (see the module docstring for the signature)."""

    def __init__(self, model: nn.Module, side_features: Sequence[str]) -> None:
        super().__init__()
        self.model = model.eval()
        self.side_features = list(side_features)
        self.task: str = getattr(model, "task", "ctr")

    def to_batch(self, inputs: Sequence[Tensor]) -> Batch:
        n = len(self.side_features)
        hist_item, *rest = inputs
        hist_side = dict(zip(self.side_features, rest[:n], strict=True))
        hist_ts, hist_gap, hist_calendar, mask, lengths, target_item = rest[n : n + 6]
        target_side = dict(zip(self.side_features, rest[n + 6 : 2 * n + 6], strict=True))
        target_ts, group = rest[2 * n + 6 : 2 * n + 8]
        return Batch(
            hist_item=hist_item, hist_side=hist_side, hist_ts=hist_ts, hist_gap=hist_gap,
            hist_calendar=hist_calendar, mask=mask, lengths=lengths, target_item=target_item,
            target_side=target_side, target_ts=target_ts, label=torch.zeros_like(target_ts, dtype=torch.float32),
            user=torch.ones_like(target_item), group=group,
        )

    def forward(self, *inputs: Tensor) -> Tensor:
        batch = self.to_batch(inputs)
        if self.task == "ctr":
            return torch.sigmoid(self.model(batch).logits)  # [B]
        return next_item_scores(self.model, batch)  # [B, n_items]


def next_item_scores(model: nn.Module, batch: Batch) -> Tensor:
    """``[B, n_items]`` scores of every item after each row's most recent behavior."""
    prepare = getattr(model, "prepare_batch", None)
    if prepare is not None:
        batch = prepare(batch, False)
    h = model(batch).logits
    if h.dim() == 3:  # [B, L, D] -> the state at the most recent behavior
        last = (batch.lengths - 1).clamp(min=0)
        h = h[torch.arange(h.shape[0]), last]  # [B, D]
    return h @ model.item_weights().T  # type: ignore[operator]


def example_batch(schema: DatasetSchema, rows: int, history_len: int, seed: int, min_len: int = 1) -> Batch:
    """A well-formed batch over the schema's vocabularies, padded to exactly ``history_len``."""
    side_vocab = {s: schema.vocab_sizes[s] for s in schema.side_features}
    b = synthetic_batch(rows, history_len, schema.item_vocab, side_vocab, seed=seed, min_len=min_len)
    groups = max(len(schema.groups.names), 1)
    b.group = torch.randint(0, groups, (rows,), generator=torch.Generator().manual_seed(seed))
    if schema.task == "next_item":
        b.target_item = torch.zeros(rows, dtype=torch.long)
        b.target_side = {s: torch.zeros(rows, dtype=torch.long) for s in schema.side_features}
    return b


def _run_exported(path: Path, fmt: Format, names: list[str], inputs: tuple[Tensor, ...]) -> np.ndarray:
    if fmt == "torchscript":
        module = torch.jit.load(str(path))
        with torch.inference_mode():
            return module(*inputs).numpy()
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = dict(zip(names, (t.numpy() for t in inputs), strict=True))
    return session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]


def _export(wrapper: ScoringModule, fmt: Format, out: Path, names: list[str], example: tuple[Tensor, ...]) -> None:
    output = "prob" if wrapper.task == "ctr" else "scores"
    with torch.no_grad():
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(wrapper, example, check_trace=False), str(out))
            return
        dynamic = {n: {0: "batch"} for n in [*names, output]}
        torch.onnx.export(wrapper, example, str(out), input_names=names, output_names=[output],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)


def export_model(model: nn.Module, schema: DatasetSchema, fmt: Format, out: str | Path, history_len: int,
                 model_name: str = "model", atol: float = 1e-5) -> dict[str, Any]:
    """Export ``model``'s scoring path to ``out`` and check it against eager; returns the metadata
    (also written to ``out`` + ``.json``): inputs, ``history_len``, output, parity max abs diff."""
    if fmt not in ("torchscript", "onnx"):
        raise ChronorecError(f"unknown export format {fmt!r}; choose torchscript or onnx")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ScoringModule(model, schema.side_features).eval()
    names = input_names(schema.side_features)
    example = batch_inputs(example_batch(schema, 4, history_len, seed=0), schema.side_features)
    try:
        _export(wrapper, fmt, out, names, example)
    except ChronorecError:
        raise
    except Exception as err:  # the exporters raise many types; name the model and the reason
        reason = " ".join(str(err).split())[:300]
        raise ChronorecError(f"model {model_name!r} cannot be exported to {fmt}: {type(err).__name__}: {reason}") from None
    diffs = []
    for rows, seed, min_len in ((4, 0, 1), (7, 1, 0)):
        inputs = batch_inputs(example_batch(schema, rows, history_len, seed=seed, min_len=min_len),
                              schema.side_features)
        with torch.inference_mode():
            eager = wrapper(*inputs).numpy()
        got = _run_exported(out, fmt, names, inputs)
        if got.shape != eager.shape:
            raise ChronorecError(f"model {model_name!r}: exported {fmt} output has shape {got.shape}, "
                                 f"eager {eager.shape} (batch size {rows}); the export is not faithful")
        diffs.append(float(np.max(np.abs(got - eager))) if eager.size else 0.0)
    meta = {
        "model": model_name, "format": fmt, "task": wrapper.task, "inputs": names,
        "history_len": history_len, "output": "prob" if wrapper.task == "ctr" else "scores",
        "side_features": list(schema.side_features), "parity_max_abs_diff": max(diffs), "parity_atol": atol,
    }
    if max(diffs) > atol:
        raise ChronorecError(
            f"model {model_name!r}: exported {fmt} differs from the eager model by {max(diffs):.3g} > {atol:g} "
            "(the model likely branches on tensor values, which tracing freezes)"
        )
    Path(f"{out}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta

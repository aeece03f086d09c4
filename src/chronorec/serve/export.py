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
``B`` is dynamic (or fixed too with ``batch_size``, for models that read it as an int: BST,
BERT4Rec). Padding changes nothing (every model is padding-safe), so fixing ``L`` costs only
the padded compute. The ONNX exporter drops inputs a model never reads; feed the session the inputs
it lists.

The parity check runs the exported file (TorchScript, or onnxruntime for ONNX) and the eager model
on two batches — the tracing batch and one with another batch size and short/empty histories — and
fails with a :class:`ChronorecError` when they differ beyond ``atol``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from chronorec import atomic
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


def pad_history(batch: Batch, history_len: int) -> Batch:
    """``batch`` with its history right-padded (or cut to the most recent) to exactly ``history_len``
    positions, as the exported modules expect; padding values follow :class:`Batch`."""
    B, width = batch.hist_item.shape
    if width > history_len:  # keep each row's most recent history_len behaviors
        lengths = batch.lengths.clamp(max=history_len)
        start = (batch.lengths - lengths)[:, None] + torch.arange(history_len)[None, :]  # [B, H]
        start = start.clamp(max=width - 1)
        keep = torch.arange(history_len)[None, :] < lengths[:, None]

        def cut(t: Tensor, fill: int) -> Tensor:
            idx = start.view(B, history_len, *([1] * (t.dim() - 2))).expand(B, history_len, *t.shape[2:])
            got = t.gather(1, idx)
            return torch.where(keep.view(B, history_len, *([1] * (t.dim() - 2))), got, torch.full_like(got, fill))
    else:
        lengths = batch.lengths

        def cut(t: Tensor, fill: int) -> Tensor:
            pad = torch.full((B, history_len - width, *t.shape[2:]), fill, dtype=t.dtype)
            return torch.cat([t, pad], dim=1)

    return replace(
        batch, hist_item=cut(batch.hist_item, 0), hist_side={k: cut(v, 0) for k, v in batch.hist_side.items()},
        hist_ts=cut(batch.hist_ts, 0), hist_gap=cut(batch.hist_gap, -1), hist_calendar=cut(batch.hist_calendar, 0),
        mask=cut(batch.mask, False), lengths=lengths,
    )


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


def _run_exported(path: Path, fmt: Format, names: list[str], inputs: tuple[Tensor, ...], model_name: str
                  ) -> np.ndarray:
    try:
        return _run_file(path, fmt, names, inputs)
    except Exception as err:  # the runtimes raise their own types; name the model and the reason
        reason = " ".join(str(err).split())[:300]
        runtime = "TorchScript" if fmt == "torchscript" else "onnxruntime"
        raise ChronorecError(f"model {model_name!r}: the exported {fmt} file cannot be run by {runtime}: "
                             f"{type(err).__name__}: {reason}") from None


def _run_file(path: Path, fmt: Format, names: list[str], inputs: tuple[Tensor, ...]) -> np.ndarray:
    if fmt == "torchscript":
        with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export, still supported
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path))
        with torch.inference_mode():
            return module(*inputs).numpy()
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = dict(zip(names, (t.numpy() for t in inputs), strict=True))
    return session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]


def _export(wrapper: ScoringModule, fmt: Format, out: Path, names: list[str], example: tuple[Tensor, ...],
            dynamic_batch: bool) -> None:
    output = "prob" if wrapper.task == "ctr" else "scores"
    with torch.no_grad():
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(wrapper, example, check_trace=False), str(out))
            return
        dynamic = {n: {0: "batch"} for n in [*names, output]} if dynamic_batch else None
        torch.onnx.export(wrapper, example, str(out), input_names=names, output_names=[output],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)
    _patch_onnx(out)


def _patch_onnx(path: Path) -> None:
    """Rewrite nodes onnxruntime has no kernel for: a boolean ``EyeLike`` (``torch.eye(..., dtype=bool)``)
    becomes ``Cast`` to float, a float ``EyeLike`` and a ``Cast`` back to bool (same values)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    nodes, changed = [], False
    for node in model.graph.node:
        dtype = next((a.i for a in node.attribute if a.name == "dtype"), None)
        out_type = dtype if dtype is not None else types.get(node.input[0]) if node.input else None
        if node.op_type != "EyeLike" or out_type != TensorProto.BOOL:
            nodes.append(node)
            continue
        src, dst = node.input[0], node.output[0]
        cast_in = helper.make_node("Cast", [src], [src + "_float"], name=node.name + "_in", to=TensorProto.FLOAT)
        del node.attribute[:]
        node.attribute.append(helper.make_attribute("dtype", TensorProto.FLOAT))
        node.input[0], node.output[0] = src + "_float", dst + "_float"
        cast_out = helper.make_node("Cast", [dst + "_float"], [dst], name=node.name + "_out", to=TensorProto.BOOL)
        nodes += [cast_in, node, cast_out]
        changed = True
    if changed:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        onnx.checker.check_model(model)
        onnx.save(model, str(path))


def export_model(model: nn.Module, schema: DatasetSchema, fmt: Format, out: str | Path, history_len: int,
                 model_name: str = "model", atol: float = 1e-5, batch_size: int | None = None) -> dict[str, Any]:
    """Export ``model``'s scoring path to ``out`` and check it against eager; returns the metadata
    (also written to ``out`` + ``.json``): inputs, ``history_len``, ``batch_size`` (None = dynamic),
    output and the parity max abs diff.

    ``batch_size`` fixes the batch size too, for models that read it as a Python int (the parity
    check then uses that size throughout); by default it is dynamic and checked at two sizes.
    """
    if fmt not in ("torchscript", "onnx"):
        raise ChronorecError(f"unknown export format {fmt!r}; choose torchscript or onnx")
    out = Path(out)
    if out.is_dir():
        raise ChronorecError("output path is a folder; give a file name", file=out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ChronorecError(f"cannot create the output folder: {err.strerror}", file=out) from None
    # written beside ``out`` and moved into place only once the parity check passed, so a failed
    # export never replaces (or leaves a stale FILE.json next to) an earlier good one
    try:
        with atomic.replacing(out) as tmp, atomic.replacing(Path(f"{out}.json")) as meta_tmp:
            tmp.write_bytes(b"")  # can we write here at all? (else the exporters blame the model)
            meta = _export_checked(model, schema, fmt, tmp, history_len, model_name, atol, batch_size)
            meta_tmp.write_text(json.dumps(meta, indent=2) + "\n")
    except OSError as err:
        raise ChronorecError(f"cannot write the export here: {err.strerror or err}", file=out) from None
    return meta


def _export_checked(model: nn.Module, schema: DatasetSchema, fmt: Format, out: Path, history_len: int,
                    model_name: str, atol: float, batch_size: int | None) -> dict[str, Any]:
    """Export to ``out`` and run the parity check; returns the metadata (written by the caller)."""
    wrapper = ScoringModule(model, schema.side_features).eval()
    names = input_names(schema.side_features)
    traced_rows = batch_size or 4
    example = batch_inputs(example_batch(schema, traced_rows, history_len, seed=0), schema.side_features)
    try:
        with warnings.catch_warnings():  # tracer warnings about frozen Python values: the parity check decides
            warnings.simplefilter("ignore")
            _export(wrapper, fmt, out, names, example, dynamic_batch=batch_size is None)
    except ChronorecError:
        raise
    except Exception as err:  # the exporters raise many types; name the model and the reason
        reason = " ".join(str(err).split())[:300]
        raise ChronorecError(f"model {model_name!r} cannot be exported to {fmt}: {type(err).__name__}: {reason}") from None
    diffs = []
    for rows, seed, min_len in ((traced_rows, 0, 1), (batch_size or 7, 1, 0)):
        inputs = batch_inputs(example_batch(schema, rows, history_len, seed=seed, min_len=min_len),
                              schema.side_features)
        with torch.inference_mode():
            eager = wrapper(*inputs).numpy()
        try:
            got = _run_exported(out, fmt, names, inputs, model_name)
        except ChronorecError as err:
            if rows == traced_rows:
                raise
            raise ChronorecError(f"{err.message} -- at batch size {rows} (traced at {traced_rows}): the model "
                                 "reads the batch size as a Python int; export with a fixed --batch-size") from None
        if got.shape != eager.shape:
            raise ChronorecError(f"model {model_name!r}: exported {fmt} output has shape {got.shape}, "
                                 f"eager {eager.shape} (batch size {rows}); the export is not faithful")
        diffs.append(float(np.max(np.abs(got - eager))) if eager.size else 0.0)
    meta = {
        "model": model_name, "format": fmt, "task": wrapper.task, "inputs": names,
        "history_len": history_len, "batch_size": batch_size,
        "output": "prob" if wrapper.task == "ctr" else "scores",
        "side_features": list(schema.side_features), "parity_max_abs_diff": max(diffs), "parity_atol": atol,
    }
    if max(diffs) > atol:
        raise ChronorecError(
            f"model {model_name!r}: exported {fmt} differs from the eager model by {max(diffs):.3g} > {atol:g} "
            "(the model likely branches on tensor values, which tracing freezes)"
        )
    return meta

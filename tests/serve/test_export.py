"""Exported scoring paths (TorchScript, ONNX) agree with the eager model on real requests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from serve_reference import ctr_requests
from serve_synth import PreparedView

from chronorec.cli import main
from chronorec.data.batch import Batch
from chronorec.errors import ChronorecError
from chronorec.models.registry import create_model
from chronorec.serve.export import batch_inputs, export_model, next_item_scores, pad_history
from chronorec.serve.features import make_batch
from chronorec.serve.service import ServedModel

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _run(path: Path, fmt: str, names: list[str], inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    if fmt == "torchscript":
        with torch.inference_mode():
            return torch.jit.load(str(path))(*inputs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = dict(zip(names, (t.numpy() for t in inputs), strict=True))
    return session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]


def _request_batch(served: ServedModel, body: dict) -> Batch:
    req = served.models.score.model_validate(body)
    hist = served._encode(req.history, with_ts=True)  # the service's own preprocessing
    cand = served._encode(req.candidates, with_ts=False)
    return make_batch(hist, cand, req.ts, served.tables.user_id(req.user), served.group_of(req.user),
                      served.cap, served.tables.side_features)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_ctr_export_cli_parity_on_real_requests(fmt: str, ctr_run: Path, ctr_served: ServedModel,
                                                ctr_view: PreparedView, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"tin.{fmt}"
    try:
        main(["export", "--run", str(ctr_run), "--format", fmt, "--out", str(out)])
    except SystemExit as err:
        assert not err.code
    assert "parity max |diff|" in capsys.readouterr().out
    meta = json.loads(Path(f"{out}.json").read_text())
    assert meta["history_len"] == ctr_served.cap and meta["parity_max_abs_diff"] <= 1e-5
    for body, _ in ctr_requests(ctr_view, "test", n_users=4):
        batch = _request_batch(ctr_served, body)
        inputs = batch_inputs(pad_history(batch, meta["history_len"]), meta["side_features"])
        got = _run(out, fmt, meta["inputs"], inputs)
        expected = ctr_served.score(ctr_served.models.score.model_validate(body))["scores"]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_next_item_export_parity(fmt: str, next_served: ServedModel, next_view: PreparedView, tmp_path: Path) -> None:
    meta = export_model(next_served.model, next_served.schema, fmt, tmp_path / f"sasrec.{fmt}", next_served.cap,
                        "sasrec")
    assert meta["output"] == "scores" and meta["parity_max_abs_diff"] <= 1e-5
    s = next_view.samples("test").row(0, named=True)
    body = {"history": next_view.history(next_view.user_start(s["user"]), s["hist_end"]), "ts": s["ts"]}
    req = next_served.models.recommend.model_validate(body)
    hist = next_served._encode(req.history, with_ts=True)
    batch = make_batch(hist, None, req.ts, 1, 1, next_served.cap, next_served.tables.side_features)
    got = _run(tmp_path / f"sasrec.{fmt}", fmt, meta["inputs"],
               batch_inputs(pad_history(batch, meta["history_len"]), next_served.schema.side_features))
    with torch.inference_mode():
        eager = next_item_scores(next_served.model, batch).numpy()
    np.testing.assert_allclose(got, eager, rtol=0, atol=1e-5)


def test_pad_history_keeps_most_recent(ctr_served: ServedModel) -> None:
    t = ctr_served.tables
    items = list(t.item_index)[:5]
    batch = make_batch(t.encode(items, {}, [1, 2, 3, 4, 5]), t.encode(items[:2], {}), 9, 1, 1, None, t.side_features)
    wide = pad_history(batch, 8)
    assert wide.hist_item.shape == (2, 8) and wide.mask[:, 5:].sum() == 0 and (wide.hist_gap[:, 5:] == -1).all()
    short = pad_history(batch, 3)
    assert short.hist_ts[0].tolist() == [3, 4, 5] and short.lengths.tolist() == [3, 3]


def test_unexportable_model_raises_clear_error(ctr_served: ServedModel, tmp_path: Path) -> None:
    torch.manual_seed(0)
    dsin = create_model("dsin", ctr_served.schema, {"dim": 8}).eval()
    with pytest.raises(ChronorecError, match=r"model 'dsin' cannot be exported to onnx: .*cummax"):
        export_model(dsin, ctr_served.schema, "onnx", tmp_path / "dsin.onnx", 10, "dsin")
    with pytest.raises(ChronorecError, match="unknown export format"):
        export_model(dsin, ctr_served.schema, "pickle", tmp_path / "dsin.pkl", 10, "dsin")  # type: ignore[arg-type]

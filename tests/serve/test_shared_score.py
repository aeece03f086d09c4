"""/score takes the model's shared-history path: the history is encoded once for all candidates
(not once per candidate row), with the same scores as the regular forward."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from serve_synth import PreparedView

from chronorec.serve.features import make_batch
from chronorec.serve.service import ServedModel


def _request(served: ServedModel, view: PreparedView, n_hist: int = 12, n_cand: int = 9) -> Any:
    ev = view.events.head(n_hist).sort("ts")
    body = {
        "history": [{"item": view.raw["item"][i], "ts": t} for i, t in zip(ev["item"], ev["ts"], strict=True)],
        "candidates": [{"item": view.raw["item"][i]} for i in range(2, 2 + n_cand)],
        "ts": int(ev["ts"][-1]) + 60,
    }
    return served.models.score.model_validate(body)


def test_score_uses_the_shared_history_path(ctr_served: ServedModel, ctr_view: PreparedView,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    req = _request(ctr_served, ctr_view)
    expected = ctr_served.score(req)["scores"]
    model = ctr_served.model
    calls: list[int] = []
    original = model.embed.history

    def counting(batch: Any) -> torch.Tensor:
        calls.append(len(batch))
        return original(batch)

    monkeypatch.setattr(model.embed, "history", counting)
    monkeypatch.setattr(type(model), "forward", lambda *a: pytest.fail("the regular forward was used"))
    assert ctr_served.score(req)["scores"] == expected
    assert calls == [1]  # one history row embedded for 9 candidates


def test_shared_logits_equal_the_regular_forward(ctr_served: ServedModel, ctr_view: PreparedView) -> None:
    req = _request(ctr_served, ctr_view, n_hist=40, n_cand=25)
    hist, ts = ctr_served._history(req)
    cand = ctr_served._encode(req.candidates, with_ts=False)
    batch = make_batch(hist, cand, ts, 1, 0, ctr_served.cap, ctr_served.tables.side_features)
    with torch.inference_mode():
        torch.testing.assert_close(ctr_served._shared_logits(batch), ctr_served.model(batch).logits,
                                   rtol=1e-6, atol=1e-6)

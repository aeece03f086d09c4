"""The HTTP service in-process (TestClient): parity with offline predictions, errors, metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from serve_reference import ctr_requests, predictions
from serve_synth import PreparedView

from chronorec.serve.service import ServedModel


@pytest.fixture(scope="module")
def ctr_predictions(ctr_run: Path, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return predictions(ctr_run, "test", tmp_path_factory.mktemp("pred") / "ctr.parquet")


def _body(view: PreparedView, n: int = 3) -> dict[str, Any]:
    ev = view.events.head(n)
    return {
        "history": [{"item": view.raw["item"][i], "ts": t} for i, t in zip(ev["item"], ev["ts"], strict=True)],
        "candidates": [{"item": view.raw["item"][2]}, {"item": view.raw["item"][3], "category": "0"}],
        "ts": int(ev["ts"][-1]) + 60,
    }


@pytest.mark.parametrize("with_category", [True, False])
def test_score_matches_offline_predictions(ctr_client: TestClient, ctr_view: PreparedView,
                                           ctr_predictions: pl.DataFrame, with_category: bool) -> None:
    scores = dict(zip(ctr_predictions["index"].to_list(), ctr_predictions["score"].to_list(), strict=True))
    items = dict(zip(ctr_predictions["index"].to_list(), ctr_predictions["item"].to_list(), strict=True))
    for body, index in ctr_requests(ctr_view, "test", n_users=6, with_category=with_category):
        r = ctr_client.post("/score", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["model"] == "tin" and out["unknown_items"] == 0
        assert r.headers["server-timing"].startswith("app;dur=") and "cpu;dur=" in r.headers["server-timing"]
        assert [c["item"] for c in body["candidates"]] == [items[i] for i in index]
        np.testing.assert_allclose(out["scores"], [scores[i] for i in index], rtol=0, atol=1e-5)


def test_scores_do_not_depend_on_batching(ctr_client: TestClient, ctr_view: PreparedView) -> None:
    body = _body(ctr_view, n=5)
    body["candidates"] = [{"item": ctr_view.raw["item"][i]} for i in range(2, 22)]
    together = ctr_client.post("/score", json=body).json()["scores"]
    alone = [ctr_client.post("/score", json={**body, "candidates": [c]}).json()["scores"][0]
             for c in body["candidates"][:4]]
    np.testing.assert_allclose(together[:4], alone, rtol=0, atol=1e-6)


def test_unknown_ids_become_unk_and_are_counted(ctr_client: TestClient, ctr_view: PreparedView) -> None:
    body = _body(ctr_view)
    base = ctr_client.post("/score", json=body).json()
    assert base["unknown_items"] == 0
    body["history"].append({"item": "NOT-AN-ITEM", "ts": body["ts"]})
    body["candidates"] += [{"item": "ALSO-NEW"}, {"item": "NEW-TOO", "category": "no-such-cat"}]
    out = ctr_client.post("/score", json=body).json()
    assert out["unknown_items"] == 3
    assert out["unknown_side"] == {"category": 1}
    assert len(out["scores"]) == 4
    # two unknown candidates with unknown category look the same to the model -> same score
    assert out["scores"][2] == pytest.approx(out["scores"][3], abs=1e-9)


def test_unsorted_history_is_422_naming_field_and_index(ctr_client: TestClient, ctr_view: PreparedView) -> None:
    body = _body(ctr_view, n=4)
    body["history"][2]["ts"] = body["history"][1]["ts"] - 1
    r = ctr_client.post("/score", json=body)
    assert r.status_code == 422
    err = r.json()
    assert "history[2].ts" in err["error"] and "sorted" in err["error"]
    assert err["detail"][0]["loc"] == ["body", "history", 2, "ts"]


def test_future_history_is_422_naming_field_and_index(ctr_client: TestClient, ctr_view: PreparedView) -> None:
    body = _body(ctr_view, n=4)
    body["ts"] = body["history"][3]["ts"] - 1
    r = ctr_client.post("/score", json=body)
    assert r.status_code == 422
    assert "history[3].ts" in r.json()["error"] and "later than the request ts" in r.json()["error"]
    assert r.json()["detail"][0]["loc"] == ["body", "history", 3, "ts"]


@pytest.mark.parametrize(
    ("mutate", "status", "where"),
    [
        (lambda b: b.pop("candidates"), 422, "candidates"),
        (lambda b: b.update(candidates=[]), 422, "candidates"),
        (lambda b: b["history"][0].pop("ts"), 422, "history[0].ts"),
        (lambda b: b["history"][1].update(ts="yesterday"), 422, "history[1].ts"),
        (lambda b: b["history"][1].update(ts=1.5), 422, "history[1].ts"),
        (lambda b: b["history"][1].update(ts=-5), 422, "history[1].ts"),
        (lambda b: b["candidates"][0].update(item=None), 422, "candidates[0].item"),
        (lambda b: b["candidates"][0].update(item=""), 422, "candidates[0].item"),
        (lambda b: b["candidates"][1].update(categroy="1"), 422, "candidates[1].categroy"),
        (lambda b: b.update(ts=True), 422, "ts"),
        (lambda b: b.update(history={"item": "x"}), 422, "history"),
        (lambda b: b.update(candidates=[{"item": "x"}] * 51), 413, "candidates"),
        (lambda b: b.update(history=[{"item": "x", "ts": 1}] * 61), 413, "history"),
    ],
)
def test_malformed_bodies_are_clear_4xx(ctr_client: TestClient, ctr_view: PreparedView, mutate: Any,
                                        status: int, where: str) -> None:
    body = _body(ctr_view)
    mutate(body)
    r = ctr_client.post("/score", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"].startswith(where)


def test_transport_errors(ctr_client: TestClient) -> None:
    r = ctr_client.post("/score", content=b'{"history": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = ctr_client.post("/score", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = ctr_client.post("/score", content=b"history=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    assert ctr_client.post("/score", content=b"{}").status_code == 415  # no content type at all
    big = b'{"history": [' + b'{"item": "x", "ts": 1},' * 200_000 + b"]}"
    assert ctr_client.post("/score", content=big, headers={"content-type": "application/json"}).status_code == 413
    assert ctr_client.post("/score", json=[1, 2]).status_code == 422
    assert ctr_client.get("/score").status_code == 405
    r = ctr_client.post("/recommend", json={"history": []})
    assert r.status_code == 404 and "/score" in r.json()["error"]


def test_health_model_and_openapi(ctr_client: TestClient, ctr_served: ServedModel) -> None:
    assert ctr_client.get("/healthz").json() == {"status": "ok", "model": "tin", "task": "ctr"}
    info = ctr_client.get("/model").json()
    assert info["name"] == "tin" and info["task"] == "ctr"
    assert info["dataset"] == ctr_served.schema.name and info["schema_version"] == ctr_served.schema.version
    assert info["config"]["dim"] == 8 and info["trained_at"]
    assert info["metrics"] == ctr_served.info.metrics
    assert info["history_cap"] == ctr_served.cap
    paths = ctr_client.get("/openapi.json").json()["paths"]
    assert {"/score", "/recommend", "/healthz", "/model"} <= set(paths)


# ----------------------------------------------------------------------------- next-item
def _rec_body(view: PreparedView, split: str, row: int) -> tuple[dict[str, Any], dict[str, Any]]:
    s = view.samples(split).row(row, named=True)
    body = {"history": view.history(view.user_start(s["user"]), s["hist_end"]), "ts": s["ts"],
            "user": view.raw["user"][s["user"]]}
    return body, s


def test_recommend_matches_offline_ranks(next_client: TestClient, next_view: PreparedView, next_run: Path,
                                         next_served: ServedModel, tmp_path: Path) -> None:
    bias = next_served.model.item_bias  # the item-bias variant (conftest) serves a bias that training moved
    assert (bias is not None) == next_served.model.cfg.item_bias
    assert bias is None or bias.abs().max().item() > 1e-4
    pred = predictions(next_run, "test", tmp_path / "next.parquet")
    assert pred["user"].n_unique() == pred.height  # leave-last-out: one test sample per user
    rank = {(u, i): r for u, i, r in pred.select("user", "item", "rank").iter_rows()}
    n_real = next_view.raw["item"].size - 2
    for row in range(6):
        body, s = _rec_body(next_view, "test", row)
        r = next_client.post("/recommend", json={**body, "k": n_real, "exclude_history": False})
        assert r.status_code == 200, r.text
        out = r.json()
        items = [x["item"] for x in out["items"]]
        assert len(items) == n_real == len(set(items))  # every real item once, padding/UNK never
        scores = [x["score"] for x in out["items"]]
        assert scores == sorted(scores, reverse=True)
        target = next_view.raw["item"][s["item"]]
        assert items.index(target) + 1 == rank[(body["user"], target)]


def test_recommend_exclusions(next_client: TestClient, next_view: PreparedView) -> None:
    body, _ = _rec_body(next_view, "test", 0)
    seen = {e["item"] for e in body["history"]}
    top = next_client.post("/recommend", json={**body, "k": 10}).json()["items"]
    assert len(top) == 10 and not seen & {x["item"] for x in top}  # exclude_history defaults to true
    first = top[0]["item"]
    again = next_client.post("/recommend", json={**body, "k": 10, "exclude": [first, "unknown-id"]}).json()
    assert first not in [x["item"] for x in again["items"]]
    assert [x["item"] for x in again["items"]][:9] == [x["item"] for x in top[1:]]
    everything = list(next_view.raw["item"][2:])
    r = next_client.post("/recommend", json={**body, "k": 5, "exclude": everything[:-3]})
    assert r.status_code == 200 and len(r.json()["items"]) <= 3  # fewer than k items remain


def test_recommend_errors(next_client: TestClient, next_view: PreparedView) -> None:
    body, _ = _rec_body(next_view, "test", 0)
    for bad, status in [({"k": 0}, 422), ({"k": 101}, 422), ({"k": "10"}, 422), ({"exclude_history": "yes"}, 422),
                        ({"exclude": ["x"] * 101}, 413), ({"candidates": []}, 422)]:
        r = next_client.post("/recommend", json={**body, **bad})
        assert r.status_code == status, (bad, r.text)
    assert next_client.post("/score", json={**body, "candidates": [{"item": "x"}]}).status_code == 404
    assert next_client.get("/model").json()["task"] == "next_item"


def test_internal_errors_are_500_with_json_body(ctr_client: TestClient, ctr_served: ServedModel,
                                                ctr_view: PreparedView, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(req: Any) -> dict:
        raise RuntimeError("a bug, not the input")

    monkeypatch.setattr(ctr_served, "score", boom)
    r = ctr_client.post("/score", json=_body(ctr_view))
    assert r.status_code == 500 and r.json()["error"] == "internal error (RuntimeError)"
    assert ctr_client.post("/score", json={"history": []}).status_code == 422  # validation still answers 4xx

"""/recommend on a next-item model with no history: the model has nothing to go on (every item
scored 0.0, the "top k" were the first k vocabulary ids, answered 200). Now a 422 naming the field;
a history of unknown ids is still served (counted in ``unknown_items``)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_empty_or_absent_history_is_422(next_client: TestClient) -> None:
    for body in ({"history": [], "k": 5}, {"k": 5}, {}):
        r = next_client.post("/recommend", json=body)
        assert r.status_code == 422, (body, r.text)
        err = r.json()
        assert err["error"].startswith("history: ") and err["detail"][0]["loc"] == ["body", "history"]


def test_unknown_history_items_are_served_and_counted(next_client: TestClient) -> None:
    r = next_client.post("/recommend", json={"history": [{"item": "no-such-item", "ts": 1_500_000_000}], "k": 3})
    assert r.status_code == 200 and r.json()["unknown_items"] == 1 and len(r.json()["items"]) == 3

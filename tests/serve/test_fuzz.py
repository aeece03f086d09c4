"""Fuzzing request bodies: random JSON, near-valid bodies and raw bytes never produce a 5xx."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ALLOWED = {200, 400, 404, 413, 415, 422}
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["", "B00001", "0", "category", "ts", "item", "\u0000", "\ud7ff" * 3]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.sampled_from(["item", "ts", "category", "history", "candidates",
                                                             "k", "exclude", "user", "x"]) | st.text(max_size=8),
                                            inner, max_size=5)),
    max_leaves=25,
)


def _valid_score() -> dict[str, Any]:
    return {
        "history": [{"item": "B00001", "category": "1", "ts": 1_300_000_000},
                    {"item": "B00002", "ts": 1_300_000_100}],
        "candidates": [{"item": "B00003"}, {"item": "B00004", "category": "4"}],
        "ts": 1_300_000_200, "user": "user-1",
    }


def _valid_recommend() -> dict[str, Any]:
    body = _valid_score()
    body.pop("candidates")
    return {**body, "k": 5, "exclude": ["B00005"], "exclude_history": True}


@st.composite
def near_valid(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A valid body with a few random edits: keys dropped, values replaced, events corrupted."""
    body = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "replace", "event", "add", "ts"]))
        if action == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif action == "replace" and body:
            body[draw(st.sampled_from(sorted(body)))] = draw(json_values)
        elif action == "event":
            lists = [k for k in ("history", "candidates") if isinstance(body.get(k), list) and body[k]]
            if lists:
                seq = body[draw(st.sampled_from(lists))]
                i = draw(st.integers(0, len(seq) - 1))
                if isinstance(seq[i], dict) and seq[i] and draw(st.booleans()):
                    seq[i][draw(st.sampled_from(sorted(seq[i])))] = draw(json_values)
                else:
                    seq[i] = draw(json_values)
        elif action == "add":
            body[draw(st.text(max_size=10))] = draw(json_values)
        elif isinstance(body.get("history"), list) and body["history"]:
            ev = body["history"][draw(st.integers(0, len(body["history"]) - 1))]
            if isinstance(ev, dict):
                ev["ts"] = draw(st.integers(-(2**64), 2**64))
    return body


def _check(client: TestClient, path: str, content: bytes, ctype: str = "application/json") -> None:
    r = client.post(path, content=content, headers={"content-type": ctype})
    assert r.status_code in ALLOWED, (path, content[:200], r.status_code, r.text[:300])
    if r.status_code != 200:
        assert isinstance(r.json()["error"], str) and r.json()["error"]


@FUZZ
@given(body=json_values)
def test_random_json_never_5xx(ctr_client: TestClient, next_client: TestClient, body: Any) -> None:
    raw = json.dumps(body).encode()
    _check(ctr_client, "/score", raw)
    _check(next_client, "/recommend", raw)


@FUZZ
@given(body=near_valid(_valid_score()))
def test_near_valid_score_never_5xx(ctr_client: TestClient, body: dict[str, Any]) -> None:
    _check(ctr_client, "/score", json.dumps(body).encode())


@FUZZ
@given(body=near_valid(_valid_recommend()))
def test_near_valid_recommend_never_5xx(next_client: TestClient, body: dict[str, Any]) -> None:
    _check(next_client, "/recommend", json.dumps(body).encode())


@FUZZ
@given(raw=st.binary(max_size=200), ctype=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                           "text/plain", "", "application/problem+json"]))
def test_raw_bytes_never_5xx(ctr_client: TestClient, next_client: TestClient, raw: bytes, ctype: str) -> None:
    _check(ctr_client, "/score", raw, ctype)
    _check(next_client, "/recommend", raw, ctype)


def test_valid_bases_are_accepted(ctr_client: TestClient, next_client: TestClient) -> None:
    r = ctr_client.post("/score", json=_valid_score())
    assert r.status_code == 200 and len(r.json()["scores"]) == 2
    r = next_client.post("/recommend", json=_valid_recommend())
    assert r.status_code == 200 and len(r.json()["items"]) == 5

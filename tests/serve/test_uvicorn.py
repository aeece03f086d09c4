"""A real `chronorec serve` process on a free 127.0.0.1 port: same scores as offline predictions."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from serve_reference import ctr_requests, predictions
from serve_synth import PreparedView

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(ctr_run: Path) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "chronorec", "serve", "--run", str(ctr_run), "--host", "127.0.0.1",
           "--port", str(port), "--threads", "1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer /healthz within {START_TIMEOUT:.0f} s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_real_server_matches_offline_predictions(server: str, ctr_run: Path, ctr_view: PreparedView,
                                                 tmp_path: Path) -> None:
    pred = predictions(ctr_run, "test", tmp_path / "pred.parquet")
    scores = dict(zip(pred["index"].to_list(), pred["score"].to_list(), strict=True))
    with httpx.Client(base_url=server, timeout=10.0) as client:
        assert client.get("/model").json()["name"] == "tin"
        for body, index in ctr_requests(ctr_view, "test", n_users=5):
            r = client.post("/score", json=body)
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(r.json()["scores"], [scores[i] for i in index], rtol=0, atol=1e-5)
        bad = client.post("/score", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert client.post("/score", json={"candidates": [{"item": "x"}], "history": [{"item": "y"}]}).status_code == 422

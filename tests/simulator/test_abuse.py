"""Abusive clients (issue 10, items 7-9): bounded X-Sim-* overrides, `--no-overrides`,
abandoned requests free their slot at once, and no orphan items after a delete."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest
from sim_helpers import API_KEY, FAST, bearer

from indigo_loadtest.simulator.process import SimulatorProcess, start_simulator_process

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


AUTH = bearer(API_KEY)
CHAT = {"model": "jan-v1-4b", "messages": [{"role": "user", "content": "hello"}]}


@pytest.mark.parametrize(("header", "value"), [
    ("X-Sim-TTFT-Ms", "1e300"), ("X-Sim-TTFT-Ms", "60001"), ("X-Sim-TTFT-Ms", "-1"),
    ("X-Sim-TTFT-Ms", "nan"), ("X-Sim-TTFT-Ms", "inf"),
    ("X-Sim-Tokens-Per-Sec", "1e-300"), ("X-Sim-Tokens-Per-Sec", "0.5"),
    ("X-Sim-Tokens-Per-Sec", "1e7"), ("X-Sim-Tokens-Per-Sec", "nan"),
    ("X-Sim-Reply-Tokens", "30000000"), ("X-Sim-Reply-Tokens", "4097"),
    ("X-Sim-Reply-Tokens", "0"), ("X-Sim-Reply-Tokens", "2.5"),
    ("X-Sim-Fault", "meltdown"),
])
def test_out_of_range_overrides_are_400(http: httpx.Client, header: str, value: str) -> None:
    for path, body in (("/v1/chat/completions", CHAT),
                       ("/v1/responses", {"model": "jan-v1-4b", "input": "hi"})):
        resp = http.post(path, json=body, headers={**AUTH, header: value})
        assert resp.status_code == 400, (path, resp.text)
        assert header in resp.json()["error"]


def test_overrides_at_the_edges_of_their_range_are_used(http: httpx.Client) -> None:
    resp = http.post("/v1/chat/completions", json=CHAT, headers={
        **AUTH, "X-Sim-TTFT-Ms": "0", "X-Sim-Tokens-Per-Sec": "0",
        "X-Sim-Reply-Tokens": "4096"})
    assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] == 4096
    ok = http.post("/v1/chat/completions", json=CHAT, headers={
        **AUTH, "X-Sim-TTFT-Ms": "1", "X-Sim-Tokens-Per-Sec": "1000000",
        "X-Sim-Reply-Tokens": "1"})
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 1


def test_no_overrides_ignores_every_x_sim_header() -> None:
    with start_simulator_process(api_key=API_KEY, no_overrides=True, **FAST) as sim, \
            httpx.Client(base_url=sim.url, trust_env=False, timeout=10) as client:
        started = time.perf_counter()
        resp = client.post("/v1/chat/completions", json=CHAT, headers={
            **AUTH, "X-Sim-TTFT-Ms": "1e300", "X-Sim-Tokens-Per-Sec": "1e-300",
            "X-Sim-Reply-Tokens": "30000000", "X-Sim-Fault": "error"})
        assert time.perf_counter() - started < 5
        assert resp.status_code == 200
        assert resp.json()["usage"]["completion_tokens"] == FAST["reply_tokens"]


def _abandon(sim: SimulatorProcess, body: dict[str, object], headers: dict[str, str],
             wait_s: float, read_first: bool) -> None:
    """Send a generation request on a raw socket and hang up after `wait_s` (having read
    the start of the answer first when `read_first`)."""
    payload = orjson.dumps(body)
    host, port = sim.url.removeprefix("http://").rsplit(":", 1)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                      f"{head}\r\n").encode() + payload)
        if read_first:
            assert b"200 OK" in sock.recv(4096)
        time.sleep(wait_s)


@pytest.mark.parametrize("stream", [False, True])
def test_an_abandoned_request_frees_its_slot_at_once(stream: bool) -> None:
    """With one slot, a request whose client hung up must not hold it for its whole plan
    (20 s here); the next request gets the slot within a few seconds at most."""
    with start_simulator_process(api_key=API_KEY, slots=1, **FAST) as sim, \
            httpx.Client(base_url=sim.url, trust_env=False, timeout=10) as client:
        # A stream's headers go out once it has the slot: hang up after reading them.
        _abandon(sim, {**CHAT, "stream": stream}, {**AUTH, "X-Sim-TTFT-Ms": "20000"}, 0.5,
                 read_first=stream)
        started = time.perf_counter()
        resp = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert resp.status_code == 200
        assert float(resp.headers["X-Queue-Time"]) < 3000  # margins for a loaded machine
        assert time.perf_counter() - started < 5


def test_two_abandoned_slow_starts_do_not_wedge_the_server() -> None:
    with start_simulator_process(api_key=API_KEY, slots=2, **FAST) as sim, \
            httpx.Client(base_url=sim.url, trust_env=False, timeout=5) as client:
        for _ in range(2):
            _abandon(sim, CHAT, {**AUTH, "X-Sim-TTFT-Ms": "60000"}, 0.2, read_first=False)
        for _ in range(3):
            resp = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            assert resp.status_code == 200 and float(resp.headers["X-Queue-Time"]) < 3000


def test_deleting_a_conversation_mid_stream_leaves_no_orphan_items(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    with start_simulator_process(api_key=API_KEY, db=str(db), **FAST) as sim, \
            httpx.Client(base_url=sim.url, trust_env=False, timeout=10) as client:
        conv = client.post("/v1/conversations", headers=AUTH, json={}).json()["id"]
        body = {**CHAT, "stream": True, "store": True, "conversation": conv}
        slow = {**AUTH, "X-Sim-Tokens-Per-Sec": "20", "X-Sim-Reply-Tokens": "10"}
        with client.stream("POST", "/v1/conv/chat/completions", json=body,
                           headers=slow) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("data: {")  # generation under way
            deleted = client.delete(f"/v1/conversations/{conv}", headers=AUTH)
            assert deleted.status_code == 200
            rest = list(lines)
        assert "data: [DONE]" in rest  # the answer itself still completes
        assert client.get(f"/v1/conversations/{conv}/items", headers=AUTH).status_code == 404
        with sqlite3.connect(db) as con:
            (orphans,) = con.execute("SELECT COUNT(*) FROM items WHERE conversation_id=?",
                                     (conv,)).fetchone()
    assert orphans == 0

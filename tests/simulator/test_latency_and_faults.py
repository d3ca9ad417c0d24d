"""The latency model (TTFT, token interval, generation slots) and every injected fault,
observed from the client side over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Mapping

import aiohttp
import httpx2 as httpx
import orjson
import pytest
from sim_helpers import API_KEY, bearer

from indigo_loadtest.simulator.process import SimulatorProcess, start_simulator_process

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


AUTH = bearer(API_KEY)


def _chat(stream: bool = True, **extra: object) -> dict[str, object]:
    return {"model": "jan-v1-4b", "stream": stream,
            "messages": [{"role": "user", "content": "hello"}], **extra}


async def _timed_stream(url: str, headers: Mapping[str, str]) -> tuple[float, list[float],
                                                                        dict[str, str]]:
    """(seconds to the first content event, arrival times of content events, headers)."""
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(url + "/v1/chat/completions", json=_chat(),
                                headers={**AUTH, **headers}) as resp:
            arrivals = []
            async for line in resp.content:
                if line.startswith(b"data: {"):
                    arrivals.append(time.perf_counter())
            return arrivals[0] - started, arrivals, dict(resp.headers)


def test_ttft_and_token_interval_at_low_load(sim: SimulatorProcess) -> None:
    headers = {"X-Sim-TTFT-Ms": "80", "X-Sim-Tokens-Per-Sec": "50", "X-Sim-Reply-Tokens": "12"}
    ttft, arrivals, _ = asyncio.run(_timed_stream(sim.url, headers))
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 13  # 12 tokens + the finish chunk
    assert 0.079 <= ttft < 0.080 + 0.030  # token times are centred within ±1 ms
    token_gaps = gaps[:11]
    assert statistics.median(token_gaps) == pytest.approx(0.020, abs=0.003)
    assert arrivals[11] - arrivals[0] == pytest.approx(11 * 0.020, abs=0.010)


def test_non_streamed_answer_waits_for_the_whole_generation(http: httpx.Client) -> None:
    started = time.perf_counter()
    resp = http.post("/v1/chat/completions", json=_chat(False), headers={
        **AUTH, "X-Sim-TTFT-Ms": "50", "X-Sim-Tokens-Per-Sec": "100", "X-Sim-Reply-Tokens": "6"})
    elapsed = time.perf_counter() - started
    assert resp.status_code == 200
    assert 0.050 + 5 * 0.010 <= elapsed < 0.100 + 0.050


async def _plain_chats_at_once(url: str, count: int) -> list[tuple[int, Mapping[str, str]]]:
    """(status, headers) of `count` concurrent non-streamed chat completions."""
    async with aiohttp.ClientSession() as session:
        async def one() -> tuple[int, Mapping[str, str]]:
            async with session.post(url + "/v1/chat/completions", json=_chat(False),
                                    headers=AUTH) as resp:
                await resp.read()
                return resp.status, resp.headers
        return await asyncio.gather(*(one() for _ in range(count)))


def test_slots_queue_requests_and_report_the_wait() -> None:
    with start_simulator_process(api_key=API_KEY, slots=1, ttft_ms=60, tokens_per_sec=0,
                                 reply_tokens=1) as proc:
        answers = asyncio.run(_plain_chats_at_once(proc.url, 3))
    waits = sorted(float(headers["X-Queue-Time"]) for _, headers in answers)
    assert waits[0] < 15
    assert waits[1] == pytest.approx(60, abs=20)
    assert waits[2] == pytest.approx(120, abs=30)


def test_queue_limit_answers_429() -> None:
    with start_simulator_process(api_key=API_KEY, slots=1, queue_limit=1, ttft_ms=100,
                                 reply_tokens=1) as proc:
        answers = asyncio.run(_plain_chats_at_once(proc.url, 4))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 200, 429, 429]


# --- faults forced per request ------------------------------------------------------------


def _fault(name: str) -> dict[str, str]:
    return {**AUTH, "X-Sim-Fault": name}


def test_error_fault_is_500_with_the_error_body(http: httpx.Client) -> None:
    for path, body in (("/v1/chat/completions", _chat(False)),
                       ("/v1/responses", {"model": "jan-v1-4b", "input": "hi"})):
        resp = http.post(path, json=body, headers=_fault("error"))
        assert resp.status_code == 500
        assert resp.json()["code"] == "internal_error"


def test_rate_limit_fault_is_429_with_retry_after(http: httpx.Client) -> None:
    resp = http.post("/v1/chat/completions", json=_chat(), headers=_fault("rate_limit"))
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"
    assert resp.json()["code"] == "rate_limit_exceeded"


def test_slow_start_fault_delays_the_first_token(sim: SimulatorProcess) -> None:
    ttft, _, _ = asyncio.run(_timed_stream(sim.url, {"X-Sim-Fault": "slow_start",
                                                     "X-Sim-TTFT-Ms": "10"}))
    assert ttft >= 0.310  # 10 ms TTFT + the fixture's 300 ms slow start


def test_drop_fault_breaks_the_stream_and_the_body(http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError), http.stream(
            "POST", "/v1/chat/completions", json=_chat(), headers=_fault("drop")) as resp:
        assert resp.status_code == 200
        resp.read()
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/chat/completions", json=_chat(False), headers=_fault("drop"))
    with pytest.raises(httpx.RemoteProtocolError), http.stream(
            "POST", "/v1/responses", json={"model": "jan-v1-4b", "input": "x", "stream": True},
            headers=_fault("drop")) as resp:
        resp.read()
    assert http.get("/v1/models", headers=AUTH).status_code == 200  # still serving


def test_malformed_fault_sends_one_broken_event(http: httpx.Client) -> None:
    resp = http.post("/v1/chat/completions", json=_chat(), headers=_fault("malformed"))
    events = [e[len("data: "):] for e in resp.text.split("\n\n") if e.startswith("data: ")]
    broken = []
    for data in events[:-1]:
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            broken.append(data)
    assert len(broken) == 1 and events[-1] == "[DONE]"
    body = http.post("/v1/chat/completions", json=_chat(False), headers=_fault("malformed"))
    with pytest.raises(ValueError):
        body.json()


def test_bad_sim_header_is_400(http: httpx.Client) -> None:
    for name, value in (("X-Sim-Fault", "meteor"), ("X-Sim-TTFT-Ms", "soon"),
                        ("X-Sim-Tokens-Per-Sec", "-1")):
        resp = http.post("/v1/chat/completions", json=_chat(), headers={**AUTH, name: value})
        assert resp.status_code == 400, name


def test_configured_fault_rates_apply_without_headers() -> None:
    with start_simulator_process(api_key=API_KEY, error_rate=0.5, rate_limit_rate=0.5,
                                 seed=7) as proc, httpx.Client(base_url=proc.url,
                                                               trust_env=False) as client:
        statuses = {client.post("/v1/chat/completions", json=_chat(False),
                                headers=AUTH).status_code for _ in range(20)}
        assert statuses == {500, 429}
        assert client.get("/v1/models", headers=AUTH).status_code == 200  # auth unaffected


def test_jitter_spreads_ttft_within_its_bounds() -> None:
    async def run(url: str) -> list[float]:
        async with aiohttp.ClientSession() as session:
            durations = []
            for _ in range(6):
                started = time.perf_counter()
                async with session.post(url + "/v1/chat/completions", json=_chat(False),
                                        headers=AUTH) as resp:
                    await resp.read()
                durations.append(time.perf_counter() - started)
            return durations

    with start_simulator_process(api_key=API_KEY, ttft_ms=100, tokens_per_sec=0,
                                 reply_tokens=1, jitter=0.5, seed=3) as proc:
        durations = asyncio.run(run(proc.url))
    assert all(0.049 <= d < 0.150 + 0.060 for d in durations)  # slack: a busy machine
    assert max(durations) - min(durations) > 0.010  # not one fixed value


def test_a_client_leaving_mid_stream_frees_its_slot() -> None:
    async def run(url: str) -> float:
        async with aiohttp.ClientSession() as session:
            resp = await session.post(url + "/v1/chat/completions", json=_chat(), headers={
                **AUTH, "X-Sim-Tokens-Per-Sec": "50", "X-Sim-Reply-Tokens": "500"})
            await resp.content.readline()  # the first event: the stream holds the only slot
            resp.close()  # the client goes away, 10 s of tokens unsent
            async with session.post(url + "/v1/chat/completions", json=_chat(False),
                                    headers=AUTH) as second:
                await second.read()
                return float(second.headers["X-Queue-Time"])

    with start_simulator_process(api_key=API_KEY, slots=1, ttft_ms=0, tokens_per_sec=0,
                                 reply_tokens=1) as proc:
        queued_ms = asyncio.run(run(proc.url))
    assert queued_ms < 1000  # freed at the next token's write, not after the whole reply

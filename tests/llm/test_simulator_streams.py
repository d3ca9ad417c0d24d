"""Stream metrics of real streams from the simulator, read with the real HTTP client:
known TTFT and token interval are measured back; injected faults are classified."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
import uvloop

from indigo_loadtest.http import Client, ClientConfig
from indigo_loadtest.llm.stream_metrics import (
    HTTP_ERROR,
    INCOMPLETE,
    MALFORMED,
    LLMMetrics,
    StreamResult,
    measure_response,
    measure_stream,
)
from indigo_loadtest.metrics import Registry

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


LATE_MS = 25.0
CHAT = {"model": "jan-v1-4b", "messages": [{"role": "user", "content": "hi"}]}


def chat_requests(url: str, reg: Registry, headers: dict[str, str], *, count: int = 1,
                  stream: bool = True) -> list[tuple[Any, Any]]:
    """`count` sequential chat completions as a guest; (response, result) pairs."""

    async def go() -> list[tuple[Any, Any]]:
        client = Client(reg, ClientConfig(timeout=15))
        llm = LLMMetrics(reg)
        try:
            login = await client.post(f"{url}/v1/auth/guest-login", json={})
            auth = {"Authorization": f"Bearer {login.json()['access_token']}", **headers}
            out = []
            for _ in range(count):
                resp = await client.post(f"{url}/v1/chat/completions", headers=auth,
                                         json={**CHAT, "stream": stream}, stream=stream)
                if stream:
                    out.append((resp, await measure_stream(resp, {"prompt": "t"}, llm)))
                else:
                    out.append((resp, measure_response(resp, {"prompt": "t"}, llm)))
            return out
        finally:
            await client.close()

    return uvloop.run(go())


def timing(ttft_ms: float, tokens_per_sec: float, tokens: int) -> dict[str, str]:
    return {"X-Sim-TTFT-Ms": str(ttft_ms), "X-Sim-Tokens-Per-Sec": str(tokens_per_sec),
            "X-Sim-Reply-Tokens": str(tokens)}


def test_measured_ttft_and_itl_agree_with_the_simulator(simulator_url: str) -> None:
    ttft_ms, tps, tokens = 120.0, 50.0, 15
    interval_ms = 1000.0 / tps
    reg = Registry()
    results: list[StreamResult] = [
        r for _, r in chat_requests(simulator_url, reg, timing(ttft_ms, tps, tokens), count=3)]
    for res in results:
        assert res.ok, res.errors
        assert res.output_tokens == tokens
        # One request at a time on loopback: the client sees the server's schedule, never
        # early, and late by what a busy machine delays the server's timer or the
        # client's read (LATE_MS; on an idle core it is well under a millisecond, the
        # figures of bench/bench_ttft_stamps.py). The server's deadlines are absolute, so
        # the gaps' mean is the interval within that lateness spread over the stream.
        assert ttft_ms - 1 <= res.ttft_ms <= ttft_ms + LATE_MS, res
        assert len(res.itl_ms) == tokens - 1
        assert statistics.mean(res.itl_ms) == pytest.approx(interval_ms,
                                                            abs=LATE_MS / (tokens - 1))
        assert res.tpot_ms == pytest.approx(interval_ms, abs=LATE_MS / (tokens - 1))
        expected_total_s = (ttft_ms + (tokens - 1) * interval_ms) / 1000
        assert res.tokens_per_sec == pytest.approx(tokens / expected_total_s,
                                                   rel=LATE_MS / 1000 / expected_total_s)
    ttft = reg.get("llm_ttft_ms").aggregate()
    assert ttft.count == 3
    assert reg.get("llm_itl_ms").aggregate().count == 3 * (tokens - 1)
    assert reg.get("llm_queue_ms").aggregate().count == 3  # X-Queue-Time was sent
    assert reg.get("llm_errors").aggregate().value == 0


def test_non_streamed_completion_records_tokens_per_second_from_usage(
        simulator_url: str) -> None:
    reg = Registry()
    ((resp, body),) = chat_requests(simulator_url, reg, timing(50, 200, 10), stream=False)
    assert resp.status == 200 and body["usage"]["completion_tokens"] == 10
    total = reg.get("llm_total_ms").aggregate()
    tps = reg.get("llm_tokens_per_sec").aggregate()
    assert tps.count == 1
    assert tps.max == pytest.approx(10 / (total.max / 1000), rel=0.01)
    assert reg.get("llm_ttft_ms").aggregate().count == 0  # only streams have tokens to time


@pytest.mark.parametrize(("fault", "status", "reason", "failed"), [
    ("drop", 200, INCOMPLETE, 1),  # connection dropped mid-stream
    ("malformed", 200, MALFORMED, 0),  # one bad chunk; the stream goes on to [DONE]
    ("rate_limit", 429, HTTP_ERROR, 1),
])
def test_injected_faults_show_in_llm_errors_and_http_req_failed(
        simulator_url: str, fault: str, status: int, reason: str, failed: int) -> None:
    reg = Registry()
    ((resp, res),) = chat_requests(
        simulator_url, reg, {**timing(10, 500, 8), "X-Sim-Fault": fault})
    assert resp.status == status
    assert res.errors == [reason]
    errors = {ts.get("reason"): s.value for ts, s in reg.get("llm_errors").sinks.items()}
    assert errors == {reason: 1.0}
    completions = {"name": f"{simulator_url}/v1/chat/completions"}
    assert reg.get("http_req_failed").aggregate(completions).trues == failed
    if fault == "malformed":
        assert res.completed and res.output_tokens >= 7
    if fault == "drop":
        assert 0 < len(res.token_times) < 8 and not res.completed


def test_malformed_non_streamed_body_is_an_llm_error(simulator_url: str) -> None:
    reg = Registry()
    ((resp, body),) = chat_requests(
        simulator_url, reg, {**timing(5, 0, 4), "X-Sim-Fault": "malformed"}, stream=False)
    assert resp.status == 200 and body is None
    (ts,) = reg.get("llm_errors").sinks
    assert ts.get("reason") == MALFORMED

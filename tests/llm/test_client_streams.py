"""Stream metrics from real streams read with the real HTTP client over loopback."""

from __future__ import annotations

import statistics

import pytest
import uvloop

from indigo_loadtest.http import Client, ClientConfig
from indigo_loadtest.llm.stream_metrics import (
    HTTP_ERROR,
    INCOMPLETE,
    MALFORMED,
    LLMMetrics,
    measure_response,
    measure_stream,
)
from indigo_loadtest.metrics import Registry

TAGS = {"scenario": "completion_stream", "prompt": "standard"}


def stream_once(url: str, reg: Registry, query: str, stream: bool = True):
    async def go():
        client = Client(reg, ClientConfig(timeout=10))
        try:
            resp = await client.post(f"{url}/v1/chat/completions?{query}",
                                     json={"stream": stream}, stream=stream)
            if stream:
                return resp, await measure_stream(resp, TAGS, LLMMetrics(reg))
            return resp, measure_response(resp, TAGS, LLMMetrics(reg))
        finally:
            await client.close()

    return uvloop.run(go())


def test_ttft_and_itl_match_the_server_timing(stream_server: str) -> None:
    ttft_ms, itl_ms, n = 80.0, 20.0, 12
    reg = Registry()
    resp, res = stream_once(stream_server, reg, f"ttft_ms={ttft_ms}&itl_ms={itl_ms}&n={n}")
    assert resp.status == 200 and res.ok
    assert res.output_tokens == n
    # Loopback adds well under a few ms to what the server scheduled.
    assert res.ttft_ms == pytest.approx(ttft_ms, abs=8)
    assert len(res.itl_ms) == n - 1
    assert statistics.median(res.itl_ms) == pytest.approx(itl_ms, abs=3)
    assert res.tpot_ms == pytest.approx(itl_ms, abs=3)
    assert reg.get("llm_queue_ms").aggregate().max == pytest.approx(3.0, rel=1e-2)
    assert reg.get("llm_errors").aggregate().value == 0
    assert reg.get("http_req_failed").aggregate().trues == 0


def test_stream_cut_midway_is_incomplete_and_a_failed_request(stream_server: str) -> None:
    reg = Registry()
    resp, res = stream_once(stream_server, reg, "ttft_ms=10&itl_ms=5&n=8&fault=cut")
    assert not res.completed and INCOMPLETE in res.errors
    assert 0 < res.output_tokens < 8
    errors = {t.get("reason"): s.value for t, s in reg.get("llm_errors").sinks.items()}
    assert errors == {INCOMPLETE: 1.0}
    assert reg.get("http_req_failed").aggregate().trues == 1


def test_malformed_chunk_is_an_llm_error_but_the_stream_completes(stream_server: str) -> None:
    reg = Registry()
    resp, res = stream_once(stream_server, reg, "ttft_ms=10&itl_ms=5&n=4&fault=malformed")
    assert res.completed and res.output_tokens == 4 and res.errors == [MALFORMED]
    assert reg.get("http_req_failed").aggregate().trues == 0


@pytest.mark.parametrize("stream", [True, False])
def test_429_counts_in_llm_errors_and_http_req_failed(stream_server: str, stream: bool) -> None:
    reg = Registry()
    resp, _ = stream_once(stream_server, reg, "status=429", stream=stream)
    assert resp.status == 429
    (ts,) = reg.get("llm_errors").sinks
    assert ts.get("reason") == HTTP_ERROR
    assert reg.get("http_req_failed").aggregate().trues == 1

"""Response limits (http.limits): per test, per request, what crossing one does.

The whole-run behaviour against hostile servers (time, memory, exit code) is in
tests/hostile; these check the client's side of each limit on real loopback servers.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import pytest
from http_servers import metric_sinks, run, with_client

from indigo_loadtest.http import Client, SSEParser
from indigo_loadtest.http.limits import Limits
from indigo_loadtest.http.sse import SSELimitError
from indigo_loadtest.llm.stream_metrics import LLMMetrics, measure_response, measure_stream
from indigo_loadtest.metrics import Registry
from indigo_loadtest.runner import client_config
from indigo_loadtest.scenario.config import Env
from indigo_loadtest.scenario.errors import ScenarioError
from indigo_loadtest.scenario.options import parse_options

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


EVENT = b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'


def failures(reg: Registry) -> dict[str | None, tuple[int, int]]:
    """{error_code tag: (failed, total)} of http_req_failed."""
    out: dict[str | None, tuple[int, int]] = {}
    for k, s in metric_sinks(reg, "http_req_failed").items():
        trues, total = out.get(dict(k).get("error_code"), (0, 0))
        out[dict(k).get("error_code")] = (trues + s.trues, total + s.total)
    return out


def respond(head: bytes, body: bytes = b"") -> Any:
    """A raw server's handler: one response per connection (Connection: close)."""
    head = head.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head + body)
        await writer.drain()
        await reader.read()

    return handler


def test_a_body_past_the_limit_fails_that_request_only(server: Any) -> None:
    reg = Registry()

    async def go(c: Client) -> tuple[Any, Any, Any]:
        small = {"maxResponseBodySize": 100}
        over = await c.put(f"{server.url}/echo", data="x" * 500, limits=small)
        under = await c.get(f"{server.url}/hello", limits=small)
        after = await c.put(f"{server.url}/echo", data="x" * 500)  # the run's limits again
        return over, under, after

    over, under, after = run(with_client(go, reg))
    assert (over.status, over.error_code, over.body) == (200, 1710, b"")
    assert over.error == "response body larger than maxResponseBodySize (100 bytes)"
    assert under.ok and under.text == "hello" and after.ok
    assert failures(reg) == {"1710": (1, 1), None: (0, 2)}


def test_the_run_limits_come_from_client_config(server: Any) -> None:
    resp = run(with_client(lambda c: c.get(f"{server.url}/gzip"),
                           limits=Limits(max_response_body_size=200)))
    # gzip.compress(PAYLOAD) is small; the decoded body (620 bytes) is what crosses 200.
    assert (resp.status, resp.error_code, resp.body) == (200, 1711, b"")


def test_a_decompression_bomb_never_inflates_past_the_limit(raw_server: Any) -> None:
    bomb = gzip.compress(bytes(64 << 20))  # 64 KiB that inflate to 64 MiB
    url = raw_server(respond(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(bomb), bomb))
    limits = {"max_response_body_size": "1MiB"}

    async def go(c: Client) -> tuple[Any, bytes, Any]:
        plain = await c.get(url, limits=limits)
        streamed = await c.get(url, stream=True, limits=limits)
        got = await streamed.read()
        return plain, got, streamed

    plain, got, streamed = run(with_client(go))
    assert (plain.error_code, plain.body) == (1711, b"")
    assert streamed.error_code == 1711 and len(got) <= 1 << 20


def test_an_undecodable_body_is_a_failed_request(raw_server: Any) -> None:
    body = b'{"usage": {"completion_tokens": 3}} (not gzip)'
    url = raw_server(respond(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body), body))
    reg = Registry()
    llm = LLMMetrics(reg)

    async def go(c: Client) -> Any:
        resp = await c.post(url, json={})
        measure_response(resp, {"prompt": "p"}, llm)
        return resp

    resp = run(with_client(go, reg))
    assert (resp.status, resp.error_code) == (200, 1701)
    assert resp.error == "failed to decode response body (gzip)" and resp.body == body
    assert failures(reg) == {"1701": (1, 1)}
    reasons = {dict(k).get("reason") for k in metric_sinks(reg, "llm_errors")}
    assert reasons == {"malformed_json"}


@pytest.mark.parametrize(("head", "code"), [
    (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"Content-Length: 0\r\n\r\n", 1713),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * 3000 + b"\r\nContent-Length: 0\r\n\r\n", 1712),
])
def test_header_limits(raw_server: Any, head: bytes, code: int) -> None:
    url = raw_server(respond(head))
    reg = Registry()
    llm = LLMMetrics(reg)

    async def go(c: Client) -> Any:
        resp = await c.post(url, json={}, limits={"maxHeaderCount": 100,
                                                  "maxHeaderLineSize": 2048})
        measure_response(resp, {"prompt": "p"}, llm)
        return resp

    resp = run(with_client(go, reg))
    assert (resp.status, resp.error_code, resp.headers.multi_items()) == (0, code, [])
    assert {dict(k).get("reason") for k in metric_sinks(reg, "llm_errors")} == {
        "limit_exceeded"}


def test_a_header_line_split_across_reads_is_caught_before_it_ends(raw_server: Any) -> None:
    async def endless_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        for _ in range(200):  # 200 × 1 KiB pieces, never a line end
            writer.write(b"a" * 1024)
            await writer.drain()
            await asyncio.sleep(0.005)
        await reader.read()

    resp = run(with_client(lambda c: c.get(raw_server(endless_line),
                                           limits={"maxHeaderLineSize": 16384})))
    assert (resp.status, resp.error_code) == (0, 1712)


def test_one_byte_chunks_count_what_holding_them_costs(raw_server: Any) -> None:
    # 2,000 one-byte chunks: 2 kB of body, but 2,000 objects held; each counts 64 bytes.
    body = b"1\r\nz\r\n" * 2000 + b"0\r\n\r\n"
    url = raw_server(respond(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", body))

    async def go(c: Client) -> tuple[Any, Any]:
        return (await c.get(url, limits={"maxResponseBodySize": 100_000}),
                await c.get(url, limits={"maxResponseBodySize": 200_000}))

    tight, roomy = run(with_client(go))
    assert (tight.error_code, tight.body) == (1710, b"")
    assert roomy.ok and roomy.body == b"z" * 2000


def test_endless_trailers_are_bounded_by_the_wire_size(raw_server: Any) -> None:
    trailers = b"X-Trailer: v\r\n" * 10_000
    url = raw_server(respond(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                             b"2\r\nok\r\n0\r\n" + trailers))
    limits = Limits(max_response_body_size=1000, max_header_count=10, max_header_line_size=100)
    resp = run(with_client(lambda c: c.get(url, limits=limits)))
    assert limits.max_wire_size == 3000
    assert (resp.error_code, resp.body, resp.ok) == (1710, b"", False)


def test_stream_event_limits_fail_the_request_even_when_the_body_had_all_come(
    raw_server: Any,
) -> None:
    body = EVENT * 50 + b"data: [DONE]\n\n"
    url = raw_server(respond(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body), body))
    reg = Registry()
    llm = LLMMetrics(reg)

    async def go(c: Client) -> tuple[Any, Any, Any]:
        resp = await c.post(url, json={}, stream=True, limits={"maxStreamEvents": 10})
        result = await measure_stream(resp, {"prompt": "p"}, llm)
        whole = await c.post(url, json={}, stream=True)
        return resp, result, await measure_stream(whole, {"prompt": "p"}, llm)

    resp, result, whole = run(with_client(go, reg))
    assert resp.error_code == 1715 and result.errors == ["limit_exceeded"]
    assert len(result.token_times) == 10  # the events within the cap, so 9 ITL samples
    assert whole.ok and whole.output_tokens == 50
    assert failures(reg) == {"1715": (1, 1), None: (0, 1)}


def test_sse_parser_limits_and_an_event_in_many_pieces() -> None:
    p = SSEParser(max_event_size=1000, max_events=3)
    pieces = [b"data: ", *[b"y" * 50] * 19, b"\n", b"\n"]  # 957 bytes in 22 chunks
    events = [ev for piece in pieces for ev in p.feed(piece, 1.0)]
    assert [len(ev.data) for ev in events] == [950]
    assert p.feed(b"data: b\n\n", 2.0)[0].data == "b"
    with pytest.raises(SSELimitError) as too_many:
        p.feed(b"data: c\n\ndata: d\n\n", 3.0)
    assert too_many.value.code == 1715 and [e.data for e in too_many.value.events] == ["c"]

    p = SSEParser(max_event_size=1000)
    with pytest.raises(SSELimitError) as too_large:
        for _ in range(30):
            p.feed(b"data: " + b"z" * 50, 1.0)
    assert too_large.value.code == 1714
    assert p._held == 0  # what it held is dropped


def test_limit_options_camel_and_snake_case_and_mistakes() -> None:
    opts = parse_options({"maxResponseBodySize": "2MiB", "max_header_count": 50,
                          "maxSSEEventSize": "1MB", "maxStreamEvents": 1000}).plan.extra
    limits = client_config(Env({}), opts).limits
    assert limits == Limits(max_response_body_size=2 << 20, max_header_count=50,
                            max_sse_event_size=1_000_000, max_stream_events=1000)
    for bad, message in (({"maxResponseBodySize": "lots"}, "maxResponseBodySize: invalid"),
                         ({"maxStreamEvents": 0}, "maxStreamEvents: expected a positive")):
        with pytest.raises(ScenarioError, match=message):
            client_config(Env({}), parse_options(bad).plan.extra)
    with pytest.raises(ValueError, match="unknown limit 'maxBody'"):
        Limits().merged({"maxBody": 1})

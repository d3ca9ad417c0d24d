"""Stream times are the arrival of bytes, never the time our own parsing finished.

A stream whose whole body comes in one read (as a fast server on loopback, or a proxy
that buffers, delivers it) must give the same end time to the llm_* metrics as to the
HTTP timings, however long the generator then takes to parse its events.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from http_servers import metric_sinks, read_request, run, with_client

from indigo_loadtest.http import Client
from indigo_loadtest.http.response import StreamResponse
from indigo_loadtest.http.sse import SSEParser
from indigo_loadtest.llm.stream_metrics import LLMMetrics, StreamResult, measure_stream
from indigo_loadtest.metrics import Registry

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


EVENTS = 300
PARSE_DELAY_S = 0.05
CHUNK = b'data: {"choices":[{"delta":{"content":"tok"}}]}\n\n'
BODY = CHUNK * EVENTS + b"data: [DONE]\n\n"
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Content-Length: %d\r\n\r\n" % len(BODY))


async def whole_stream_in_one_write(reader: asyncio.StreamReader,
                                    writer: asyncio.StreamWriter) -> None:
    """Keep-alive: each request gets its head and whole body in one write."""
    try:
        while True:
            await read_request(reader)
            writer.write(HEAD + BODY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def slow_parse(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make each parse step of the SSE parser cost PARSE_DELAY_S of CPU time (through a
    subclass: the compiled SSEParser's own methods cannot be replaced)."""
    spent: list[float] = []

    class SlowParser(SSEParser):
        def feed(self, chunk: bytes, t: float) -> Any:
            start = time.perf_counter()
            while time.perf_counter() - start < PARSE_DELAY_S:
                pass
            spent.append(time.perf_counter() - start)
            return super().feed(chunk, t)

    def sse_parser(self: StreamResponse) -> SSEParser:
        lim = self._ex.limits
        return SlowParser(lim.max_sse_event_size, lim.max_stream_events)

    monkeypatch.setattr(StreamResponse, "sse_parser", sse_parser)
    return spent


def test_a_one_read_stream_ends_when_its_bytes_arrived_not_after_parsing(
        raw_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = raw_server(whole_stream_in_one_write)
    spent = slow_parse(monkeypatch)
    reg = Registry()
    llm = LLMMetrics(reg)

    async def go(c: Client) -> tuple[Any, StreamResult]:
        warm = await c.get(url, stream=True)  # the measured request reuses its connection
        await warm.read()
        resp = await c.get(url, stream=True)
        return resp, await measure_stream(resp, {"prompt": "p"}, llm)

    resp, res = run(with_client(go, reg))
    assert resp.status == 200 and resp.error == "" and res.ok, res.errors
    assert res.output_tokens == EVENTS
    assert spent and sum(spent) >= PARSE_DELAY_S  # the parse really was slow
    t = resp.timings
    http_total_ms = (t.blocked + t.connecting + t.tls_handshaking + t.sending + t.waiting
                     + t.receiving)
    # The only time between the request's start and its end that the HTTP timings leave
    # out is a few statements before the request is written.
    assert res.total_ms == pytest.approx(http_total_ms, abs=0.1)
    assert res.total_ms < PARSE_DELAY_S * 1000 / 2
    assert res.receiving_ms == pytest.approx(t.receiving, abs=1e-6)
    # Every event came in the read that ended the stream: no gap, no time per token.
    assert set(res.itl_ms) == {0.0} and res.tpot_ms == 0.0
    assert res.ttft_ms == pytest.approx(res.total_ms, abs=1e-6)
    [total] = metric_sinks(reg, "llm_total_ms").values()
    [receiving] = metric_sinks(reg, "llm_receiving_ms").values()
    assert total.max == pytest.approx(res.total_ms, abs=1e-9)
    assert receiving.max == pytest.approx(t.receiving, abs=1e-6)


def test_events_keep_the_time_of_their_read_while_the_reader_is_slow(
        raw_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that handles each event slowly (the scenario's own loop) still sees
    every event, and the stream's end, at the time of the read that brought it."""
    url = raw_server(whole_stream_in_one_write)

    async def go(c: Client) -> tuple[Any, list[float], float]:
        resp = await c.get(url, stream=True)
        times = []
        async for ev in resp.sse():
            times.append(ev.t)
            time.sleep(PARSE_DELAY_S / EVENTS)
        return resp, times, time.perf_counter()

    resp, times, after = run(with_client(go))
    assert len(times) == EVENTS + 1 and resp.ended_at is not None
    assert max(times) <= resp.ended_at <= after - PARSE_DELAY_S
    assert resp.timings.receiving == pytest.approx(
        (resp.ended_at - resp.headers_at) * 1000.0, abs=1e-6)


def test_consume_hands_each_read_over_as_it_arrives(server: Any) -> None:
    """The reader's fast path: pieces reach the sink as they come, each with the time of
    the read that brought it; the request is measured once the sink has seen the end."""
    reg = Registry()

    async def go(c: Client) -> tuple[Any, list[tuple[bytes, float]], int]:
        resp = await c.get(f"{server.url}/sse?n=3&interval_ms=30", stream=True)
        seen: list[tuple[bytes, float]] = []
        await resp.consume(lambda data, t: seen.append((data, t)))
        return resp, seen, metric_sinks(reg, "http_req_duration")

    resp, seen, durations = run(with_client(go, reg))
    assert resp.error == "" and resp.done
    assert b"".join(d for d, _ in seen) == (b'data: {"i": 0}\n\ndata: {"i": 1}\n\n'
                                           b'data: {"i": 2}\n\ndata: [DONE]\n\n')
    times = [t for _, t in seen]
    assert times == sorted(times) and times[-1] - times[0] > 0.05  # 30 ms apart
    assert resp.ended_at is not None and resp.ended_at >= times[-1]
    [(_, dur)] = durations.items()
    assert dur.count == 1 and resp.timings.duration == dur.max


def test_a_sink_that_raises_fails_its_request_and_raises_to_the_reader(server: Any) -> None:
    reg = Registry()

    def sink(data: bytes, t: float) -> None:
        if b'"i": 1' in data:
            raise RuntimeError("scenario bug")

    async def go(c: Client) -> tuple[Any, str, Any]:
        resp = await c.get(f"{server.url}/sse?n=4&interval_ms=20", stream=True)
        try:
            await resp.consume(sink)
        except RuntimeError as exc:
            raised = str(exc)
        return resp, raised, await c.get(f"{server.url}/hello")

    resp, raised, after = run(with_client(go, reg))
    assert raised == "scenario bug"
    assert (resp.error, resp.error_code) == ("stream reader failed", 1000)
    assert after.status == 200  # the client goes on, on a new connection
    failed = {dict(k).get("error"): s.trues for k, s in metric_sinks(reg, "http_req_failed")
              .items()}
    assert failed == {"stream reader failed": 1, None: 0}


def test_a_slow_sink_does_not_delay_the_stamps_of_reads_in_the_same_loop_pass(
        raw_server: Any) -> None:
    """Events of two streams that are ready in the same event-loop pass are both stamped
    before either is parsed: a stream's parsing never makes another's timestamps late."""
    both_asked = asyncio.Event()
    asked: list[asyncio.StreamWriter] = []

    async def two_streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        asked.append(writer)
        if len(asked) == 2:
            await asyncio.sleep(0.03)  # meanwhile the client's loop is held (below)
            event = b'data: {"i": 1}\n\n'
            for w in asked:
                w.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
            both_asked.set()
        await both_asked.wait()
        await writer.drain()
        writer.close()

    url = raw_server(two_streams)
    stamps: dict[str, float] = {}

    def slow_sink(name: str) -> Any:
        def sink(data: bytes, t: float) -> None:
            if b"data:" in data:
                stamps[name] = t
                time.sleep(PARSE_DELAY_S)  # a parse this slow holds the loop
        return sink

    async def go() -> None:
        clients = [Client(Registry()), Client(Registry())]
        try:
            a, b = [await c.get(url, stream=True) for c in clients]
            # Hold the loop while the server writes to both: their reads are then ready
            # together, in one pass.
            asyncio.get_running_loop().call_later(0.01, time.sleep, 0.06)
            await asyncio.gather(a.consume(slow_sink("a")), b.consume(slow_sink("b")))
        finally:
            for c in clients:
                await c.close()

    run(go())
    assert set(stamps) == {"a", "b"}
    assert abs(stamps["a"] - stamps["b"]) < PARSE_DELAY_S / 2

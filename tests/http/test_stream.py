"""Streaming responses and server-sent events: parsing, arrival times, broken streams."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from http_servers import metric_sinks, run, with_client
from hypothesis import given, settings
from hypothesis import strategies as st

from indigo_loadtest.http import Client, SSEParser
from indigo_loadtest.metrics import Registry

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


SPEC_STREAM = (
    b"\xef\xbb\xbf: a comment first\r\n"
    b"retry: 3000\r\n"
    b"data: first\r\n\r\n"
    b"event: update\nid: 7\ndata: multi\ndata:line\n\n"
    b"data\n\n"
    b": only a comment\n\n"
    b"id: 8\n\n"
    b"data: after id\rdata: cr only\r\r"
    b"field without colon\ndata:  two spaces\n\n"
    b"data: incomplete at the end"
)
SPEC_EVENTS = [
    ("message", "first", ""),
    ("update", "multi\nline", "7"),
    ("message", "", "7"),
    ("message", "after id\ncr only", "8"),
    ("message", " two spaces", "8"),
]


def parse(chunks: list[bytes]) -> list[tuple[str, str, str]]:
    p = SSEParser()
    events = []
    for i, chunk in enumerate(chunks):
        events += p.feed(chunk, float(i))
    events += p.end(float(len(chunks)))
    return [(e.event, e.data, e.id) for e in events]


def test_sse_parsing_follows_the_whatwg_rules() -> None:
    assert parse([SPEC_STREAM]) == SPEC_EVENTS
    p = SSEParser()
    p.feed(SPEC_STREAM, 0.0)
    assert p.retry == 3000 and p.last_id == "8"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SPEC_STREAM)), max_size=12))
def test_sse_parsing_does_not_depend_on_chunk_boundaries(cuts: list[int]) -> None:
    bounds = sorted(set(cuts))
    chunks = [SPEC_STREAM[a:b] for a, b in zip([0, *bounds], [*bounds, len(SPEC_STREAM)],
                                                strict=True)]
    assert parse(chunks) == SPEC_EVENTS


def test_event_time_is_the_arrival_of_its_last_bytes() -> None:
    p = SSEParser()
    assert p.feed(b"data: a\n", 1.0) == []
    [ev] = p.feed(b"\ndata: b", 2.0)
    assert (ev.data, ev.t) == ("a", 2.0)
    [ev] = p.feed(b"\n\n", 3.0)
    assert (ev.data, ev.t) == ("b", 3.0)


def test_sse_events_arrive_with_distinct_times(server: Any) -> None:
    reg = Registry()

    async def go(c: Client) -> tuple[Any, list[Any], int]:
        async with await c.get(f"{server.url}/sse?n=4&interval_ms=40", stream=True) as resp:
            recorded_at_headers = len(reg.metrics["http_reqs"].sinks)
            events = [ev async for ev in resp.sse()]
        return resp, events, recorded_at_headers

    resp, events, recorded_at_headers = run(with_client(go, reg))
    assert resp.status == 200 and resp.error == ""
    assert resp.headers["content-type"] == "text/event-stream"
    assert [e.data for e in events] == ['{"i": 0}', '{"i": 1}', '{"i": 2}', '{"i": 3}', "[DONE]"]
    assert events[0].json() == {"i": 0}
    times = [e.t for e in events]
    assert resp.request_start < resp.headers_at <= times[0]
    # The server sleeps 40 ms between events: each event's time shows its arrival.
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.03 < g < 0.5 for g in gaps), gaps
    # Metrics are recorded once the body has ended, not when the headers came.
    assert recorded_at_headers == 0
    [(_, dur)] = metric_sinks(reg, "http_req_duration").items()
    assert dur.count == 1 and dur.max >= 150
    assert resp.timings.receiving >= 150 and resp.timings.duration == dur.max


def test_iter_chunks_and_read(server: Any) -> None:
    async def go(c: Client) -> tuple[list[tuple[bytes, float]], bytes]:
        resp = await c.get(f"{server.url}/chunked", stream=True)
        chunks = [c async for c in resp.iter_chunks()]
        # Timings are final as soon as the reader has seen the end of the body.
        assert resp.done and resp.timings.receiving > 0 and resp.error == ""
        resp2 = await c.get(f"{server.url}/sse?n=2", stream=True)
        return chunks, await resp2.read()

    chunks, body = run(with_client(go))
    assert b"".join(data for data, _ in chunks) == b"alpha-beta-gamma"
    assert [t for _, t in chunks] == sorted(t for _, t in chunks)
    assert body == b'data: {"i": 0}\n\ndata: {"i": 1}\n\ndata: [DONE]\n\n'


def test_stream_broken_midway_ends_quietly_and_counts_as_failed(server: Any) -> None:
    reg = Registry()

    async def go(c: Client) -> tuple[Any, list[str], Any]:
        resp = await c.get(f"{server.url}/sse-break", stream=True)
        events = [ev.data async for ev in resp.sse()]
        return resp, events, await c.get(f"{server.url}/hello")

    resp, events, after = run(with_client(go, reg))
    assert events == ["part 0", "part 1"]
    assert resp.status == 200 and resp.error and resp.error_code in (1000, 1220)
    assert after.status == 200
    failed = {dict(k).get("error"): (s.trues, s.total)
              for k, s in metric_sinks(reg, "http_req_failed").items()}
    assert failed[resp.error] == (1, 1) and failed[None] == (0, 1)


def test_closing_a_stream_early_frees_the_client(server: Any) -> None:
    reg = Registry()

    async def go(c: Client) -> tuple[Any, Any]:
        async with await c.get(f"{server.url}/sse?n=50&interval_ms=20", stream=True) as resp:
            async for _ in resp.sse():
                break
        return resp, await c.get(f"{server.url}/hello")

    resp, after = run(with_client(go, reg))
    assert resp.error == "" and after.status == 200
    assert sum(s.total for s in metric_sinks(reg, "http_req_failed").values()) == 2


def test_stream_to_unreachable_server_is_a_finished_failed_stream() -> None:
    from http_servers import free_port

    async def go(c: Client) -> tuple[Any, list[Any]]:
        async with await c.get(f"http://127.0.0.1:{free_port()}/", stream=True) as resp:
            return resp, [ev async for ev in resp.sse()]

    resp, events = run(with_client(go))
    assert (resp.status, resp.error_code, events) == (0, 1212, [])


def test_cancelling_a_reading_vu_drops_the_stream_unmeasured(server: Any) -> None:
    reg = Registry()

    async def go(c: Client) -> None:
        async def vu() -> None:
            resp = await c.get(f"{server.url}/sse?n=100&interval_ms=20", stream=True)
            async for _ in resp.sse():
                pass

        task = asyncio.ensure_future(vu())
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.01)

    run(with_client(go, reg))
    assert reg.metrics["http_reqs"].sinks == {}

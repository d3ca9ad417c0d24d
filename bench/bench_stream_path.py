"""The per-event stream path in process, without sockets: what our code costs per
event, apart from the kernel and the event loop's reads.

STREAMS streamed responses are read through `measure_stream` (all llm_* metrics
recorded), as a scenario's VUs read them; each loop pass hands every stream one
chunked OpenAI-style token event to `Connection.data_received` (one event per read,
the paced case), then lets the loop run the pass's sink batch. Repeatable to the
instruction under `valgrind --tool=callgrind` (take the difference of two event
counts: the set-up cancels out), and a quick CPU-time figure on its own:

    python bench/bench_stream_path.py [--streams 200] [--events 50] [--repeat 5]

It prints which stream path ran (compiled or pure Python: indigo_loadtest.compiled()).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from indigo_loadtest import compiled
from indigo_loadtest.http.response import StreamResponse
from indigo_loadtest.http.transport import Connection, Exchange
from indigo_loadtest.llm.stream_metrics import LLMMetrics, measure_stream
from indigo_loadtest.metrics.registry import Registry

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")
EVENT = (b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk",'
         b'"created":1700000000,"model":"bench","choices":[{"index":0,'
         b'"delta":{"content":"tok "},"finish_reason":null}]}\n\n')
DONE = b"data: [DONE]\n\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class NullTransport:
    """What a Connection calls on its transport; nothing goes anywhere."""

    def write(self, data: bytes) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


async def one_run(streams: int, events: int) -> float:
    """CPU seconds for `streams` streams of `events` token events each."""
    loop = asyncio.get_running_loop()
    metrics = LLMMetrics(Registry())
    conns, readers = [], []
    for _ in range(streams):
        conn = Connection(("http", "127.0.0.1", 1))
        conn.connection_made(NullTransport())  # type: ignore[arg-type]
        ex = Exchange(loop.create_future(), False, True, False)
        conn.send(ex, b"")
        conn.data_received(HEAD)
        resp = StreamResponse("GET", "http://127.0.0.1:1/", ex, time.perf_counter(), b"")
        conns.append(conn)
        readers.append(asyncio.ensure_future(measure_stream(resp, metrics=metrics)))
    await asyncio.sleep(0)  # every reader waiting in consume()
    piece, last = chunk(EVENT), chunk(DONE) + b"0\r\n\r\n"
    c0 = time.process_time()
    for _ in range(events):
        for conn in conns:
            conn.data_received(piece)
        await asyncio.sleep(0)  # the pass's sink batch runs
    for conn in conns:
        conn.data_received(last)
    results = await asyncio.gather(*readers)
    cpu = time.process_time() - c0
    assert all(r.ok and len(r.token_times) == events for r in results), "bad stream"
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    per_event = [run(one_run(args.streams, args.events)) / (args.streams * args.events) * 1e6
                 for _ in range(args.repeat)]
    print(f"stream path: {'compiled' if compiled() else 'pure Python'}; "
          f"{args.streams} streams x {args.events} events: "
          f"median {statistics.median(per_event):.2f} µs/event "
          f"(min {min(per_event):.2f}, {args.repeat} runs)")


if __name__ == "__main__":
    main()

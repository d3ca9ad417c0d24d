"""Small, fast benchmark targets on asyncio protocols and uvloop.

    python servers.py timing PORT
        Answers every GET with 200 "ok" and `X-Server-Time-Us`: the microseconds the
        server spent between the request's bytes arriving and the response being
        handed to the kernel, so a client can subtract the server's own time.

    python servers.py drip PORT INTERVAL EVENTS
        Answers every GET with a text/event-stream that sends one event every INTERVAL
        seconds, EVENTS times, then ends the response. One timer serves all streams, so
        10,000 open streams cost the server little. Prints the peak number of open
        streams to stdout when stopped (SIGTERM/SIGINT).

    python servers.py paced PORT INTERVAL EVENTS
        Like drip, but paced as a model server: every stream gets one event per
        INTERVAL in its own write (so a reader gets one event per read), streams are
        spread over the interval's 1 ms phases, and each event is an OpenAI-style
        chat-completion chunk whose content is its send time (`time.monotonic()`,
        the clock `time.perf_counter()` reads on Linux): ground truth for a reader's
        timestamps on the same machine. A stream has EVENTS/2 to 3·EVENTS/2 events (a
        seeded draw: on average EVENTS), so streams do not all end on the same tick, as
        the replies of a real model do not; then `data: [DONE]`. The headers carry
        `X-Sent`, their own send time.

Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time

import uvloop

_ns = time.perf_counter_ns


class TimingProtocol(asyncio.Protocol):
    """Keep-alive HTTP/1.1 GET responder that reports its own processing time."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        t0 = _ns()
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            self.buf = self.buf[end + 4:]  # GETs only: no body to skip
            us = (_ns() - t0) / 1000
            out.append(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                b"X-Server-Time-Us: %.3f\r\n\r\nok" % us
            )
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]


class DripProtocol(asyncio.Protocol):
    """One SSE stream per request; the server's ticker feeds all of them."""

    def __init__(self, server: DripServer) -> None:
        self.server = server
        self.buf = b""
        self.sent = -1  # -1: no request yet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.sent < 0 and b"\r\n\r\n" in self.buf:
            self.buf = b""
            self.sent = 0
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            self.server.open.add(self)
            self.server.peak = max(self.server.peak, len(self.server.open))

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.open.discard(self)


class DripServer:
    EVENT = b'data: {"choices":[{"delta":{"content":"tok"}}]}\n\n'
    CHUNK = b"%x\r\n%s\r\n" % (len(EVENT), EVENT)

    def __init__(self, interval: float, events: int) -> None:
        self.interval = interval
        self.events = events
        self.open: set[DripProtocol] = set()
        self.peak = 0

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for p in list(self.open):
                p.sent += 1
                if p.sent >= self.events:
                    # New request on the same connection may follow (keep-alive).
                    p.transport.write(self.CHUNK + b"0\r\n\r\n")  # type: ignore[attr-defined]
                    self.open.discard(p)
                    p.sent = -1
                else:
                    p.transport.write(self.CHUNK)  # type: ignore[attr-defined]


class PacedProtocol(DripProtocol):
    """One paced SSE stream per request; the server's phase ticks feed it."""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.sent < 0 and b"\r\n\r\n" in self.buf:
            self.buf = b""
            self.sent = 0
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"X-Sent: %.7f\r\nTransfer-Encoding: chunked\r\n\r\n" % time.monotonic()
            )
            self.server.add(self)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.remove(self)  # type: ignore[attr-defined]


class PacedServer:
    """Streams in PHASES groups, one group served per 1/PHASES of the interval."""

    PHASES = 10
    EVENT = (b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk",'
             b'"created":1700000000,"model":"bench","choices":[{"index":0,'
             b'"delta":{"content":"%.7f "},"finish_reason":null}]}\n\n')
    DONE = b"data: [DONE]\n\n"
    LAST = b"%x\r\n%s\r\n0\r\n\r\n" % (len(DONE), DONE)

    def __init__(self, interval: float, events: int) -> None:
        self.interval = interval
        self.events = events
        self.lengths = random.Random(16)  # the same draws in every run
        self.length: dict[PacedProtocol, int] = {}
        self.groups: list[set[PacedProtocol]] = [set() for _ in range(self.PHASES)]
        self.where: dict[PacedProtocol, int] = {}
        self.turn = 0
        self.sent = 0

    def add(self, p: PacedProtocol) -> None:
        group = self.where.get(p)
        if group is None:  # a new connection joins the next phase, round-robin
            group = self.where[p] = self.turn
            self.turn = (self.turn + 1) % self.PHASES
        self.length[p] = self.lengths.randint(max(1, self.events // 2), self.events * 3 // 2)
        self.groups[group].add(p)

    def remove(self, p: PacedProtocol) -> None:
        group = self.where.pop(p, None)
        self.length.pop(p, None)
        if group is not None:
            self.groups[group].discard(p)

    async def tick(self) -> None:
        loop = asyncio.get_running_loop()
        step = self.interval / self.PHASES
        due = loop.time()
        phase = 0
        event, now, length = self.EVENT, time.monotonic, self.length
        while True:
            due += step
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:  # far behind (overloaded): do not burst to catch up
                due = loop.time()
            group = self.groups[phase]
            for p in list(group):
                p.sent += 1
                if p.sent > length[p]:
                    group.discard(p)  # keep-alive: its next request joins again
                    p.sent = -1
                    p.transport.write(self.LAST)  # type: ignore[attr-defined]
                else:
                    body = event % now()
                    p.transport.write(b"%x\r\n%s\r\n" % (len(body), body))  # type: ignore[attr-defined]
            self.sent += len(group)
            phase = (phase + 1) % self.PHASES


async def serve(mode: str, port: int, args: list[str]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    drip: DripServer | PacedServer | None = None
    if mode == "timing":
        server = await loop.create_server(TimingProtocol, "127.0.0.1", port, backlog=4096)
    elif mode == "drip":
        drip = DripServer(float(args[0]), int(args[1]))
        server = await loop.create_server(lambda: DripProtocol(drip), "127.0.0.1", port,
                                          backlog=4096)
        ticker = asyncio.ensure_future(drip.tick())
    elif mode == "paced":
        drip = PacedServer(float(args[0]), int(args[1]))
        server = await loop.create_server(lambda: PacedProtocol(drip), "127.0.0.1", port,
                                          backlog=8192)
        ticker = asyncio.ensure_future(drip.tick())
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    await stop.wait()
    server.close()
    if isinstance(drip, DripServer):
        ticker.cancel()
        print(f"peak_open_streams {drip.peak}", flush=True)
    elif drip is not None:
        ticker.cancel()


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    uvloop.run(serve(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))


if __name__ == "__main__":
    main()

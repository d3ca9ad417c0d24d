"""The references of the paced-streams benchmark: an aiohttp SSE reader (what LLM
benchmark tools do) and a bare asyncio protocol that only timestamps its reads (the
floor: what one event per read costs before any HTTP or SSE work).

    python paced_readers.py aiohttp|floor URL STREAMS WARMUP SECONDS [TAIL] [--truth]

STREAMS readers each request the stream at URL again and again. After WARMUP seconds
(every stream open and flowing), the process's CPU time and the events received are
noted; SECONDS later again. Prints one JSON line: {"events", "seconds", "cpu_seconds",
"reads"} over that window. With --truth, each event's content is its send time
(`bench/peers/servers.py paced`): it also prints the TTFT error (first event's stamp −
its send time), each inter-token gap's error (measured gap − sent gap) and each event's
delay (stamp − send time), in µs, for the tokens that arrived in the window (the floor
waits up to TAIL seconds for the streams open at its end).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from array import array
from urllib.parse import urlsplit

import uvloop

_perf = time.perf_counter
_CONTENT = b'"content":"'


class Window:
    """The counters of one reader process, and the measuring window."""

    def __init__(self, truth: bool) -> None:
        self.events = 0
        self.reads = 0
        self.truth = truth
        self.ttft_err = array("d")
        self.itl_err = array("d")
        self.delay = array("d")
        self.window = (0.0, 0.0)  # errors are kept for the tokens that arrived in it
        self.in_flight = 0  # streams not yet ended

    def stream_errors(self, stamps: list[float], sent: list[float]) -> None:
        w0, w1 = self.window
        if not self.truth or not stamps or not w0:
            return
        if w0 <= stamps[0] < w1:
            self.ttft_err.append((stamps[0] - sent[0]) * 1e6)
        for i in range(len(stamps)):
            if w0 <= stamps[i] < w1:
                self.delay.append((stamps[i] - sent[i]) * 1e6)
                if i:
                    self.itl_err.append(((stamps[i] - stamps[i - 1])
                                         - (sent[i] - sent[i - 1])) * 1e6)


def _sent_time(event: bytes) -> float:
    i = event.find(_CONTENT) + len(_CONTENT)
    return float(event[i:event.index(b" ", i)])


# --- aiohttp ------------------------------------------------------------------------------
async def aiohttp_stream(session, url: str, w: Window) -> None:
    stamps: list[float] = []
    sent: list[float] = []
    last = _perf()
    gaps = []
    async with session.get(url) as resp:
        async for raw in resp.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            now = _perf()
            chunk = json.loads(data)
            content = chunk["choices"][0]["delta"].get("content")
            if content:
                gaps.append(now - last)
                last = now
                if w.truth:
                    stamps.append(now)
                    sent.append(float(content))
            w.events += 1
    w.stream_errors(stamps, sent)


async def aiohttp_readers(url: str, streams: int, w: Window, stop: asyncio.Event) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def reader() -> None:
            while not stop.is_set():
                await aiohttp_stream(session, url, w)

        tasks = [asyncio.ensure_future(reader()) for _ in range(streams)]
        await stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- the floor: a protocol that stamps reads ------------------------------------------------
class FloorProtocol(asyncio.Protocol):
    """Sends a GET, stamps every read, counts its events; asks again when a stream ends."""

    def __init__(self, request: bytes, w: Window) -> None:
        self.request = request
        self.w = w
        self.t = 0.0
        self.stamps: list[float] = []
        self.sent: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.t = t = _perf()
        w = self.w
        w.reads += 1
        w.events += data.count(b"data: {")
        if w.truth and _CONTENT in data:
            for part in data.split(b"\n\n")[:-1]:
                if _CONTENT in part:
                    self.stamps.append(t)
                    self.sent.append(_sent_time(part))
        if data.endswith(b"0\r\n\r\n"):  # the stream's last chunk: the next request
            w.stream_errors(self.stamps, self.sent)
            self.stamps, self.sent = [], []
            if w.window[1] == 0.0 or w.window[1] == float("inf"):
                self.transport.write(self.request)  # type: ignore[attr-defined]
            else:  # the window has closed: no new stream
                w.in_flight -= 1


async def floor_readers(url: str, streams: int, w: Window, stop: asyncio.Event) -> None:
    parts = urlsplit(url)
    request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    transports = []
    w.in_flight = streams
    for _ in range(streams):
        tr, _p = await loop.create_connection(lambda: FloorProtocol(request, w),
                                              parts.hostname, parts.port)
        transports.append(tr)
    await stop.wait()
    for tr in transports:
        tr.close()


# --- the window -----------------------------------------------------------------------------
def percentiles(values: array) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    s = sorted(values)
    return {"p50": s[len(s) // 2], "p99": s[min(len(s) - 1, int(len(s) * 0.99))], "n": len(s)}


async def main(kind: str, url: str, streams: int, warmup: float, seconds: float,
               truth: bool, tail: float) -> None:
    w = Window(truth)
    stop = asyncio.Event()
    readers = aiohttp_readers if kind == "aiohttp" else floor_readers
    task = asyncio.ensure_future(readers(url, streams, w, stop))
    await asyncio.sleep(warmup)
    e0, r0, c0, t0 = w.events, w.reads, time.process_time(), _perf()
    w.window = (t0, float("inf"))
    await asyncio.sleep(seconds)
    e1, r1, c1, t1 = w.events, w.reads, time.process_time(), _perf()
    w.window = (t0, t1)
    if truth and kind == "floor":  # the streams open at the window's end: their tokens
        while w.in_flight > 0 and _perf() < t1 + tail:  # that arrived in it count too
            await asyncio.sleep(0.1)
    stop.set()
    await task
    out = {"events": e1 - e0, "reads": r1 - r0, "seconds": t1 - t0, "cpu_seconds": c1 - c0}
    if truth:
        out["ttft_err_us"] = percentiles(w.ttft_err)
        out["itl_err_us"] = percentiles(w.itl_err)
        out["delay_us"] = percentiles(w.delay)
    print(json.dumps(out))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--truth"]
    if len(args) not in (5, 6) or args[0] not in ("aiohttp", "floor"):
        raise SystemExit(__doc__)
    uvloop.run(main(args[0], args[1], int(args[2]), float(args[3]), float(args[4]),
                    "--truth" in sys.argv, float(args[5]) if len(args) == 6 else 0.0))

"""Responses of the HTTP client: plain (body read) and streamed (body arrives later)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from .decode import decode_body, incremental_decoder
from .redact import mask_headers, mask_url
from .sse import SSEEvent, SSELimitError, SSEParser
from .transport import (
    PIECE_COST,
    STREAM_LOW_WATER,
    PieceSink,
    drain_sink,
    piece_sink,
    sink_batch,
)

if TYPE_CHECKING:
    from .transport import Exchange

__all__ = ["Headers", "RequestInfo", "Response", "StreamResponse", "Timings", "decode_body",
           "head_pairs", "incremental_decoder"]

PROTO = "HTTP/1.1"


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued headers; `h["x"]` is the first value.

    Built from the raw (name, value) byte pairs only when first used, so a request
    whose headers nobody reads never decodes them.
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: list[tuple[str, str]] | Mapping[str, str] | None = None) -> None:
        if items is None:
            items = []
        elif isinstance(items, Mapping):
            items = [(str(k), str(v)) for k, v in items.items()]
        self._items: list[tuple[str, str]] = items
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        return cls([(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw])

    def _idx(self) -> dict[str, list[str]]:
        idx = self._index
        if idx is None:
            idx = {}
            for k, v in self._items:
                idx.setdefault(k.lower(), []).append(v)
            self._index = idx
        return idx

    def __getitem__(self, key: str) -> str:
        return self._idx()[key.lower()][0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._idx()

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for k, _ in self._items:
            lk = k.lower()
            if lk not in seen:
                seen.add(lk)
                yield k

    def __len__(self) -> int:
        return len(self._idx())

    def getall(self, key: str, default: list[str] | None = None) -> list[str]:
        """Every value of header `key`, in order received."""
        vals = self._idx().get(key.lower())
        if vals is None:
            return [] if default is None else default
        return list(vals)

    def multi_items(self) -> list[tuple[str, str]]:
        """All (name, value) pairs, duplicates included, as received."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({mask_headers(self._items)!r})"


class Timings(NamedTuple):
    """k6's request timings in milliseconds."""

    blocked: float
    connecting: float
    tls_handshaking: float
    sending: float
    waiting: float
    receiving: float

    @property
    def duration(self) -> float:
        return self.sending + self.waiting + self.receiving


def head_pairs(head: str | bytes) -> list[tuple[str, str]]:
    """The (name, value) header pairs of a serialized request (body, if any, ignored)."""
    if isinstance(head, bytes):
        head = head.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
    else:
        head = head.partition("\r\n\r\n")[0]
    pairs = []
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            pairs.append((name, value.strip()))
    return pairs


class RequestInfo:
    """What was sent, with secret header values masked."""

    __slots__ = ("_head", "method", "url")

    def __init__(self, method: str, url: str, wire: bytes) -> None:
        self.method = method
        self.url = url
        self._head = wire  # the serialized request; parsed only when asked

    @property
    def headers(self) -> Headers:
        return Headers(mask_headers(head_pairs(self._head)))

    def __repr__(self) -> str:
        return f"<Request {self.method} {mask_url(self.url)}>"


class _BaseResponse:
    __slots__ = (
        "_headers", "_raw_headers", "_req_headers", "error", "error_code",
        "method", "request_start", "status", "timings", "url",
    )

    status: int
    url: str
    error: str
    error_code: int
    timings: Timings
    request_start: float

    @property
    def headers(self) -> Headers:
        h = self._headers
        if h is None:
            h = self._headers = Headers.from_raw(self._raw_headers)
        return h

    @property
    def ok(self) -> bool:
        """No network error and a 2xx/3xx status."""
        return 200 <= self.status < 400 and not self.error

    @property
    def proto(self) -> str:
        return PROTO if self.status else ""

    @property
    def request(self) -> RequestInfo:
        return RequestInfo(self.method, self.url, self._req_headers)


class Response(_BaseResponse):
    """A complete response. Never raised: network errors give status 0 and `error`."""

    __slots__ = ("_text", "body")

    def __init__(
        self, method: str, url: str, status: int, raw_headers: list[tuple[bytes, bytes]],
        body: bytes, timings: Timings, error: str, error_code: int, request_start: float,
        wire: bytes,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self._raw_headers = raw_headers
        self._headers: Headers | None = None
        self.body = body
        self.timings = timings
        self.error = error
        self.error_code = error_code
        self.request_start = request_start
        self._req_headers = wire
        self._text: str | None = None

    @property
    def text(self) -> str:
        t = self._text
        if t is None:
            t = self._text = self.body.decode("utf-8", "replace")
        return t

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError on invalid JSON, like requests)."""
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        err = f" error={self.error!r}" if self.error else ""
        return f"<Response [{self.status}] {mask_url(self.url)}{err}>"


class StreamResponse(_BaseResponse):
    """A response returned as soon as its headers arrive; the body is read as it comes.

    Iterate with `iter_chunks()` ((bytes, arrival perf_counter) pairs), `sse()`
    (server-sent events), or `await read()`. The request's metrics are recorded when
    the body ends, or when the stream breaks (then `error` is set and iteration ends
    quietly). `async with` closes the stream early if the body was not read to the end.
    """

    __slots__ = ("_ex", "_finalize", "_reading", "headers_at")

    def __init__(
        self, method: str, url: str, ex: Exchange, request_start: float, wire: bytes,
    ) -> None:
        self.method = method
        self.url = url
        self._ex = ex
        self.status = ex.status
        self._raw_headers = ex.raw_headers
        self._headers = None
        self.error = ex.error
        self.error_code = ex.error_code
        self.request_start = request_start
        self.headers_at = ex.t_headers
        self._req_headers = wire
        self._finalize: Any = None
        self._reading = False  # a reader is between its first chunk and the end
        self.timings = Timings(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def done(self) -> bool:
        """True once the body has ended (completely or with an error)."""
        return self._ex.complete

    @property
    def ended_at(self) -> float | None:
        """The perf_counter of the read that brought the body's last bytes (or of the
        last read before it broke off), None while it goes on: the end of the stream
        as the network delivered it, whatever our parsing of it cost afterwards."""
        ex = self._ex
        if not ex.complete or not ex.t_last:
            return None
        return ex.t_last

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, float]]:
        """Body chunks as they arrive (decoded, for gzip and deflate), each with the
        perf_counter of its arrival."""
        ex = self._ex
        chunks, times = ex.chunks, ex.times
        loop = asyncio.get_running_loop()
        # While a reader is at it, the request is measured when the reader reaches the
        # end, not when the last byte arrives: a limit the reader finds (SSE event size
        # and count) still fails the request in http_req_failed.
        self._reading = True
        try:
            while True:
                while chunks:
                    data = chunks.popleft()
                    ex.buffered -= len(data) + PIECE_COST
                    yield data, times.popleft()
                if ex.complete:
                    break
                conn = ex.conn
                if conn is not None and conn.paused and ex.buffered < STREAM_LOW_WATER:
                    conn.resume_stream()
                w = ex.waiter = loop.create_future()
                try:
                    await w
                except asyncio.CancelledError:
                    # The VU is being stopped: drop the stream, do not measure it.
                    ex.cancelled = True
                    if ex.conn is not None:
                        ex.conn.fail(0, "")
                    raise
        finally:
            self._reading = False
            if ex.complete:
                self._settle()

    async def consume(self, sink: Callable[[bytes, float], None] | PieceSink) -> None:
        """Hand every body piece (decoded, for gzip and deflate) and the perf_counter of
        its arrival to `sink` (a function `sink(data, t)`, or a PieceSink: its `take`),
        then return at the end of the body.

        Pieces that came before the call are handed over at once; later ones once per
        event-loop pass, after every read of that pass has been stamped, by a plain
        callback: no future and no task wake-up per read (what makes `iter_chunks` cost
        more per event). So `sink` must be quick and must not block; it may call
        `fail()` to end the body. An exception it raises fails the request and is
        raised here.
        """
        ex = self._ex
        self._reading = True  # measured when this returns (see iter_chunks)
        try:
            loop = asyncio.get_running_loop()
            ex.sink, ex.sink_batch = piece_sink(sink), sink_batch(loop)
            drain_sink(ex)  # what came before this call
            while not ex.complete:
                w = ex.waiter = loop.create_future()
                try:
                    await w
                except asyncio.CancelledError:
                    ex.cancelled = True  # the VU is being stopped: not measured
                    if ex.conn is not None:
                        ex.conn.fail(0, "")
                    raise
            if ex.sink_error is None:  # what the last pass brought, if not drained yet
                drain_sink(ex)
        finally:
            ex.sink = None
            self._reading = False
            if ex.complete:
                self._settle()
        if ex.sink_error is not None:
            raise ex.sink_error

    def sse_parser(self) -> SSEParser:
        """An event parser held to this request's SSE limits."""
        lim = self._ex.limits
        return SSEParser(lim.max_sse_event_size, lim.max_stream_events)

    async def sse(self) -> AsyncIterator[SSEEvent]:
        """Server-sent events as they arrive, each with its arrival perf_counter. An
        event or a stream past its limit ends the iteration and fails the request."""
        parser = self.sse_parser()
        feed = parser.feed
        t = 0.0
        try:
            async for data, t in self.iter_chunks():
                for ev in feed(data, t):
                    yield ev
            for ev in parser.end(t):
                yield ev
        except SSELimitError as exc:
            self.fail(exc.code, str(exc))
            for ev in exc.events:  # those still within the limit
                yield ev

    def fail(self, error_code: int, error: str) -> None:
        """End the body here as a failed request (`error`, `error_code`), dropping what
        is buffered: for a limit found while reading it."""
        ex = self._ex
        if not ex.complete:
            if ex.conn is not None:
                ex.conn.fail(error_code, error)
        elif not ex.error:  # the body had all come; the request is not yet measured
            ex.error, ex.error_code = error, error_code
        ex.drop_pieces()
        if self._finalize is None and not self.error:  # measured already: the response
            self.error, self.error_code = error, error_code  # still tells
        self._settle()

    async def read(self) -> bytes:
        """The rest of the body."""
        parts = [data async for data, _ in self.iter_chunks()]
        return b"".join(parts)

    async def json(self) -> Any:
        return orjson.loads(await self.read())

    def _settle(self) -> None:
        """Run the end-of-body bookkeeping (metrics, timings, pool) once."""
        f = self._finalize
        if f is not None:
            self._finalize = None
            f()

    def _body_ended(self) -> None:
        """The transport saw the end of the body: measure now, unless a reader is
        still on it (it settles when it reaches the end)."""
        if not self._reading:
            self._settle()

    async def aclose(self) -> None:
        """Stop reading; an unfinished body's connection is closed (not reused)."""
        ex = self._ex
        if not ex.complete:
            ex.user_closed = True
            conn = ex.conn
            if conn is not None:
                conn.fail(0, "")
        self._settle()

    async def __aenter__(self) -> StreamResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        err = f" error={self.error!r}" if self.error else ""
        return f"<StreamResponse [{self.status}] {mask_url(self.url)}{err}>"

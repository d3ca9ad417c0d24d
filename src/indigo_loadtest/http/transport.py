"""A lean HTTP/1.1 client transport: asyncio Protocols + httptools (llhttp), on uvloop.

Why hand-written: the HTTP client is the generator's hot path, and a load generator
must never be the bottleneck. On this machine (one core) aiohttp's client does about
14k requests/s, while a bare asyncio Protocol with the llhttp parser on uvloop does
about 114k. The difference is the per-request machinery (streams, tasks, header
multidicts, tracing hooks) that a load generator does not need. This module keeps
only what a request needs: one write, a C parser driven from `data_received`, a few
timestamps, and one future per request. No task, no stream reader, no header
object unless the scenario asks for it.

One `Connection` is one TCP (or TLS) connection; it runs one `Exchange` (request and
response) at a time. The per-VU connection pool lives in `client.py`.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import threading
import zlib
from collections import deque
from time import perf_counter
from typing import Any

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

try:
    import cython
except ImportError:  # no Cython: the module runs as Python (as it does uncompiled)
    from .. import _cython_shim as cython

from .decode import incremental_decoder
from .limits import (
    DEFAULT_LIMITS,
    ERR_BODY_TOO_LARGE,
    ERR_DECODED_BODY_TOO_LARGE,
    ERR_DECOMPRESSION,
    ERR_HEADER_LINE_TOO_LARGE,
    ERR_TOO_MANY_HEADERS,
    Limits,
    limit_message,
)

# k6's error codes (https://grafana.com/docs/k6/latest/javascript-api/error-codes/).
ERR_GENERIC = 1000
ERR_REQUEST_TIMEOUT = 1050
ERR_DNS = 1100
ERR_DNS_NO_IP = 1101
ERR_TCP_WRITE_BROKEN_PIPE = 1201
ERR_TCP_WRITE = 1202
ERR_DIAL = 1210
ERR_DIAL_TIMEOUT = 1211
ERR_DIAL_REFUSED = 1212
ERR_TCP_RESET = 1220
ERR_TLS = 1300
ERR_TLS_UNKNOWN_AUTHORITY = 1310
ERR_TLS_HOSTNAME = 1311

# A stream whose reader falls this far behind stops reading from the socket.
STREAM_HIGH_WATER = 1 << 20
STREAM_LOW_WATER = 1 << 18
# What holding one received piece of a body costs besides its bytes (object headers, a
# list slot): a body piece counts at least this much against maxResponseBodySize, and
# a streamed piece this much more against the high water mark, so a server that sends
# one-byte chunks cannot take more memory than the limits say.
PIECE_COST = 64

_EMPTY = b""
NO_DEADLINE = float("inf")
SINK_FAILED = "stream reader failed"


class Exchange:
    """One request/response on a connection: its raw result and timestamps."""

    __slots__ = (
        "body_size", "buffered", "cancelled", "chunks", "complete", "conn", "content_encoding",
        "deadline", "decoded", "decoder", "discard", "error", "error_code", "framed", "fut",
        "head", "headers_done", "headers_fut", "informational", "limits", "line", "location",
        "nbytes", "raw_headers", "set_cookies", "sink", "sink_batch", "sink_due", "sink_error",
        "status", "stream", "t_data", "t_first", "t_headers", "t_last", "times", "user_closed",
        "waiter",
    )

    def __init__(self, fut: asyncio.Future, head: bool, stream: bool, discard: bool,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.fut = fut
        self.limits = limits
        self.body_size = 0  # body bytes received (each piece at least PIECE_COST)
        self.line = 0  # bytes of the head's unfinished line, while the head is read
        self.decoder: Any = None  # a streamed gzip/deflate body is decoded as it comes
        self.decoded = 0
        self.head = head
        self.stream = stream
        self.discard = discard
        self.headers_fut: asyncio.Future | None = None
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.chunks: Any = deque() if stream else []
        # A streamed piece's arrival time, in step with `chunks`: two deques rather than
        # a (piece, time) tuple per read (fewer objects for the garbage collector).
        self.times: deque[float] | None = deque() if stream else None
        self.set_cookies: list[bytes] | None = None
        self.content_encoding: bytes | None = None
        self.location: bytes | None = None
        self.error = ""
        self.error_code = 0
        self.nbytes = 0
        self.t_first = 0.0
        self.t_data = 0.0
        self.t_last = 0.0
        self.t_headers = 0.0
        self.cancelled = False
        self.buffered = 0
        self.complete = False
        self.headers_done = False
        self.informational = False
        self.framed = False  # Content-Length or Transfer-Encoding seen
        self.user_closed = False
        self.waiter: asyncio.Future | None = None
        # A streamed body's consumer (StreamResponse.consume), a PieceSink: handed the
        # queued (piece, arrival time) pairs once per loop pass, after every read of that
        # pass is stamped; None: a reader task is woken per piece instead.
        self.sink: PieceSink | None = None
        self.sink_batch: SinkBatch | None = None
        self.sink_due = False  # queued in sink_batch for this loop pass
        self.sink_error: BaseException | None = None
        self.deadline = NO_DEADLINE  # loop time at which the exchange times out
        self.conn: Connection | None = None

    def drop_pieces(self) -> None:
        """Drop the received pieces not yet read."""
        self.chunks.clear()
        if self.times is not None:
            self.times.clear()
        self.buffered = 0

    def wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection driving the llhttp parser from data_received."""

    __slots__ = (
        "closed",
        "ex",
        "keep_alive",
        "key",
        "lost_cb",
        "parser",
        "paused",
        "timer",
        "timer_at",
        "transport",
        "used",
    )

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.transport: Any = None
        self.parser = HttpResponseParser(self)
        self.ex: Exchange | None = None
        self.closed = False
        self.keep_alive = True
        self.used = False  # has carried a request already (reused connection)
        self.paused = False
        self.lost_cb: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = NO_DEADLINE

    # --- asyncio.Protocol ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    @cython.locals(ex=Exchange)
    def data_received(self, data: bytes) -> None:
        t = perf_counter()
        ex = self.ex
        if ex is None:  # bytes on an idle connection: the server is out of step
            self.keep_alive = False
            self.transport.close()
            return
        if not ex.t_first:
            ex.t_first = t
        ex.t_data = t
        ex.nbytes += len(data)
        if ex.nbytes > ex.limits.max_wire_size:
            self.fail_limit(ERR_BODY_TOO_LARGE, ex.limits.max_response_body_size)
            return
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            self.fail(ERR_GENERIC, "unsupported protocol upgrade")
        except HttpParserError as exc:
            self.fail(ERR_GENERIC, f"malformed HTTP response: {_parser_reason(exc)}")
        if not ex.headers_done and self.ex is ex:
            self._check_partial_head(ex, data)
        if ex.head and ex.complete:
            # llhttp would wait for the body that Content-Length announces; a HEAD
            # response has none, so its parser is replaced.
            self.parser = HttpResponseParser(self)

    def eof_received(self) -> bool:
        return False  # close; connection_lost decides what the EOF means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.keep_alive = False
        ex = self.ex
        if ex is not None:
            if ex.headers_done and not ex.framed and not ex.informational:
                # No Content-Length nor chunked: the body ends with the connection.
                self.on_message_complete()
            elif exc is None:
                self.fail(ERR_GENERIC, "unexpected EOF" if ex.nbytes else "EOF")
            else:
                code, msg = classify_os_error(exc, during_dial=False)
                self.fail(code, msg)
        cb = self.lost_cb
        if cb is not None:
            self.lost_cb = None
            cb(self)

    def pause_writing(self) -> None:  # large request bodies: the kernel buffers them
        pass

    def resume_writing(self) -> None:
        pass

    # --- llhttp callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        ex = self.ex
        if ex is not None and ex.informational:  # a 1xx before the final response
            ex.informational = False
            ex.raw_headers = []
            ex.set_cookies = ex.content_encoding = ex.location = None

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.ex
        ex.raw_headers.append((name, value))  # type: ignore[union-attr]
        # Length checks first: most headers are skipped without lower-casing.
        n = len(name)
        if n == 10 and name.lower() == b"set-cookie":
            if ex.set_cookies is None:  # type: ignore[union-attr]
                ex.set_cookies = []  # type: ignore[union-attr]
            ex.set_cookies.append(value)  # type: ignore[union-attr]
        elif (n == 14 and name.lower() == b"content-length") or (
                n == 17 and name.lower() == b"transfer-encoding"):
            ex.framed = True  # type: ignore[union-attr]
        elif n == 16 and name.lower() == b"content-encoding":
            ex.content_encoding = value.strip().lower()  # type: ignore[union-attr]
        elif n == 8 and name.lower() == b"location":
            ex.location = value  # type: ignore[union-attr]

    def on_headers_complete(self) -> None:
        ex = self.ex
        if ex is None:
            return
        lim = ex.limits
        # The head may have come in one read: check its lines only when its size (an
        # upper bound: the read may hold body bytes too) could hide a long one.
        if ((len(ex.raw_headers) > lim.max_header_count or ex.nbytes > lim.max_header_line_size)
                and self._head_over_limit(ex)):
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            ex.informational = True
            return
        ex.status = status
        ex.headers_done = True
        ex.t_headers = ex.t_data
        if status == 204 or status == 304 or status < 200:
            ex.framed = True  # never a body, whatever the headers say
        elif ex.stream and ex.content_encoding:
            ex.decoder = incremental_decoder(ex.content_encoding)
        if ex.headers_fut is not None and not ex.headers_fut.done():
            ex.headers_fut.set_result(None)
        if ex.head:
            ex.framed = True
            self.on_message_complete()

    @cython.locals(ex=Exchange, due=list)
    def on_body(self, body: bytes) -> None:
        ex = self.ex
        if ex is None:
            return
        n = len(body)
        size = ex.body_size = ex.body_size + (n if n > PIECE_COST else PIECE_COST)
        if size > ex.limits.max_response_body_size:
            self.fail_limit(ERR_BODY_TOO_LARGE, ex.limits.max_response_body_size)
            return
        if ex.discard:
            return
        if ex.stream:
            if ex.decoder is not None:
                body = self._decode_piece(ex, body)
                if not body:
                    return
            ex.chunks.append(body)
            ex.times.append(ex.t_data)  # type: ignore[union-attr]
            ex.buffered += len(body) + PIECE_COST
            if ex.buffered > STREAM_HIGH_WATER and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            if ex.sink is None:
                ex.wake()
            elif not ex.sink_due:
                # Drained after this pass's other reads, so parsing never delays their
                # stamps: no future, no task step, one loop callback for all streams.
                ex.sink_due = True
                batch = ex.sink_batch
                due = batch.due  # type: ignore[union-attr]
                due.append(ex)  # SinkBatch.add, inline: this runs once per read
                if len(due) == 1:
                    batch.loop.call_soon(batch.run)  # type: ignore[union-attr]
        else:
            ex.chunks.append(body)

    def on_message_complete(self) -> None:
        ex = self.ex
        if ex is None or ex.informational:
            return
        if ex.decoder is not None and ex.body_size and not ex.decoder.eof:
            self.fail(ERR_DECOMPRESSION, _decode_error(ex))  # the encoded body was cut
            return
        ex.t_last = ex.t_data
        ex.complete = True
        self.ex = None
        if not self.closed:
            self.keep_alive = self.parser.should_keep_alive()
        fut = ex.fut
        if not fut.done():
            fut.set_result(None)
        if ex.stream:
            ex.wake()

    # --- driving an exchange -------------------------------------------------------
    def send(self, ex: Exchange, data: bytes) -> None:
        self.ex = ex
        ex.conn = self
        self.used = True
        self.transport.write(data)

    # --- limits -------------------------------------------------------------------------
    def _check_partial_head(self, ex: Exchange, data: bytes) -> None:
        """After a read that left the head unfinished: the line being received so far,
        and the header count (llhttp itself sets no limit on either)."""
        lim = ex.limits
        nl = data.rfind(b"\n")
        ex.line = ex.line + len(data) if nl < 0 else len(data) - nl - 1
        if ex.line > lim.max_header_line_size:
            self.fail_limit(ERR_HEADER_LINE_TOO_LARGE, lim.max_header_line_size)
        elif len(ex.raw_headers) > lim.max_header_count:
            self.fail_limit(ERR_TOO_MANY_HEADERS, lim.max_header_count)

    def _head_over_limit(self, ex: Exchange) -> bool:
        lim = ex.limits
        if len(ex.raw_headers) > lim.max_header_count:
            self.fail_limit(ERR_TOO_MANY_HEADERS, lim.max_header_count)
            return True
        longest = max((len(k) + len(v) for k, v in ex.raw_headers), default=0)
        if longest > lim.max_header_line_size:
            self.fail_limit(ERR_HEADER_LINE_TOO_LARGE, lim.max_header_line_size)
            return True
        return False

    def _decode_piece(self, ex: Exchange, body: bytes) -> bytes:
        """One piece of a streamed gzip/deflate body, decoded, never past the limit."""
        limit = ex.limits.max_response_body_size
        try:
            out = ex.decoder.decompress(body, limit - ex.decoded + 1)
        except zlib.error:
            self.fail(ERR_DECOMPRESSION, _decode_error(ex))
            return _EMPTY
        ex.decoded += len(out)
        if ex.decoded > limit:
            self.fail_limit(ERR_DECODED_BODY_TOO_LARGE, limit)
            return _EMPTY
        return out

    def fail_limit(self, code: int, limit: int) -> None:
        """Fail the running exchange for crossing a limit, dropping what it held."""
        ex = self.ex
        self.fail(code, limit_message(code, limit))
        if ex is not None:
            ex.drop_pieces()
            ex.decoder = None
            if code in (ERR_HEADER_LINE_TOO_LARGE, ERR_TOO_MANY_HEADERS):
                ex.raw_headers = []

    def resume_stream(self) -> None:
        if self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def fail(self, code: int, message: str) -> None:
        """End the running exchange with an error and drop the connection."""
        ex = self.ex
        self.ex = None
        self.keep_alive = False
        if ex is not None and not ex.complete:
            ex.error_code = code
            ex.error = message
            ex.t_last = ex.t_data or perf_counter()
            ex.complete = True
            hf = ex.headers_fut
            if hf is not None and not hf.done():
                hf.set_result(None)
            if not ex.fut.done():
                ex.fut.set_result(None)
            ex.wake()
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def arm(self, ex: Exchange, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        """Time `ex` out at `deadline`. One timer per connection, moved only when it
        fires or a deadline comes earlier: arming and cancelling a timer per request
        costs 2 µs on uvloop, some 8% of a keep-alive GET."""
        ex.deadline = deadline
        if deadline < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = deadline
            self.timer = loop.call_at(deadline, self.on_timer, loop)

    def on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer, self.timer_at = None, NO_DEADLINE
        ex = self.ex
        if ex is None or ex.deadline == NO_DEADLINE or self.closed:
            return
        if loop.time() >= ex.deadline:
            self.fail(ERR_REQUEST_TIMEOUT, "request timeout")
        else:  # the exchange that armed the timer is gone; this one ends later
            self.arm(ex, ex.deadline, loop)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.keep_alive = False
        if not self.closed:
            self.closed = True
            self.transport.close()


class SinkBatch:
    """The consumed streams that received pieces in this event-loop pass, drained by one
    loop callback after the pass's reads: with one event per read on thousands of
    streams, a callback per stream per pass (a loop handle each) cost about as much
    as the parsing it ran."""

    __slots__ = ("due", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: list[Exchange] = []

    def add(self, ex: Exchange) -> None:
        due = self.due
        due.append(ex)
        if len(due) == 1:
            self.loop.call_soon(self.run)

    @cython.locals(ex=Exchange)
    def run(self) -> None:
        due, self.due = self.due, []
        for ex in due:
            drain_sink(ex)


_batches = threading.local()  # each thread's loop has its own SinkBatch


def sink_batch(loop: asyncio.AbstractEventLoop) -> SinkBatch:
    """The SinkBatch of `loop` (the running thread's)."""
    batch = getattr(_batches, "batch", None)
    if batch is None or batch.loop is not loop:
        batch = _batches.batch = SinkBatch(loop)
    return batch


class PieceSink:
    """The consumer of a streamed body's pieces (`StreamResponse.consume`): `take` is
    called with each piece and its arrival time, a C call per piece in the compiled
    build (the LLM meter's sink is one: llm/stream_metrics.EventSink)."""

    __slots__ = ()

    def take(self, data: bytes, t: float) -> None:
        raise NotImplementedError


class CallableSink(PieceSink):
    """A plain function `sink(data, t)` given to `consume`, as a PieceSink."""

    __slots__ = ("func",)

    def __init__(self, func: Any) -> None:
        self.func = func

    def take(self, data: bytes, t: float) -> None:
        self.func(data, t)


def piece_sink(sink: Any) -> PieceSink:
    """`sink` as the transport calls it: a PieceSink as it is, a function wrapped."""
    return sink if isinstance(sink, PieceSink) else CallableSink(sink)


@cython.locals(ex=Exchange, sink=PieceSink)
def drain_sink(ex: Exchange) -> None:
    """Hand the queued pieces of a consumed stream to its sink. A sink that raises fails
    its request (the error is raised again to the consumer)."""
    ex.sink_due = False
    sink = ex.sink
    if sink is None:  # the consumer has gone (cancelled); it drains nothing more
        return
    chunks, times = ex.chunks, ex.times
    try:
        while chunks:
            data = chunks.popleft()
            ex.buffered -= len(data) + PIECE_COST
            sink.take(data, times.popleft())
    except Exception as exc:  # the consumer's fault, not the server's
        ex.sink_error = exc
        ex.drop_pieces()
        conn = ex.conn
        if not ex.complete and conn is not None and conn.ex is ex:
            conn.fail(ERR_GENERIC, SINK_FAILED)
        elif not ex.error:  # the body had all come; the request is not yet measured
            ex.error, ex.error_code = SINK_FAILED, ERR_GENERIC
        return
    conn = ex.conn
    if conn is not None and conn.paused and ex.buffered < STREAM_LOW_WATER:
        conn.resume_stream()


def _decode_error(ex: Exchange) -> str:
    encoding = (ex.content_encoding or b"").decode("latin-1")
    return f"failed to decode response body ({encoding})"


def _parser_reason(exc: Exception) -> str:
    msg = str(exc) or type(exc).__name__
    return msg[:120]


def classify_os_error(exc: BaseException, during_dial: bool) -> tuple[int, str]:
    """k6's error code and a short message for a network exception."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return ERR_TLS_HOSTNAME, "tls: certificate is not valid for this host"
        if exc.verify_code in (18, 19, 20, 21):  # self-signed / unknown issuer
            return ERR_TLS_UNKNOWN_AUTHORITY, "tls: certificate signed by unknown authority"
        return ERR_TLS, f"tls: {exc.verify_message or 'certificate verify failed'}"
    if isinstance(exc, ssl.SSLError):
        return ERR_TLS, f"tls: {exc.reason or 'handshake failed'}".lower()
    if isinstance(exc, TimeoutError):
        return (ERR_DIAL_TIMEOUT, "dial: i/o timeout") if during_dial else (
            ERR_REQUEST_TIMEOUT, "request timeout")
    if isinstance(exc, ConnectionRefusedError):
        return ERR_DIAL_REFUSED, "dial: connection refused"
    if isinstance(exc, ConnectionResetError):
        return ERR_TCP_RESET, "read: connection reset by peer"
    if isinstance(exc, BrokenPipeError):
        return ERR_TCP_WRITE_BROKEN_PIPE, "write: broken pipe"
    if isinstance(exc, OSError):
        if exc.errno == errno.ECONNREFUSED:
            return ERR_DIAL_REFUSED, "dial: connection refused"
        if during_dial:
            return ERR_DIAL, f"dial: {exc.strerror or type(exc).__name__}".lower()
        return ERR_GENERIC, (exc.strerror or type(exc).__name__).lower()
    return ERR_GENERIC, type(exc).__name__


def ssl_context(insecure: bool, cafile: str | None) -> ssl.SSLContext:
    """A client TLS context; with `insecure`, certificates and host names are not checked."""
    ctx = ssl.create_default_context(cafile=cafile)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx

"""Server-sent events (WHATWG HTML "event stream" parsing), with arrival times.

Speed matters here: a streaming load test parses every token event of thousands of
streams. Instead of reading line by line, each received chunk is split on blank
lines (C-speed `split`) after one UTF-8 decode of all the complete events, and the
common event, a single `data:` line, takes a fast path with no per-line Python work.
Line endings are normalised to LF only when a chunk contains a CR at all.

An event's `t` is the `time.perf_counter()` at which the bytes that completed it
(its terminating blank line) arrived from the socket, not when it was parsed.

An unfinished event is kept as a list of its pieces, and only each new chunk is
searched for the blank line: an event that never ends costs linear time, and it is
cut at `max_event_size` bytes (SSELimitError), as a stream is at `max_events` events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import orjson

from .limits import (
    DEFAULT_LIMITS,
    ERR_SSE_EVENT_TOO_LARGE,
    ERR_TOO_MANY_STREAM_EVENTS,
    limit_message,
)

_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """One dispatched event: type (default "message"), data, last event id, arrival time."""

    event: str
    data: str
    id: str
    t: float

    def json(self) -> Any:
        """`data` parsed as JSON (raises ValueError if it is not JSON)."""
        return orjson.loads(self.data)


# Events are built with the C-level tuple constructor: no Python frame per event.
_new_event = tuple.__new__


class SSELimitError(ValueError):
    """An event or a stream crossed its limit; `code` is the request's error_code and
    `events` the events of the last chunk that were still within the limit."""

    def __init__(self, code: int, limit: int, events: list[SSEEvent] | None = None) -> None:
        super().__init__(limit_message(code, limit))
        self.code = code
        self.events = events or []


class SSEParser:
    """Incremental event-stream parser: `feed(chunk, t)` returns the completed events.

    Raises SSELimitError when an event grows past `max_event_size` bytes or the stream
    past `max_events` events (checked once per chunk).
    """

    __slots__ = ("_count", "_cr", "_held", "_pending", "_started", "last_id",
                 "max_event_size", "max_events", "retry")

    def __init__(self, max_event_size: int = DEFAULT_LIMITS.max_sse_event_size,
                 max_events: int = DEFAULT_LIMITS.max_stream_events) -> None:
        self._pending: list[bytes] = []  # the unfinished event's pieces (never a blank line)
        self._held = 0  # their total size
        self._count = 0  # events dispatched
        self._cr = False  # the previous chunk ended with CR (maybe half of a CRLF)
        self._started = False
        self.max_event_size = max_event_size
        self.max_events = max_events
        self.last_id = ""
        self.retry: int | None = None  # the last `retry:` value, in ms

    def single_data(self, chunk: bytes) -> bytes | None:
        """If `chunk` is exactly one whole one-line `data: ` event and nothing is held
        from before (a real LLM server sends each token this way): that event, counted
        as dispatched, as its raw data bytes (undecoded; type "message", id `last_id`).
        Otherwise None, and nothing changes: `feed` the chunk."""
        if type(chunk) is not bytes:  # (a bytearray, say: `feed`'s general path)
            return None
        data = chunk  # known to be bytes: the compiled build's string operations are C calls
        if (not self._pending and data.startswith(b"data: ") and self._started
                and data.find(b"\n") == len(data) - 2 and data[-1] == 10
                and not self._cr and 13 not in data  # CR: an int test is a plain memchr
                and len(data) <= self.max_event_size):
            self._count = count = self._count + 1
            if count > self.max_events:
                raise SSELimitError(ERR_TOO_MANY_STREAM_EVENTS, self.max_events)
            return data[6:-2]
        return None

    def feed(self, chunk: bytes, t: float) -> list[SSEEvent]:
        data = self.single_data(chunk)
        if data is not None:
            return [_new_event(SSEEvent, ("message", data.decode("utf-8", "replace"),
                                          self.last_id, t))]
        if self._cr:
            chunk = b"\r" + chunk
            self._cr = False
        if b"\r" in chunk:
            if chunk[-1] == 13:  # wait: the next chunk may start with the LF of a CRLF
                chunk = chunk[:-1]
                self._cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not self._started:
            if self._held:
                chunk = self._take() + chunk
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._hold(chunk)
                return []
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        pending = self._pending
        end = chunk.rfind(b"\n\n")
        if end < 0:
            if not (pending and chunk[:1] == b"\n" and pending[-1][-1:] == b"\n"):
                self._hold(chunk)
                return []
            end = -1  # the blank line is the held event's last LF and this chunk's first
        if pending:
            end += self._held
            chunk = self._take() + chunk
        rest = chunk[end + 2:]
        if rest:
            self._hold(rest)
        if end > self.max_event_size:
            self._check_sizes(chunk[:end])
        # Complete events end on a line break, so this never splits a UTF-8 character:
        # one decode for all of them, then str operations only.
        text = chunk[:end].decode("utf-8", "replace")
        out = []
        append = out.append
        for block in text.split("\n\n"):
            # Fast path: one "data: " line (the usual LLM token event).
            if block.startswith("data: ") and "\n" not in block:
                append(_new_event(SSEEvent, ("message", block[6:], self.last_id, t)))
                continue
            ev = self._parse_block(block, t)
            if ev is not None:
                append(ev)
        self._count += len(out)
        if self._count > self.max_events:
            within = out[:len(out) - (self._count - self.max_events)]
            raise SSELimitError(ERR_TOO_MANY_STREAM_EVENTS, self.max_events, within)
        return out

    def _hold(self, data: bytes) -> None:
        if data:
            self._pending.append(data)
            self._held += len(data)
            if self._held > self.max_event_size:
                self._take()  # drop it: the stream is failed
                raise SSELimitError(ERR_SSE_EVENT_TOO_LARGE, self.max_event_size)

    def _take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        self._held = 0
        return data

    def _check_sizes(self, complete: bytes) -> None:
        """Events that came whole in one chunk (rare: only a chunk larger than the
        limit can hold one too large)."""
        if any(len(block) > self.max_event_size for block in complete.split(b"\n\n")):
            raise SSELimitError(ERR_SSE_EVENT_TOO_LARGE, self.max_event_size)

    def end(self, t: float) -> list[SSEEvent]:
        """Events completed by a CR that was the stream's last byte."""
        if not self._cr:
            return []
        self._cr = False
        return self.feed(b"\n", t)

    def _parse_block(self, block: str, t: float) -> SSEEvent | None:
        data: list[str] = []
        event = ""
        for line in block.split("\n"):
            if not line or line[0] == ":":  # blank (leading) line or comment
                continue
            name, sep, value = line.partition(":")
            if sep and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                if "\0" not in value:
                    self.last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self.retry = int(value)
        if not data:
            return None  # comments / id / retry only: nothing to dispatch
        return _new_event(SSEEvent, (event or "message", "\n".join(data), self.last_id, t))


async def iter_sse(
    chunks: AsyncIterator[tuple[bytes, float]], parser: SSEParser | None = None,
) -> AsyncIterator[SSEEvent]:
    """Events from (bytes, arrival time) chunks, as each one completes."""
    parser = parser or SSEParser()
    feed = parser.feed
    t = 0.0
    async for data, t in chunks:
        for ev in feed(data, t):
            yield ev
    for ev in parser.end(t):
        yield ev

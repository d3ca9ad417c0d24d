"""Limits that bound what one response can take from the generator (memory and time).

A load generator talks to servers under test, which may be broken or hostile: an
endless body, a decompression bomb, millions of headers, an event that never ends.
Each limit below fails only the request that crosses it (status 0 or its status, an
`error` and `error_code` tag, counted in `http_req_failed`), frees what it held, and
the test goes on. Defaults are generous for real APIs; a test sets its own in its
options (camelCase as k6 names options, or snake_case), one request with
`client.request(..., limits={...})`. docs/guarantees.md lists them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

# k6's codes (https://grafana.com/docs/k6/latest/javascript-api/error-codes/).
ERR_INVALID_URL = 1020
ERR_DECOMPRESSION = 1701
# Ours, next to k6's decompression error: a limit of this module was crossed.
ERR_BODY_TOO_LARGE = 1710
ERR_DECODED_BODY_TOO_LARGE = 1711
ERR_HEADER_LINE_TOO_LARGE = 1712
ERR_TOO_MANY_HEADERS = 1713
ERR_SSE_EVENT_TOO_LARGE = 1714
ERR_TOO_MANY_STREAM_EVENTS = 1715
LIMIT_ERROR_CODES = frozenset({
    ERR_BODY_TOO_LARGE, ERR_DECODED_BODY_TOO_LARGE, ERR_HEADER_LINE_TOO_LARGE,
    ERR_TOO_MANY_HEADERS, ERR_SSE_EVENT_TOO_LARGE, ERR_TOO_MANY_STREAM_EVENTS,
})

# The option name (k6 style) of each field, for options, the per-request keyword and
# the error messages.
OPTION_NAMES = {
    "max_response_body_size": "maxResponseBodySize",
    "max_header_line_size": "maxHeaderLineSize",
    "max_header_count": "maxHeaderCount",
    "max_sse_event_size": "maxSSEEventSize",
    "max_stream_events": "maxStreamEvents",
}
_SIZES = frozenset({"max_response_body_size", "max_header_line_size", "max_sse_event_size"})
_BY_NAME = {**{v: k for k, v in OPTION_NAMES.items()}, **{k: k for k in OPTION_NAMES},
            "maxSseEventSize": "max_sse_event_size"}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
          "gb": 1000**3, "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2,
          "gi": 1024**3, "gib": 1024**3}


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one response is held to. Sizes are bytes."""

    # The body as received (after de-chunking) and again after Content-Encoding
    # decoding: bounds an endless body, a huge Content-Length and a decompression bomb.
    max_response_body_size: int = 64 << 20
    # One status or header line (name and value); and the number of header lines.
    max_header_line_size: int = 64 << 10
    max_header_count: int = 1000
    # One server-sent event (its bytes up to the blank line that ends it), and the
    # events of one stream: with the default 60 s request timeout, 100k events means
    # over 1,600 events/s, far beyond a real token stream.
    max_sse_event_size: int = 16 << 20
    max_stream_events: int = 100_000
    # Derived: the bytes a whole response may take on the wire (head, body, chunk
    # framing, trailers), checked once per read. Generous (twice the body, plus the
    # largest head), so only what no other limit sees trips it: endless trailers.
    max_wire_size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name, None) if f.init else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{OPTION_NAMES[f.name]} must be a positive whole number, "
                                 f"got {value!r}")
        object.__setattr__(self, "max_wire_size", 2 * self.max_response_body_size
                           + self.max_header_count * self.max_header_line_size)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Limits:
        """From a scenario's options (snake_case keys, as `TestPlan.extra` holds them)."""
        return DEFAULT_LIMITS.merged({k: v for k, v in options.items() if k in OPTION_NAMES})

    def merged(self, overrides: Mapping[str, Any] | Limits | None) -> Limits:
        """These limits with `overrides` (option names, camelCase or snake_case)."""
        if overrides is None:
            return self
        if isinstance(overrides, Limits):
            return overrides
        if not isinstance(overrides, Mapping):
            raise TypeError(f"limits must be a dict of limit options, not "
                            f"{type(overrides).__name__}")
        changes: dict[str, int] = {}
        for key, value in overrides.items():
            name = _BY_NAME.get(key) if isinstance(key, str) else None
            if name is None:
                known = ", ".join(OPTION_NAMES.values())
                raise ValueError(f"unknown limit {key!r} (one of: {known})")
            if value is not None:
                changes[name] = (parse_size(value, OPTION_NAMES[name]) if name in _SIZES
                                 else parse_count(value, OPTION_NAMES[name]))
        return replace(self, **changes) if changes else self


def parse_size(value: Any, name: str) -> int:
    """Bytes from a number or a size string: "512kB", "64MB" (powers of 1000), "64MiB"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_count(value, name)
    m = _SIZE.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{name}: invalid size {value!r} (use bytes, or e.g. \"64MiB\", "
                         f"\"512kB\")")
    return parse_count(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()], name)


def parse_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a positive whole number, got {value!r}")
    if value != value or value < 1 or value == float("inf") or int(value) != value:
        raise ValueError(f"{name}: expected a positive whole number, got {value!r}")
    return int(value)


_MESSAGES = {
    ERR_BODY_TOO_LARGE: "response body larger than maxResponseBodySize ({} bytes)",
    ERR_DECODED_BODY_TOO_LARGE:
        "decompressed response body larger than maxResponseBodySize ({} bytes)",
    ERR_HEADER_LINE_TOO_LARGE: "response header line longer than maxHeaderLineSize ({} bytes)",
    ERR_TOO_MANY_HEADERS: "more response headers than maxHeaderCount ({})",
    ERR_SSE_EVENT_TOO_LARGE: "server-sent event larger than maxSSEEventSize ({} bytes)",
    ERR_TOO_MANY_STREAM_EVENTS: "more stream events than maxStreamEvents ({})",
}


def limit_message(code: int, limit: int) -> str:
    """The `error` of a request that crossed a limit: one text per limit and value, so
    the tag stays low-cardinality."""
    return _MESSAGES[code].format(limit)


DEFAULT_LIMITS = Limits()

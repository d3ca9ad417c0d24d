"""DEBUG / `--http-debug[=full]` output: every request and response, secrets masked.

It goes to stderr (the summary on stdout stays clean), or where `--log-output` says
(k6's flag): "stdout", "none" or a file, appended to (each worker process appends its
own lines). A streamed body is printed as it is read, chunk by chunk, so a stalled
stream shows where it stalled.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from .redact import mask_text
from .response import StreamResponse

DEBUG_BODY_LIMIT = 1024  # characters of a body (or a streamed chunk) shown

_files: dict[str, TextIO | None] = {}
_lock = threading.Lock()


def _stream(target: str) -> TextIO | None:
    if not target:
        return sys.stderr
    if target == "stdout":
        return sys.stdout
    if target == "none":
        return None
    with _lock:
        if target not in _files:
            try:  # checked before the run (k6compat.check_settings); the folders made here
                path = Path(target)
                path.parent.mkdir(parents=True, exist_ok=True)
                _files[target] = path.open("a", encoding="utf-8")
            except OSError:
                _files[target] = None  # a debug output that cannot be written is dropped
        return _files[target]


def debug_write(target: str, text: str) -> None:
    """Write one block of debug lines (already masked) to the run's debug output."""
    stream = _stream(target)
    if stream is None:
        return
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass  # a closed or full debug output must not end the test


def debug_body(body: bytes, limit: int = DEBUG_BODY_LIMIT) -> str:
    # Mask before truncating: a cut could leave half a token that no pattern matches.
    text = mask_text(body.decode("utf-8", "replace"))
    if len(text) > limit:
        return f"{text[:limit]}... ({len(body)} bytes)"
    return text


def chunk_lines(data: bytes) -> str:
    """A streamed chunk as `< ` lines (an SSE chunk: one line per field)."""
    text = debug_body(data)
    return "\n".join(f"< {line}" for line in text.splitlines() if line.strip())


class DebugStreamResponse(StreamResponse):
    """A StreamResponse that prints each body chunk as the reader gets it."""

    __slots__ = ("debug_target",)

    debug_target: str

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, float]]:
        async for data, t in super().iter_chunks():
            lines = chunk_lines(data)
            if lines:
                debug_write(self.debug_target, lines)
            yield data, t


def debug_stream_response(method: str, url: str, ex: Any, t0: float, wire: bytes,
                          target: str) -> DebugStreamResponse:
    resp = DebugStreamResponse(method, url, ex, t0, wire)
    resp.debug_target = target
    return resp

"""The simulator's defences against slow and greedy clients, as a real server has them.

- Header and idle timeout (`header_timeout_s`, aiohttp's keep-alive timer): a connection
  must deliver a whole request head within it, counted from its opening or from the
  end of its last response; bytes trickled in do not extend it (slowloris). Idle
  keep-alive connections are closed after it too (uvicorn, which vLLM runs on, closes
  them after 5 s; clients reconnect).
- Body timeout (`body_timeout_s`, `read_body` middleware): a request's body must arrive
  within it, else 408 and the connection is closed.
- A connection bound (`max_connections`, default from the file-descriptor limit, which
  is first raised to its hard maximum): at the bound, a new connection closes the
  oldest one that has no request being handled (idle, or still sending its head), so
  clients that hold half-sent requests cannot lock others out; when every connection
  is busy, the new one gets 503 and is closed. The descriptors never run out, so the
  listening socket keeps accepting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..platform_support import raise_fd_limit

# Descriptors kept for everything but client connections (the listening socket, the
# database, logs, the event loop's own).
RESERVED_FDS = 64
MIN_CONNECTIONS = 16
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
           b"Content-Length: 31\r\nConnection: close\r\n\r\nserver at its connection bound\n")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def connection_bound(configured: int) -> int:
    """`max_connections`, or (0) what the descriptor limit leaves for connections."""
    available = max(MIN_CONNECTIONS, raise_fd_limit() - RESERVED_FDS)
    return min(configured, available) if configured > 0 else available


class _Refused(asyncio.Protocol):
    """A connection beyond the bound while every other is busy: 503, closed."""

    def connection_made(self, transport: Any) -> None:
        transport.write(REFUSED)
        transport.close()


def _open(handler: Any) -> bool:
    """Not closed, nor closing (one closed stays listed until its task has ended)."""
    transport = handler.transport
    return transport is not None and not transport.is_closing()


class Connections:
    """The connection bound and the requests being handled (the `read_body` middleware
    marks them), shared by the app and the listening socket's protocol factory."""

    def __init__(self, body_timeout: float) -> None:
        self.body_timeout = body_timeout
        self.busy: set[Any] = set()  # the RequestHandlers of requests being handled
        self.limit = 0
        self.server: web.Server | None = None

    def factory(self, server: web.Server, limit: int) -> Callable[[], asyncio.BaseProtocol]:
        self.server, self.limit = server, limit
        return self._accept

    def _accept(self) -> asyncio.BaseProtocol:
        assert self.server is not None
        connections = self.server.connections  # oldest first; closing ones too
        if len(connections) >= self.limit:  # only then the O(n) look
            open_ = [h for h in connections if _open(h)]
            if len(open_) >= self.limit:
                victim = next((h for h in open_ if h not in self.busy), None)
                if victim is None:
                    return _Refused()
                victim.force_close()
        return self.server()

    @web.middleware
    async def read_body(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The request counts as busy while handled; its body is read within the body
        timeout (handlers then read it from memory)."""
        protocol = request.protocol
        self.busy.add(protocol)
        try:
            if request.can_read_body:
                try:
                    await asyncio.wait_for(request.read(), self.body_timeout)
                except TimeoutError:
                    return await _timed_out(request)
            return await handler(request)
        finally:
            self.busy.discard(protocol)


async def _timed_out(request: web.Request) -> web.StreamResponse:
    """408, then the connection closed at once: not after aiohttp's lingering read of
    the rest of the body (up to 10 s), which the client is not sending."""
    response = web.Response(status=408, text="request body timeout\n")
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # the 408 is flushed first (transport.close)
    return response

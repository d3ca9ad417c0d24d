"""Real servers on loopback, and helpers, for the HTTP client tests.

Each server runs its own event loop in a background thread, so the client under
test (on the tool's event loop in the test's thread: uvloop, or the standard loop with
INDIGO_EVENT_LOOP=asyncio) talks to it over real sockets as it would
to any remote server.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import threading
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from indigo_loadtest import event_loop
from indigo_loadtest.http import Client, ClientConfig
from indigo_loadtest.metrics import Registry


def run(coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
    """Run a test coroutine on the loop the tool would use (`event_loop.run`), bounded in
    time."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return event_loop.run(bounded())


async def with_client(
    fn: Callable[[Client], Awaitable[Any]], registry: Registry | None = None, **config: Any,
) -> Any:
    client = Client(registry or Registry(), ClientConfig(**config))
    try:
        return await fn(client)
    finally:
        await client.close()


class LoopThread:
    """An event loop in a daemon thread, for servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


# --- the aiohttp test application ---------------------------------------------------
async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def peer(request: web.Request) -> web.Response:
    # The client's port identifies its connection: same port, same connection.
    return web.Response(text=str(request.transport.get_extra_info("peername")[1]))  # type: ignore[union-attr]


async def echo(request: web.Request) -> web.Response:
    return web.json_response({
        "method": request.method,
        "path": request.path,
        "query": list(request.query.items()),
        "headers": list(request.headers.items()),
        "body": await request.text(),
    })


async def chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for part in (b"alpha-", b"beta-", b"gamma"):
        await resp.write(part)
        await asyncio.sleep(0.01)
    await resp.write_eof()
    return resp


async def close_after(request: web.Request) -> web.Response:
    resp = web.Response(text="bye")
    resp.force_close()
    return resp


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    headers = {"ETag": '"x"'} if code == 304 else None
    return web.Response(status=code, headers=headers)


async def redirect(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    if n == 0:
        return web.Response(text="arrived")
    raise web.HTTPFound(f"/redirect/{n - 1}")


async def see_other(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/echo")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("ms", "1000")) / 1000)
    return web.Response(text="late")


async def set_cookie(request: web.Request) -> web.Response:
    q = request.query
    resp = web.Response(text="set")
    kwargs: dict[str, Any] = {"path": q.get("path", "/")}
    if "max_age" in q:
        kwargs["max_age"] = int(q["max_age"])
    resp.set_cookie(q["name"], q["value"], **kwargs)
    return resp


async def show_cookies(request: web.Request) -> web.Response:
    return web.Response(text=request.headers.get("Cookie", ""))


PAYLOAD = b'{"message": "compressed hello"}' * 20


async def gzipped(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(PAYLOAD), headers={"Content-Encoding": "gzip"})


async def deflated(request: web.Request) -> web.Response:
    return web.Response(body=zlib.compress(PAYLOAD), headers={"Content-Encoding": "deflate"})


async def sse(request: web.Request) -> web.StreamResponse:
    n = int(request.query.get("n", "3"))
    interval = float(request.query.get("interval_ms", "0")) / 1000
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i in range(n):
        await resp.write(b'data: {"i": %d}\n\n' % i)
        if interval:
            await asyncio.sleep(interval)
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def sse_break(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i in range(2):
        await resp.write(b"data: part %d\n\n" % i)
        await asyncio.sleep(0.02)
    request.transport.abort()  # type: ignore[union-attr]  # the stream dies mid-way
    await asyncio.sleep(0.05)
    return resp


async def secrets(request: web.Request) -> web.Response:
    resp = web.json_response({"access_token": "tok-ACCESS-123", "expires_in": 900})
    resp.set_cookie("jan_refresh_token", "tok-REFRESH-456", httponly=True)
    return resp


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 << 20)
    r = app.router
    r.add_get("/hello", hello)  # also answers HEAD
    r.add_get("/peer", peer)
    r.add_route("*", "/echo", echo)
    r.add_get("/chunked", chunked)
    r.add_get("/close", close_after)
    r.add_get("/status/{code}", status)
    r.add_get("/redirect/{n}", redirect)
    r.add_post("/see-other", see_other)
    r.add_get("/slow", slow)
    r.add_get("/cookies/set", set_cookie)
    r.add_get("/cookies", show_cookies)
    r.add_get("/cookies/sub/show", show_cookies)
    r.add_get("/gzip", gzipped)
    r.add_get("/deflate", deflated)
    r.add_get("/sse", sse)
    r.add_get("/sse-break", sse_break)
    r.add_post("/secrets", secrets)
    return app


class AppServer:
    """The test app served on one loopback address (optionally with TLS)."""

    def __init__(self, host: str, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.lt = LoopThread()
        self.runner = web.AppRunner(make_app())
        self.lt.call(self._start(host, ssl_ctx))

    async def _start(self, host: str, ssl_ctx: ssl.SSLContext | None) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, 0, ssl_context=ssl_ctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "https" if ssl_ctx else "http"
        self.port = port
        self.url = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}"

    def stop(self) -> None:
        self.lt.call(self.runner.cleanup())
        self.lt.stop()


# --- raw TCP servers for malformed and edge-case responses ------------------------------
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request head (the tests' raw servers only get bodiless requests)."""
    return await reader.readuntil(b"\r\n\r\n")


def metric_sinks(registry: Registry, name: str) -> dict[Any, Any]:
    """{tag dict as sorted tuple: sink} of one metric."""
    return {ts.items: s for ts, s in registry.metrics[name].sinks.items()}


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

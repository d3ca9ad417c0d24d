"""CLI tests: the real `indigo-loadtest` in a subprocess against a real loopback server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from cli_helpers import LocalServer


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    """A small aiohttp server on a loopback port that records every request."""
    server = LocalServer()

    async def record(request: web.Request) -> web.Response:
        server.requests.append((request.path_qs, dict(request.headers)))
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with an empty ./scenarios folder."""
    (tmp_path / "scenarios").mkdir()
    return tmp_path

"""Fixtures: real servers on loopback (see http_servers.py)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from http_servers import AppServer, Handler, LoopThread


@pytest.fixture(scope="session")
def server() -> Iterator[AppServer]:
    srv = AppServer("127.0.0.1")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server6() -> Iterator[AppServer]:
    srv = AppServer("::1")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server(tls_ca: Any) -> Iterator[AppServer]:
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    srv = AppServer("127.0.0.1", ctx)
    yield srv
    srv.stop()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Handler], str]]:
    """Start a raw TCP server running `handler` per connection; returns its base URL."""
    lt = LoopThread()
    servers: list[asyncio.AbstractServer] = []

    def start(handler: Handler) -> str:
        async def go() -> str:
            srv = await asyncio.start_server(handler, "127.0.0.1", 0)
            servers.append(srv)
            return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

        return lt.call(go())

    yield start

    async def close_all() -> None:
        for srv in servers:
            srv.close()
        # Handlers still sleeping end here, not when the loop is dropped.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    lt.call(close_all())
    lt.stop()



"""CLI tests: the real `indigo-loadtest` in a subprocess against a real loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from chromium_helpers import chromium
from cli_helpers import LocalServer, serve_in_thread

__all__ = ["chromium"]  # the session's headless Chromium (chromium_helpers.py)


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    """A small aiohttp server on a loopback port that records every request."""
    server = LocalServer()

    async def record(request: web.Request) -> web.Response:
        server.requests.append((request.path_qs, dict(request.headers)))
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    with serve_in_thread(app) as url:
        server.url = url
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with an empty ./scenarios folder."""
    (tmp_path / "scenarios").mkdir()
    return tmp_path

"""A remote-write endpoint on 127.0.0.1 that records everything it receives."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web
from cli_helpers import serve_in_thread


@dataclass
class Listener:
    """What a remote-write endpoint received: (headers, body) per request."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def echo_listener() -> Iterator[Listener]:
    """Rejects the first push with a 401 whose body echoes the Authorization header back
    (as some proxies do), then accepts the others."""
    listener = Listener()

    async def receive(request: web.Request) -> web.Response:
        listener.received.append((dict(request.headers), await request.read()))
        if len(listener.received) == 1:
            auth = request.headers.get("Authorization", "")
            # The header as it came, then its bare base64 (no "Basic" to give it away).
            return web.Response(status=401, text=f"unauthorized: got {auth}\n"
                                                 f"credentials {auth.partition(' ')[2]} rejected")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receive)
    with serve_in_thread(app) as url:
        listener.url = f"{url}/api/v1/write"
        yield listener

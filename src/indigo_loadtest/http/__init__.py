"""The per-VU HTTP client, its timings, and SSE streams.

This package is also what a scenario gets from `from indigo_loadtest import http`
(as k6's `import http from 'k6/http'`): `http.get(...)`, `http.post(...)`, ... and any
other client attribute (`http.cookies`) act on the HTTP client of the VU running the
code. It has to be the package itself: once `indigo_loadtest.http` is imported, Python
binds that name on `indigo_loadtest` to the package, so a separate proxy object
could never be reached under the same name.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from .client import Client
from .config import ClientConfig
from .cookie_jar import Cookie, CookieJar
from .limits import Limits
from .redact import mask_headers, mask_text
from .response import Headers, RequestInfo, Response, StreamResponse, Timings
from .sse import SSEEvent, SSEParser

__all__ = [
    "Client", "ClientConfig", "Cookie", "CookieJar", "Headers", "Limits", "RequestInfo",
    "Response", "SSEEvent", "SSEParser", "StreamResponse", "Timings", "delete", "get", "head",
    "mask_headers", "mask_text", "options", "patch", "post", "put", "request",
]


def _client() -> Client:
    from ..api import http as running_vu_client  # engine → http import order: resolve late

    return running_vu_client._client()


def _send(method: str, url: str, kwargs: dict[str, Any]) -> Awaitable[Response | StreamResponse]:
    """The running VU's `Client.request(...)`, to be awaited. Checked when called: in a
    plain `def setup()` the coroutine would never run (see engine.errors.SyncHookRequest)."""
    from ..engine.vu import sync_hook

    hook = sync_hook.get()
    if hook is not None:
        from ..engine.errors import SyncHookRequest

        raise SyncHookRequest(hook, method.lower() if isinstance(method, str) else "request")
    return _client().request(method, url, **kwargs)


def request(method: str, url: str, **kwargs: Any) -> Awaitable[Response | StreamResponse]:
    """`Client.request` on the running VU's client."""
    return _send(method, url, kwargs)


def get(url: str, **kwargs: Any) -> Awaitable[Response | StreamResponse]:
    return _send("GET", url, kwargs)


def post(url: str, **kwargs: Any) -> Awaitable[Response | StreamResponse]:
    return _send("POST", url, kwargs)


def put(url: str, **kwargs: Any) -> Awaitable[Response | StreamResponse]:
    return _send("PUT", url, kwargs)


def patch(url: str, **kwargs: Any) -> Awaitable[Response | StreamResponse]:
    return _send("PATCH", url, kwargs)


def delete(url: str, **kwargs: Any) -> Awaitable[Response | StreamResponse]:
    return _send("DELETE", url, kwargs)


def head(url: str, **kwargs: Any) -> Awaitable[Response | StreamResponse]:
    return _send("HEAD", url, kwargs)


def options(url: str, **kwargs: Any) -> Awaitable[Response | StreamResponse]:
    return _send("OPTIONS", url, kwargs)


def __getattr__(name: str) -> Any:
    # Any other client attribute (cookies, config, close, ...) of the running VU.
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_client(), name)

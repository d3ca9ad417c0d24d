"""The per-VU HTTP client, its timings, and SSE streams.

This package is also what a scenario gets from `from indigo_loadtest import http`
(as k6's `import http from 'k6/http'`): `http.get(...)`, `http.post(...)`, ... and any
other client attribute (`http.cookies`) act on the HTTP client of the VU running the
code. It has to be the package itself: once `indigo_loadtest.http` is imported, Python
binds that name on `indigo_loadtest` to the package, so a separate proxy object
could never be reached under the same name.
"""

from __future__ import annotations

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


async def request(method: str, url: str, **kwargs: Any) -> Response | StreamResponse:
    """`Client.request` on the running VU's client."""
    return await _client().request(method, url, **kwargs)


async def get(url: str, **kwargs: Any) -> Response | StreamResponse:
    return await _client().request("GET", url, **kwargs)


async def post(url: str, **kwargs: Any) -> Response | StreamResponse:
    return await _client().request("POST", url, **kwargs)


async def put(url: str, **kwargs: Any) -> Response | StreamResponse:
    return await _client().request("PUT", url, **kwargs)


async def patch(url: str, **kwargs: Any) -> Response | StreamResponse:
    return await _client().request("PATCH", url, **kwargs)


async def delete(url: str, **kwargs: Any) -> Response | StreamResponse:
    return await _client().request("DELETE", url, **kwargs)


async def head(url: str, **kwargs: Any) -> Response | StreamResponse:
    return await _client().request("HEAD", url, **kwargs)


async def options(url: str, **kwargs: Any) -> Response | StreamResponse:
    return await _client().request("OPTIONS", url, **kwargs)


def __getattr__(name: str) -> Any:
    # Any other client attribute (cookies, config, close, ...) of the running VU.
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_client(), name)

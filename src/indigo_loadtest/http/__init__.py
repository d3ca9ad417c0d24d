"""The per-VU HTTP client, its timings, and SSE streams."""

from .client import Client
from .config import ClientConfig
from .cookies import Cookie, CookieJar
from .redact import mask_headers, mask_text
from .response import Headers, RequestInfo, Response, StreamResponse, Timings
from .sse import SSEEvent, SSEParser

__all__ = [
    "Client", "ClientConfig", "Cookie", "CookieJar", "Headers", "RequestInfo", "Response",
    "SSEEvent", "SSEParser", "StreamResponse", "Timings", "mask_headers", "mask_text",
]

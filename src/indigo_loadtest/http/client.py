"""The per-VU HTTP client: keep-alive pool, cookies, redirects, k6 timings and metrics.

Every request, whatever happens, records one sample set through
`registry.builtin.record_http` and returns a Response; network and protocol errors
become `status == 0` with k6's `error` and `error_code`, never an exception.
Only programming errors (bad arguments) raise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Container, Mapping, Sequence
from time import perf_counter
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import orjson

from ..metrics.registry import Registry, active_registry, current_tags
from ..metrics.tags import TagSet
from .config import ClientConfig, parse_timeout
from .cookie_jar import CookieJar, merge_cookie_header
from .debug import debug_body, debug_stream_response, debug_write
from .decode import DecodedTooLarge, decode_body
from .limits import (
    ERR_DECODED_BODY_TOO_LARGE,
    ERR_DECOMPRESSION,
    ERR_INVALID_URL,
    Limits,
    limit_message,
)
from .redact import SECRET_HEADERS, mask_header_value, mask_text, mask_url
from .response import Response, StreamResponse, Timings, head_pairs
from .transport import (
    ERR_DIAL_TIMEOUT,
    ERR_DNS,
    ERR_DNS_NO_IP,
    ERR_GENERIC,
    ERR_REQUEST_TIMEOUT,
    ERR_TCP_RESET,
    ERR_TCP_WRITE_BROKEN_PIPE,
    NO_DEADLINE,
    Connection,
    Exchange,
    classify_os_error,
    ssl_context,
)

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_DEFAULT_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers that must not follow a redirect to another host (as Go's client does): the
# secret request headers (Set-Cookie is a response header).
_SENSITIVE_ON_REDIRECT = SECRET_HEADERS - {"set-cookie"}
# Caches keyed by URL or tag combination are cleared past this size, so a test
# that puts ids in its URLs cannot grow them without bound.
_CACHE_LIMIT = 20_000
_STATUS_STR = {i: str(i) for i in range(600)}
# A reused connection that fails before any response byte was probably closed by
# the server while idle: the request is retried once on a new connection.
# Like Go's client, only replayable requests are retried: a POST may have reached the
# server already.
_RETRYABLE = frozenset({ERR_GENERIC, ERR_TCP_RESET, ERR_TCP_WRITE_BROKEN_PIPE})
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_ssl_contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}


def _shared_ssl_context(insecure: bool) -> ssl.SSLContext:
    # Loading the CA bundle takes milliseconds: one context per setting, shared by
    # every VU. SSL_CERT_FILE is part of the key because OpenSSL reads it on load.
    key = (insecure, os.environ.get("SSL_CERT_FILE"))
    ctx = _ssl_contexts.get(key)
    if ctx is None:
        ctx = _ssl_contexts[key] = ssl_context(insecure, None)
    return ctx


class InvalidURL(ValueError):
    """A URL the client cannot send to; `reason` says why (without the URL)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"invalid URL {url!r}: {reason}")
        self.reason = reason


class _Target:
    """A parsed request URL, cached per client."""

    __slots__ = ("cookie_path", "host", "host_header", "ip", "key", "port", "target", "tls",
                 "url")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(url, str(exc)) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise InvalidURL(url, "need http:// or https:// and a host")
        self.url = url
        self.tls = scheme == "https"
        self.host = parts.hostname.lower()
        default_port = 443 if self.tls else 80
        self.port = port or default_port
        try:
            self.ip = ipaddress.ip_address(self.host).version
        except ValueError:
            self.ip = 0
        bracketed = f"[{self.host}]" if self.ip == 6 else self.host
        self.host_header = bracketed if self.port == default_port else f"{bracketed}:{self.port}"
        path = parts.path or "/"
        if not path.isascii():
            path = quote(path, safe="/%:@!$&'()*+,;=-._~")
        query = parts.query
        if query and not query.isascii():
            query = quote(query, safe="/%:@!$&'()*+,;=-._~?")
        self.target = f"{path}?{query}" if query else path
        self.cookie_path = path
        self.key = (self.tls, self.host, self.port)


def _merge_params(url: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> str:
    items = params.items() if isinstance(params, Mapping) else params
    query = urlencode([(k, v) for k, v in items], doseq=True)
    if not query:
        return url
    base, hash_, frag = url.partition("#")
    sep = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        sep = ""
    return f"{base}{sep}{query}{hash_}{frag}"


def _encode_body(json: Any, data: Any) -> tuple[bytes | None, str | None]:
    """The request body and its default Content-Type."""
    if json is not None:
        if data is not None:
            raise ValueError("pass either json= or data=, not both")
        return orjson.dumps(json), "application/json"
    if data is None:
        return None, None
    if isinstance(data, bytes):
        return data, None
    if isinstance(data, bytearray | memoryview):
        return bytes(data), None
    if isinstance(data, str):
        return data.encode("utf-8"), "text/plain; charset=utf-8"
    if isinstance(data, Mapping | list | tuple):
        items = data.items() if isinstance(data, Mapping) else data
        return urlencode(list(items), doseq=True).encode(), "application/x-www-form-urlencoded"
    raise TypeError(f"data= must be bytes, str or a mapping, not {type(data).__name__}")


def _check_header(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
        raise ValueError(f"invalid header {name!r}: names and values may not contain CR/LF")


class Client:
    """One VU's HTTP client: its own cookie jar and keep-alive connections."""

    def __init__(
        self, registry: Registry | None = None, config: ClientConfig | None = None,
    ) -> None:
        self.registry = registry or active_registry()
        self.config = config or ClientConfig()
        self.cookies = CookieJar()
        self._record = self.registry.builtin.record_http
        self._idle: dict[tuple, list[Connection]] = {}
        self._conns: set[Connection] = set()
        self._targets: dict[str, _Target] = {}
        self._tags: dict[tuple, TagSet] = {}
        self._heads: dict[tuple[str, str], bytes] = {}
        self._dns: dict[str, tuple[float, list[tuple[int, str]]]] = {}
        cfg = self.config
        defaults = {"User-Agent": cfg.user_agent}
        defaults.update({str(k): str(v) for k, v in cfg.headers.items()})
        for k, v in defaults.items():
            _check_header(k, v)
        self._default_lower = {k.lower(): k for k in defaults}
        self._defaults = defaults
        self._default_block = "".join(f"{k}: {v}\r\n" for k, v in defaults.items())

    # --- public API ------------------------------------------------------------------
    async def get(self, url: str, **kw: Any) -> Any:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> Any:
        return await self.request("POST", url, **kw)

    async def put(self, url: str, **kw: Any) -> Any:
        return await self.request("PUT", url, **kw)

    async def patch(self, url: str, **kw: Any) -> Any:
        return await self.request("PATCH", url, **kw)

    async def delete(self, url: str, **kw: Any) -> Any:
        return await self.request("DELETE", url, **kw)

    async def head(self, url: str, **kw: Any) -> Any:
        return await self.request("HEAD", url, **kw)

    async def options(self, url: str, **kw: Any) -> Any:
        return await self.request("OPTIONS", url, **kw)

    async def request(self, method: str, url: str, **kw: Any) -> Any:
        """Send a request; returns a Response (a StreamResponse with stream=True).
        With --throw, a failed request (as http_req_failed counts it) raises
        RequestFailed instead, ending the iteration as k6's `throw` option does."""
        resp = await self._request(method, url, **kw)
        if self.config.throw and not _expected(resp.status, kw.get("expected_statuses"),
                                               resp.error):
            raise RequestFailed(resp)
        return resp

    async def _request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        cookies: Mapping[str, str] | None = None,
        timeout: float | str | None = None,
        tags: Mapping[str, Any] | None = None,
        name: str | None = None,
        stream: bool = False,
        expected_statuses: Container[int] | None = None,
        limits: Mapping[str, Any] | Limits | None = None,
    ) -> Any:
        """Send a request; returns a Response (a StreamResponse with stream=True).

        `limits` overrides the run's response limits for this request (option names,
        e.g. {"maxResponseBodySize": "256MiB"}; see http.limits)."""
        method = method.upper() if isinstance(method, str) else method
        if method not in METHODS:
            raise ValueError(f"unsupported HTTP method {method!r}")
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        if params:
            url = _merge_params(url, params)
        body, ctype = _encode_body(json, data)
        seconds = self.config.timeout if timeout is None else parse_timeout(timeout)
        lim = self.config.limits if limits is None else self.config.limits.merged(limits)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        user_headers = dict(headers) if headers else None
        hops = 0
        while True:
            try:
                tgt = self._target(url)
            except InvalidURL as exc:  # a failed request, as k6 makes it (error_code 1020)
                return self._failed_early(method, url, perf_counter(), 0.0, 0.0, 0.0,
                                          ERR_INVALID_URL, f"invalid URL: {exc.reason}",
                                          tags, name, stream, b"")
            resp = await self._send(loop, method, tgt, body, ctype, user_headers, cookies,
                                    deadline, tags, name, stream, expected_statuses, lim)
            if resp.status not in _REDIRECTS or hops >= self.config.max_redirects:
                return resp
            location = resp.headers.get("location")
            if not location:
                return resp
            next_url = urljoin(url, location)
            try:
                next_tgt = self._target(next_url)
            except ValueError:
                return resp  # a Location we cannot follow: the redirect is the answer
            if stream:
                await resp.aclose()
            hops += 1
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method = "GET" if method != "HEAD" else "HEAD"
                body = ctype = None
                if user_headers:
                    user_headers = {k: v for k, v in user_headers.items()
                                    if k.lower() not in ("content-type", "content-length")}
            if next_tgt.host != tgt.host:
                cookies = None
                if user_headers:
                    user_headers = {k: v for k, v in user_headers.items()
                                    if k.lower() not in _SENSITIVE_ON_REDIRECT}
            url = next_url  # the caller's name= and tags= apply to every hop, as in k6

    async def close(self) -> None:
        """Close every connection (idle and busy) of this client."""
        for conn in list(self._conns):
            conn.close()
        self._idle.clear()
        self._conns.clear()

    aclose = close

    # --- building requests -----------------------------------------------------------
    def _target(self, url: str) -> _Target:
        tgt = self._targets.get(url)
        if tgt is None:
            tgt = _Target(url)
            if len(self._targets) >= _CACHE_LIMIT:
                self._targets.clear()
            self._targets[url] = tgt
        return tgt

    def _head(
        self, method: str, tgt: _Target, body: bytes | None, ctype: str | None,
        headers: dict[str, Any] | None, cookie: str,
    ) -> str:
        """The serialized request head (user headers override the defaults)."""
        lines = [f"{method} {tgt.target} HTTP/1.1\r\n"]
        if headers:
            given = {}
            for k, v in headers.items():
                k, v = str(k), str(v)
                _check_header(k, v)
                given[k.lower()] = (k, v)
            if "host" not in given:
                lines.append(f"Host: {tgt.host_header}\r\n")
            for lk, k in self._default_lower.items():
                if lk not in given:
                    lines.append(f"{k}: {self._defaults[k]}\r\n")
            for lk, (k, v) in given.items():
                if lk == "cookie" and cookie:
                    continue  # merged below with the jar's cookies
                lines.append(f"{k}: {v}\r\n")
            if cookie and "cookie" in given:
                cookie = f"{given['cookie'][1]}; {cookie}"
        else:
            given = {}
            lines.append(f"Host: {tgt.host_header}\r\n{self._default_block}")
        if ctype and "content-type" not in given:
            lines.append(f"Content-Type: {ctype}\r\n")
        if body is not None:
            if "content-length" not in given:
                lines.append(f"Content-Length: {len(body)}\r\n")
        elif method in _BODY_DEFAULT_METHODS and "content-length" not in given:
            lines.append("Content-Length: 0\r\n")
        if self.config.no_connection_reuse and "connection" not in given:
            lines.append("Connection: close\r\n")
        if cookie:
            lines.append(f"Cookie: {cookie}\r\n")
        lines.append("\r\n")
        return "".join(lines)

    def _cookie_header(self, tgt: _Target, cookies: Mapping[str, str] | None) -> str:
        jar = self.cookies
        header = jar.header_for(tgt.host, tgt.cookie_path, tgt.tls) if jar else ""
        if cookies:
            header = merge_cookie_header(header, {str(k): str(v) for k, v in cookies.items()})
        return header

    # --- one request on the wire -----------------------------------------------------
    async def _send(
        self, loop: asyncio.AbstractEventLoop, method: str, tgt: _Target, body: bytes | None,
        ctype: str | None, headers: dict[str, Any] | None, cookies: Mapping[str, str] | None,
        deadline: float, tags: Mapping[str, Any] | None, name: str | None, stream: bool,
        expected: Container[int] | None, limits: Limits,
    ) -> Any:
        t0 = perf_counter()
        cookie = self._cookie_header(tgt, cookies) if (cookies or self.cookies) else ""
        if headers is None and not cookie and body is None:
            key = (method, tgt.url)
            head_bytes = self._heads.get(key)
            if head_bytes is None:
                head = self._head(method, tgt, None, None, None, "")
                head_bytes = head.encode("utf-8")
                if len(self._heads) >= _CACHE_LIMIT:
                    self._heads.clear()
                self._heads[key] = head_bytes
            wire = head_bytes
        else:
            head = self._head(method, tgt, body, ctype, headers, cookie)
            wire = head.encode("utf-8")
            if body:
                wire += body
        if self.config.debug:
            self._debug_request(method, tgt, wire, len(body) if body else 0)

        for attempt in (0, 1):
            conn = self._acquire(tgt.key)
            connecting = tls_time = 0.0
            if conn is None:
                conn, t_dial, connecting, tls_time, err = await self._dial(loop, tgt, deadline)
                if conn is None:
                    code, msg = err
                    blocked = (t_dial - t0) * 1000.0
                    return self._failed_early(method, tgt.url, t0, blocked, connecting,
                                              tls_time, code, msg, tags, name, stream, wire)
            else:
                t_dial = perf_counter()
            retry_allowed = attempt == 0 and conn.used and method in _REPLAYABLE
            ex = Exchange(loop.create_future(), method == "HEAD", stream,
                          self.config.discard_response_bodies and not stream, limits)
            if stream:
                ex.headers_fut = loop.create_future()
            conn.arm(ex, deadline, loop)
            t_send = perf_counter()
            conn.send(ex, wire)
            t_sent = perf_counter()
            try:
                await (ex.headers_fut if stream else ex.fut)
            except asyncio.CancelledError:
                ex.deadline = NO_DEADLINE
                ex.cancelled = True
                conn.fail(ERR_GENERIC, "request cancelled")
                raise
            if (retry_allowed and ex.error_code in _RETRYABLE and not ex.nbytes
                    and loop.time() < deadline):
                ex.deadline = NO_DEADLINE
                continue
            break

        blocked = (t_dial - t0) * 1000.0
        sending = (t_sent - t_send) * 1000.0
        args = (method, tgt, ex, conn, t0, blocked, connecting * 1000.0, tls_time * 1000.0,
                sending, t_sent, tags, name, expected, wire)
        if stream and not (ex.complete and ex.error):
            resp = self._stream_response(method, tgt.url, ex, t0, wire)
            # Settled by the transport's end of body (a future callback; soon, if the
            # whole body came with the headers) or, if a reader is on it by then, when
            # the reader reaches the end.
            resp._finalize = lambda: self._finish(args, resp)
            ex.fut.add_done_callback(lambda _f: resp._body_ended())
            return resp
        return self._finish(args, None)

    def _finish(self, args: tuple, stream_resp: StreamResponse | None) -> Any:
        """Timings, metrics, cookies and the pool, once a response has ended."""
        (method, tgt, ex, conn, t0, blocked, connecting, tls_time, sending, t_sent,
         tags, name, expected, wire) = args
        ex.deadline = NO_DEADLINE
        t_first = ex.t_first
        if t_first:
            waiting = (t_first - t_sent) * 1000.0
            receiving = (ex.t_last - t_first) * 1000.0
        else:
            waiting = ((ex.t_last or perf_counter()) - t_sent) * 1000.0
            receiving = 0.0
        error = ex.error
        if ex.user_closed:
            error = ""
        code = ex.error_code
        body = b""
        if stream_resp is None and not ex.stream:
            chunks = ex.chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            # A body cut short keeps its transport error, undecoded; one that does not
            # decode (or decodes past the limit) fails the request.
            if ex.content_encoding and body and not error:
                body, decode_error, decode_code = _decoded(ex, body)
                if decode_error:
                    error, code = decode_error, decode_code
        status = 0 if error and not ex.headers_done else ex.status
        code = code if error else (1000 + status if status >= 400 else 0)
        timings = Timings(blocked, connecting, tls_time, sending, waiting, receiving)
        if not ex.cancelled:  # an interrupted iteration's request is not measured
            self._record_metrics(method, tgt.url, name, status, error, code, expected,
                                 tags, timings, len(wire), ex.nbytes)
        if ex.set_cookies:
            self.cookies.update_from_response(
                [v.decode("latin-1") for v in ex.set_cookies], tgt.host, tgt.cookie_path)
        self._release(conn)
        if stream_resp is None and ex.stream:  # stream=True, whole body came with the headers
            stream_resp = self._stream_response(method, tgt.url, ex, t0, wire)
        if stream_resp is not None:
            stream_resp.timings = timings
            stream_resp.status = status
            stream_resp.error = error
            stream_resp.error_code = code
            if self.config.debug:
                debug_write(self.config.debug_output,
                            f"< end of stream {mask_text(tgt.url)} ({timings.duration:.2f} ms"
                            + (f", error={error!r}" if error else "") + ")")
            return stream_resp
        resp = Response(method, tgt.url, status, ex.raw_headers, body, timings, error, code,
                        t0, wire)
        if self.config.debug:
            self._debug_response(resp, body)
        return resp

    def _record_metrics(
        self, method: str, url: str, name: str | None, status: int, error: str, code: int,
        expected: Container[int] | None, tags: Mapping[str, Any] | None, timings: Timings,
        nsent: int, nreceived: int,
    ) -> None:
        ok = _expected(status, expected, error)
        base = current_tags.get()
        key = (base, method, url, name, status, ok, error, code)
        ts = self._tags.get(key)
        if ts is None:
            # Masked here, at the source, so no output (files, labels, summary) sees a
            # key in a query string or user:password@; done once per cached tag set.
            safe_url = mask_url(url)
            pairs = [("method", method), ("url", safe_url),
                     ("name", mask_url(name) if name else safe_url),
                     ("status", _STATUS_STR.get(status) or str(status)),
                     ("expected_response", "true" if ok else "false")]
            if error:
                pairs.append(("error", mask_url(error)))  # a message may quote the URL
            if code:
                pairs.append(("error_code", str(code)))
            ts = base.with_pairs(*pairs)
            if len(self._tags) >= _CACHE_LIMIT:
                self._tags.clear()
            self._tags[key] = ts
        if tags:
            ts = ts.with_tags(tags)
        self._record(ts, timings.blocked, timings.connecting, timings.tls_handshaking,
                     timings.sending, timings.waiting, timings.receiving, not ok,
                     nsent, nreceived)

    def _failed_early(
        self, method: str, url: str, t0: float, blocked: float, connecting: float,
        tls_time: float, code: int, msg: str, tags: Mapping[str, Any] | None,
        name: str | None, stream: bool, wire: bytes,
    ) -> Any:
        """A request that never reached the server (invalid URL, DNS, dial or TLS failure)."""
        timings = Timings(blocked, connecting * 1000.0, tls_time * 1000.0, 0.0, 0.0, 0.0)
        self._record_metrics(method, url, name, 0, msg, code, None, tags, timings, 0, 0)
        resp: Any
        if stream:
            ex = Exchange(asyncio.get_running_loop().create_future(), False, True, False)
            ex.complete, ex.error, ex.error_code = True, msg, code
            resp = StreamResponse(method, url, ex, t0, wire)
            resp.timings = timings
        else:
            resp = Response(method, url, 0, [], b"", timings, msg, code, t0, wire)
        if self.config.debug:
            self._debug_response(resp, b"")
        return resp

    # --- connections -----------------------------------------------------------------
    def _acquire(self, key: tuple) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def _release(self, conn: Connection) -> None:
        if conn.keep_alive and not conn.closed and not self.config.no_connection_reuse:
            idle = self._idle.get(conn.key)
            if idle is None:
                idle = self._idle[conn.key] = []
            idle.append(conn)
        else:
            conn.close()

    def _on_lost(self, conn: Connection) -> None:
        self._conns.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    async def _resolve(
        self, loop: asyncio.AbstractEventLoop, tgt: _Target,
    ) -> list[tuple[int, str]]:
        if tgt.ip:
            return [(socket.AF_INET6 if tgt.ip == 6 else socket.AF_INET, tgt.host)]
        now = loop.time()
        cached = self._dns.get(tgt.host)
        if cached is not None and cached[0] > now:
            return cached[1]
        infos = await loop.getaddrinfo(tgt.host, tgt.port, type=socket.SOCK_STREAM,
                                       proto=socket.IPPROTO_TCP)
        addrs = list(dict.fromkeys((fam, sa[0]) for fam, _, _, _, sa in infos))
        self._dns[tgt.host] = (now + self.config.dns_ttl, addrs)
        return addrs

    async def _dial(
        self, loop: asyncio.AbstractEventLoop, tgt: _Target, deadline: float,
    ) -> tuple[Connection | None, float, float, float, tuple[int, str]]:
        """A new connection: (conn, dial start, connect s, TLS s, (error code, message))."""
        try:
            addrs = await self._resolve(loop, tgt)
        except socket.gaierror as exc:
            code = ERR_DNS_NO_IP if exc.errno in (socket.EAI_NONAME, socket.EAI_NODATA) else ERR_DNS
            return None, perf_counter(), 0.0, 0.0, (code, "lookup: no such host"
                                                    if code == ERR_DNS_NO_IP else "lookup failed")
        if not addrs:
            return None, perf_counter(), 0.0, 0.0, (ERR_DNS_NO_IP, "lookup: no such host")
        t_dial = perf_counter()
        err: tuple[int, str] = (ERR_GENERIC, "dial failed")
        budget = min(self.config.connect_timeout, max(deadline - loop.time(), 0.0))
        for family, ip in addrs:
            conn = Connection(tgt.key)
            try:
                async with asyncio.timeout(budget):
                    transport, _ = await loop.create_connection(lambda c=conn: c, ip, tgt.port,
                                                                family=family)
            except TimeoutError:
                timed_out_request = deadline - loop.time() <= 0
                err = ((ERR_REQUEST_TIMEOUT, "request timeout") if timed_out_request
                       else (ERR_DIAL_TIMEOUT, "dial: i/o timeout"))
                break
            except OSError as exc:
                err = classify_os_error(exc, during_dial=True)
                continue
            t_connected = perf_counter()
            tls_time = 0.0
            if tgt.tls:
                ok, err = await self._start_tls(loop, conn, transport, tgt, deadline)
                tls_time = perf_counter() - t_connected
                if not ok:
                    return None, t_dial, t_connected - t_dial, tls_time, err
            conn.lost_cb = self._on_lost
            self._conns.add(conn)
            return conn, t_dial, t_connected - t_dial, tls_time, err
        return None, t_dial, perf_counter() - t_dial, 0.0, err

    async def _start_tls(
        self, loop: asyncio.AbstractEventLoop, conn: Connection, transport: asyncio.Transport,
        tgt: _Target, deadline: float,
    ) -> tuple[bool, tuple[int, str]]:
        ctx = _shared_ssl_context(self.config.insecure_skip_tls_verify)
        remaining = max(deadline - loop.time(), 0.001)
        try:
            tls_transport = await loop.start_tls(
                transport, conn, ctx, server_hostname=tgt.host,
                ssl_handshake_timeout=min(remaining, self.config.connect_timeout))
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            transport.abort()
            if isinstance(exc, TimeoutError):
                return False, (ERR_REQUEST_TIMEOUT, "tls: handshake timeout")
            return False, classify_os_error(exc, during_dial=True)
        except ConnectionError as exc:
            transport.abort()
            return False, classify_os_error(exc, during_dial=True)
        conn.transport = tls_transport
        return True, (0, "")

    # --- DEBUG output ------------------------------------------------------------------
    def _stream_response(self, method: str, url: str, ex: Exchange, t0: float,
                         wire: bytes) -> StreamResponse:
        """A StreamResponse; with debug output on, one that prints its head now and each
        chunk as it is read (see http.debug)."""
        if not self.config.debug:
            return StreamResponse(method, url, ex, t0, wire)
        resp = (debug_stream_response(method, url, ex, t0, wire, self.config.debug_output)
                if self.config.debug_bodies else StreamResponse(method, url, ex, t0, wire))
        lines = [f"< {resp.status} {mask_text(url)} (streamed)"]
        lines += [f"< {k}: {mask_header_value(k, v)}" for k, v in resp.headers.multi_items()]
        debug_write(self.config.debug_output, "\n".join(lines))
        return resp

    def _debug_request(self, method: str, tgt: _Target, wire: bytes, body_len: int) -> None:
        head, _, body = wire.partition(b"\r\n\r\n")
        lines = [f"> {method} {mask_text(tgt.url)}"]
        for k, v in head_pairs(head.decode("utf-8", "replace")):
            lines.append(f"> {k}: {mask_header_value(k, v)}")
        if body_len and self.config.debug_bodies:
            lines.append("> " + debug_body(body))
        debug_write(self.config.debug_output, "\n".join(lines))

    def _debug_response(self, resp: Any, body: bytes) -> None:
        if resp.error:
            status = f"{resp.status} error={resp.error!r} code={resp.error_code}"
        else:
            status = str(resp.status)
        lines = [f"< {status} {mask_text(resp.url)} ({resp.timings.duration:.2f} ms)"]
        for k, v in resp.headers.multi_items():
            lines.append(f"< {k}: {mask_header_value(k, v)}")
        if body and self.config.debug_bodies:
            lines.append("< " + debug_body(body))
        debug_write(self.config.debug_output, "\n".join(lines))


def _expected(status: int, expected: Container[int] | None, error: str) -> bool:
    """Whether a response counts as expected in http_req_failed (k6's rule)."""
    ok = (200 <= status < 400) if expected is None else (bool(status) and status in expected)
    return ok and not error  # a body that broke off (stream cut) is a failed request


class RequestFailed(Exception):
    """--throw: a request failed (an error, or a status outside the expected ones)."""

    def __init__(self, resp: Any) -> None:
        what = f"error {resp.error}" if resp.error else f"status {resp.status}"
        super().__init__(f"{resp.method} {mask_url(resp.url)}: {what} (--throw)")
        self.response = resp


def _decoded(ex: Exchange, body: bytes) -> tuple[bytes, str, int]:
    """The body decoded from its Content-Encoding within the size limit: (body, error,
    code); error is "" when it decoded."""
    assert ex.content_encoding is not None
    limit = ex.limits.max_response_body_size
    try:
        return decode_body(body, ex.content_encoding, limit), "", 0
    except DecodedTooLarge:
        return b"", limit_message(ERR_DECODED_BODY_TOO_LARGE, limit), ERR_DECODED_BODY_TOO_LARGE
    except Exception:  # zlib.error, cramjam.DecompressionError: not what it claims to be
        encoding = ex.content_encoding.decode("latin-1")
        return body, f"failed to decode response body ({encoding})", ERR_DECOMPRESSION


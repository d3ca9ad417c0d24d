"""A per-VU cookie jar following RFC 6265 (the parts a browser-less client needs).

Set-Cookie headers are parsed with their Path, Domain, Max-Age, Expires, Secure and
HttpOnly attributes and the cookies are sent back on matching requests, as k6's
per-VU jar does. Each VU has its own jar, so sessions never leak between VUs.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit


@dataclass
class Cookie:
    name: str
    value: str
    domain: str  # lower case, no leading dot
    path: str
    host_only: bool = True  # no Domain attribute: only the exact host gets it
    secure: bool = False
    http_only: bool = False
    expires: float | None = None  # unix time; None: a session cookie

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now

    def matches(self, host: str, path: str, secure: bool) -> bool:
        if self.secure and not secure:
            return False
        if self.host_only:
            if host != self.domain:
                return False
        elif not domain_match(host, self.domain):
            return False
        return path_match(path, self.path)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: host equals domain, or is a subdomain of it (not for IPs)."""
    if host == domain:
        return True
    return host.endswith("." + domain) and not _is_ip(host)


def path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4."""
    if request_path == cookie_path:
        return True
    if request_path.startswith(cookie_path):
        return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    return False


def default_path(request_path: str) -> str:
    """RFC 6265 5.1.4: the directory of the request path."""
    if not request_path.startswith("/") or request_path.count("/") == 1:
        return "/"
    return request_path[: request_path.rfind("/")]


def _parse_expires(value: str) -> float | None:
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return dt.timestamp()


def parse_set_cookie(header: str, host: str, request_path: str, now: float) -> Cookie | None:
    """A Cookie from one Set-Cookie value as received from `host`, or None if rejected."""
    first, _, attrs = header.partition(";")
    name, eq, value = first.partition("=")
    if not eq:
        return None
    name, value = name.strip(), value.strip()
    if not name:
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    cookie = Cookie(name=name, value=value, domain=host, path=default_path(request_path))
    max_age: float | None = None
    for attr in attrs.split(";"):
        key, _, val = attr.partition("=")
        key, val = key.strip().lower(), val.strip()
        if key == "path":
            cookie.path = val if val.startswith("/") else default_path(request_path)
        elif key == "domain" and val:
            domain = val.lstrip(".").lower()
            if not domain_match(host, domain):
                return None  # a server may not set cookies for another site
            cookie.domain, cookie.host_only = domain, False
        elif key == "max-age":
            try:
                max_age = float(int(val))
            except ValueError:
                continue
        elif key == "expires":
            cookie.expires = _parse_expires(val)
        elif key == "secure":
            cookie.secure = True
        elif key == "httponly":
            cookie.http_only = True
    if max_age is not None:  # Max-Age wins over Expires
        cookie.expires = now + max_age if max_age > 0 else 0.0
    return cookie


def _url_parts(url: str) -> tuple[str, str, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {url!r}: need http:// or https:// and a host")
    return parts.hostname.lower(), parts.path or "/", parts.scheme == "https"


class CookieJar:
    """The cookies of one VU, keyed by (domain, path, name)."""

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {}

    def __len__(self) -> int:
        return len(self._cookies)

    def __bool__(self) -> bool:
        return bool(self._cookies)

    def __iter__(self) -> Iterator[Cookie]:
        now = time.time()
        return iter([c for c in self._cookies.values() if not c.expired(now)])

    def _store(self, cookie: Cookie, now: float) -> None:
        key = (cookie.domain, cookie.path, cookie.name)
        if cookie.expired(now):
            self._cookies.pop(key, None)  # an expiry in the past deletes the cookie
        else:
            self._cookies[key] = cookie

    def update_from_response(self, set_cookies: list[str], host: str, path: str) -> None:
        """Store the cookies of a response's Set-Cookie values (host: lower case)."""
        now = time.time()
        for header in set_cookies:
            cookie = parse_set_cookie(header, host, path, now)
            if cookie is not None:
                self._store(cookie, now)

    def header_for(self, host: str, path: str, secure: bool) -> str:
        """The Cookie header value for a request ("" if none), longest paths first."""
        if not self._cookies:
            return ""
        now = time.time()
        found = []
        for key, c in list(self._cookies.items()):
            if c.expired(now):
                del self._cookies[key]
            elif c.matches(host, path, secure):
                found.append(c)
        found.sort(key=lambda c: -len(c.path))
        return "; ".join(f"{c.name}={c.value}" for c in found)

    # --- the scenario-facing API (like k6's http.cookieJar()) --------------------
    def for_url(self, url: str) -> dict[str, str]:
        """The cookies a request to `url` would send, as {name: value}."""
        host, path, secure = _url_parts(url)
        out: dict[str, str] = {}
        for pair in filter(None, self.header_for(host, path, secure).split("; ")):
            name, _, value = pair.partition("=")
            out.setdefault(name, value)
        return out

    def get(self, name: str, default: str | None = None, *, url: str | None = None) -> str | None:
        """The value of cookie `name` (for `url` if given, else from any site)."""
        if url is not None:
            return self.for_url(url).get(name, default)
        now = time.time()
        for c in sorted(self._cookies.values(), key=lambda c: -len(c.path)):
            if c.name == name and not c.expired(now):
                return c.value
        return default

    def set(
        self,
        url: str,
        name: str,
        value: str,
        *,
        domain: str | None = None,
        path: str | None = None,
        max_age: int | None = None,
        secure: bool = False,
        http_only: bool = False,
    ) -> None:
        """Put a cookie in the jar as if `url`'s server had set it."""
        host, req_path, _ = _url_parts(url)
        parts = [f"{name}={value}"]
        if domain:
            parts.append(f"Domain={domain}")
        parts.append(f"Path={path or '/'}")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure:
            parts.append("Secure")
        if http_only:
            parts.append("HttpOnly")
        now = time.time()
        cookie = parse_set_cookie("; ".join(parts), host, req_path, now)
        if cookie is None:
            raise ValueError(f"cannot set cookie {name!r} for domain {domain!r} from {url!r}")
        self._store(cookie, now)

    def delete(self, url: str, name: str) -> None:
        """Remove cookie `name` from every entry that `url` would receive."""
        host, path, secure = _url_parts(url)
        for key, c in list(self._cookies.items()):
            if c.name == name and c.matches(host, path, secure):
                del self._cookies[key]

    def clear(self, url: str | None = None) -> None:
        """Remove all cookies (or all that `url` would receive)."""
        if url is None:
            self._cookies.clear()
            return
        host, path, secure = _url_parts(url)
        for key, c in list(self._cookies.items()):
            if c.matches(host, path, secure):
                del self._cookies[key]

    def as_dict(self) -> dict[str, str]:
        """{name: value} of every live cookie (the most specific path wins)."""
        now = time.time()
        out: dict[str, str] = {}
        for c in sorted(self._cookies.values(), key=lambda c: -len(c.path)):
            if not c.expired(now):
                out.setdefault(c.name, c.value)
        return out


def merge_cookie_header(jar_header: str, overrides: Mapping[str, str]) -> str:
    """A Cookie header from the jar's value with per-request cookies taking precedence."""
    if not overrides:
        return jar_header
    kept = [
        p for p in jar_header.split("; ") if p and p.partition("=")[0] not in overrides
    ]
    kept.extend(f"{k}={v}" for k, v in overrides.items())
    return "; ".join(kept)

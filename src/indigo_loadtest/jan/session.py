"""Guest sessions of the Indigo (Jan) Server API.

A `Session` is one guest identity: an access token (bearer) and the refresh token the
server sets in the `jan_refresh_token` cookie. It holds tokens only, so any VU's HTTP
client can use it, which is what lets a `SessionPool` share identities across VUs.

Refreshing follows `JanConfig.refresh`: "always" refreshes before every API request (as
the original scripts did before each completion), "expiry" only when the access token
is within `refresh_margin` seconds of expiring.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ..api import check
from ..http.redact import mask_secrets
from ..scenario.errors import ScenarioError
from .metrics import LOGIN_TREND, REFRESH_TREND, FlowMetrics

REFRESH_COOKIE = "jan_refresh_token"
_REFRESH_COOKIE_RE = re.compile(REFRESH_COOKIE + r"=([^;]+)")
REFRESH_MODES = ("always", "expiry")
SESSION_MODES = ("new", "pool")
LOADTEST_HEADER = "x-loadtest-token"
# When the server does not say how long an access token lives.
DEFAULT_EXPIRES_IN = 300.0


class JanConfigError(ScenarioError):
    """A configuration value the Jan helpers cannot use (one line, exit code 104)."""


@dataclass(frozen=True)
class JanConfig:
    """Where and how to talk to the API (read from the run's `env`)."""

    base: str
    model: str = "jan-v1-4b"
    api_key: str = ""
    loadtest_token: str = ""
    refresh: str = "always"  # "always" | "expiry"
    refresh_margin: float = 60.0  # seconds before expiry at which "expiry" refreshes
    session_mode: str = "new"  # "new": a guest per iteration | "pool": reuse guests
    verbose: bool = False  # print the functional flow's step log

    def __post_init__(self) -> None:
        if self.refresh not in REFRESH_MODES:
            raise JanConfigError(
                f"REFRESH_MODE={self.refresh!r}: use one of {', '.join(REFRESH_MODES)}")
        if self.session_mode not in SESSION_MODES:
            raise JanConfigError(
                f"SESSION_MODE={self.session_mode!r}: use one of {', '.join(SESSION_MODES)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JanConfig:
        """BASE, MODEL, API_KEY, LOADTEST_TOKEN, REFRESH_MODE, REFRESH_MARGIN_S,
        SESSION_MODE; SINGLE_RUN decides the defaults (the seed's flow: refresh always;
        load: refresh near expiry)."""
        single = _flag(env.get("SINGLE_RUN", ""))
        try:
            margin = float(env.get("REFRESH_MARGIN_S") or 60)
        except ValueError:
            raise JanConfigError(
                f"REFRESH_MARGIN_S={env.get('REFRESH_MARGIN_S')!r} is not a number") from None
        return cls(
            base=(env.get("BASE") or "").rstrip("/"),
            model=env.get("MODEL") or "jan-v1-4b",
            api_key=env.get("API_KEY") or "",
            loadtest_token=env.get("LOADTEST_TOKEN") or "",
            refresh=(env.get("REFRESH_MODE") or ("always" if single else "expiry")).lower(),
            refresh_margin=margin,
            session_mode=(env.get("SESSION_MODE") or "new").lower(),
            verbose=single,
        )


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on", "y", "t"}


def log(config: JanConfig, message: str) -> None:
    """A step line of the functional flow (SINGLE_RUN); silent under load."""
    if config.verbose:  # a step line may quote BASE or an error: no credentials in it
        print(mask_secrets(message), file=sys.stderr, flush=True)


def failure_line(tag: str, resp: Any) -> str:
    """`[STEP] ❌ Failed (status N)`, with the network error when there was one."""
    error = getattr(resp, "error", "") or ""
    return f"[{tag}] ❌ Failed (status {resp.status}){': ' + error if error else ''}"


def refresh_token_from(headers: Any) -> str:
    """The `jan_refresh_token` value from a response's Set-Cookie header(s), or ""."""
    values = headers.getall("Set-Cookie") if hasattr(headers, "getall") else [
        headers.get("Set-Cookie") or ""]
    for value in values:
        match = _REFRESH_COOKIE_RE.search(value)
        if match:
            return match.group(1)
    return ""


def _access_token(resp: Any) -> str:
    body = _json(resp)
    token = body.get("access_token") if isinstance(body, dict) else None
    return token if isinstance(token, str) else ""


def _json(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _has_access_token(resp: Any) -> bool:
    return bool(_access_token(resp))


class Session:
    """One guest identity. Create with `await Session.start(http, config, metrics)`."""

    def __init__(self, config: JanConfig, metrics: FlowMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.access_token = ""
        self.refresh_token = ""
        self.expires_at = 0.0  # time.monotonic() at which the access token expires
        self._lock = asyncio.Lock()  # one refresh at a time: refresh tokens rotate

    def __repr__(self) -> str:  # never the tokens
        state = "logged in" if self.access_token else "logged out"
        return f"<Session {state}>"

    @property
    def logged_in(self) -> bool:
        return bool(self.access_token)

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """JSON content type, x-loadtest-token, and the bearer: the access token once
        logged in, else API_KEY (the original scripts' precedence)."""
        h = {"Content-Type": "application/json"}
        if extra:
            h.update(extra)
        cfg = self.config
        if cfg.api_key:
            h["Authorization"] = f"Bearer {cfg.api_key}"
        if cfg.loadtest_token:
            h[LOADTEST_HEADER] = cfg.loadtest_token
        if self.access_token:
            h["Authorization"] = f"Bearer {self.access_token}"
        return h

    def _accept(self, resp: Any) -> None:
        body = _json(resp)
        self.access_token = _access_token(resp)
        self.refresh_token = refresh_token_from(resp.headers) or self.refresh_token
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            expires_in = DEFAULT_EXPIRES_IN
        self.expires_at = time.monotonic() + float(expires_in)

    def _take(self, resp: Any, started: float, trend: str, step: str) -> bool:
        """A login or refresh response: time it, check it carries an access token, take
        the tokens, count the outcome (a failure is logged here, a success by the caller)."""
        self.metrics.time(trend, started)
        ok = check(resp, {
            f"{step} status 200": lambda r: r.status == 200,
            f"{step} has access_token": _has_access_token,
        })
        if ok:
            self._accept(resp)
        else:
            log(self.config, failure_line(step.upper(), resp))
        return self.metrics.outcome(ok)

    async def login(self, http: Any) -> bool:
        """POST /v1/auth/guest-login: the seed's step 1."""
        cfg = self.config
        log(cfg, "[GUEST LOGIN] Starting guest login...")
        started = time.perf_counter()
        resp = await http.post(f"{cfg.base}/v1/auth/guest-login", json={},
                               headers=self.headers(), name="/v1/auth/guest-login")
        ok = self._take(resp, started, LOGIN_TREND, "guest login")
        if ok:
            log(cfg, "[GUEST LOGIN] ✅ Success!" + (
                "" if self.refresh_token else " (no refresh token cookie)"))
        return ok

    async def refresh(self, http: Any) -> bool:
        """GET /v1/auth/refresh-token with the refresh cookie: the seed's refresh step."""
        cfg = self.config
        if not self.refresh_token:
            log(cfg, "[REFRESH TOKEN] ⚠️ No refresh token available, skipping")
            return False
        async with self._lock:
            log(cfg, "[REFRESH TOKEN] Refreshing access token...")
            started = time.perf_counter()
            # `cookies=` overrides the VU jar's value of the same name: a pooled session
            # may run on a VU whose jar holds another guest's refresh token. A refresh
            # token comes only with an access token, so the bearer is always the latter.
            resp = await http.get(f"{cfg.base}/v1/auth/refresh-token", headers=self.headers(),
                                  cookies={REFRESH_COOKIE: self.refresh_token},
                                  name="/v1/auth/refresh-token")
            ok = self._take(resp, started, REFRESH_TREND, "refresh token")
            if ok:
                log(cfg, "[REFRESH TOKEN] ✅ Success! Expires in "
                         f"{self.expires_at - time.monotonic():.0f} seconds")
            return ok

    def near_expiry(self) -> bool:
        return time.monotonic() >= self.expires_at - self.config.refresh_margin

    def needs_refresh(self) -> bool:
        return self.config.refresh == "always" or self.near_expiry()

    async def ensure_fresh(self, http: Any) -> None:
        """Before an API request: refresh as the configured mode says."""
        if self.refresh_token and self.needs_refresh():
            await self.refresh(http)

    @classmethod
    async def start(cls, http: Any, config: JanConfig, metrics: FlowMetrics) -> Session | None:
        """The seed's opening: guest login, then refresh. None if the login failed."""
        session = cls(config, metrics)
        if not await session.login(http):
            log(config, "❌ Guest login failed, aborting")
            return None
        await session.refresh(http)
        return session


class SessionPool:
    """Guest sessions reused across iterations and VUs of one process.

    A session is lent to one iteration at a time; a lent-out session is refreshed
    first if its access token is near expiry, so pooled tokens never go stale.
    """

    def __init__(self, config: JanConfig, metrics: FlowMetrics, max_size: int = 0) -> None:
        self.config = config
        self.metrics = metrics
        self.max_size = max_size  # 0: as many as concurrent iterations need
        self._idle: list[Session] = []
        self.size = 0

    @asynccontextmanager
    async def lend(self, http: Any) -> AsyncIterator[Session | None]:
        session = self._idle.pop() if self._idle else None
        if session is not None and session.near_expiry() and not await session.refresh(http):
            session = None  # its refresh token is no good any more: a new guest
            self.size -= 1
        if session is None:
            session = await Session.start(http, self.config, self.metrics)
            if session is None:
                yield None
                return
            self.size += 1
        try:
            yield session
        finally:
            if session.logged_in and (not self.max_size or len(self._idle) < self.max_size):
                self._idle.append(session)

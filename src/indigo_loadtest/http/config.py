"""Settings of one HTTP client (k6's per-run HTTP options)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import __version__
from .limits import DEFAULT_LIMITS, Limits

DEFAULT_USER_AGENT = f"indigo-loadtest/{__version__}"
# k6's defaults: 60 s per request, 10 redirects, 30 s dial timeout.
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_REDIRECTS = 10
DEFAULT_CONNECT_TIMEOUT = 30.0
# k6 caches DNS answers for 5 minutes by default.
DEFAULT_DNS_TTL = 300.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_timeout(value: float | int | str | None, default: float = DEFAULT_TIMEOUT) -> float:
    """Seconds from a number of seconds or a k6 duration string ("500ms", "30s", "2m")."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise TypeError("timeout must be a number of seconds or a duration string like '30s'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m is None:
            raise ValueError(f"invalid timeout {value!r}: use seconds or a duration like '30s'")
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise TypeError("timeout must be a number of seconds or a duration string like '30s'")
    if seconds <= 0:
        raise ValueError(f"timeout must be positive, got {value!r}")
    return seconds


@dataclass
class ClientConfig:
    """Options shared by the clients of a run (every VU gets its own Client)."""

    debug: bool = False
    debug_bodies: bool = True  # --http-debug prints heads only; DEBUG / =full bodies too
    debug_output: str = ""  # --log-output: "" (stderr), "stdout", "none" or a file path
    throw: bool = False  # --throw: a failed request raises RequestFailed
    timeout: float = DEFAULT_TIMEOUT  # seconds, for the whole request
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    insecure_skip_tls_verify: bool = False
    discard_response_bodies: bool = False
    user_agent: str = DEFAULT_USER_AGENT
    no_connection_reuse: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    dns_ttl: float = DEFAULT_DNS_TTL
    limits: Limits = DEFAULT_LIMITS  # what one response may take (http.limits)

    def __post_init__(self) -> None:
        self.timeout = parse_timeout(self.timeout)
        self.connect_timeout = parse_timeout(self.connect_timeout, DEFAULT_CONNECT_TIMEOUT)
        if not isinstance(self.max_redirects, int) or self.max_redirects < 0:
            raise ValueError(
                f"max_redirects must be a non-negative integer, got {self.max_redirects!r}")

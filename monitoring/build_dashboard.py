"""Generate grafana/dashboards/indigo-loadtest.json (run after editing; the test suite
checks that the committed JSON matches this script's output).

    python monitoring/build_dashboard.py

Series names are those of `--out prometheus-rw` (k6's remote-write names): counters
`k6_<metric>_total`, rates `k6_<metric>_rate`, gauges `k6_<metric>`, trends one gauge
per stat of K6_PROMETHEUS_RW_TREND_STATS (default p(95),p(99),min,max), time trends
in seconds. Panels only use those four stats, so the default setting is enough.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "grafana" / "dashboards" / "indigo-loadtest.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SEL = 'testid=~"$testid", test_case=~"$test_case"'
RATE = "[$__rate_interval]"
GRID_WIDTH = 24


def target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE, "editorMode": "code", "expr": expr,
        "legendFormat": legend, "range": True, "instant": False, "refId": ref,
    }


def targets(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def trend_targets(metric: str) -> list[dict[str, Any]]:
    """p95/p99/max over all series of a trend (an upper bound: percentiles of separate
    tag sets cannot be merged) and the overall min."""
    m = f"k6_{metric}"
    return targets(
        (f"max({m}_p95{{{SEL}}})", "p95"),
        (f"max({m}_p99{{{SEL}}})", "p99"),
        (f"min({m}_min{{{SEL}}})", "min"),
        (f"max({m}_max{{{SEL}}})", "max"),
    )


def timeseries(title: str, desc: str, tgts: list[dict[str, Any]], unit: str, w: int,
               h: int = 8, **field_defaults: Any) -> dict[str, Any]:
    return {
        "type": "timeseries", "title": title, "description": desc, "datasource": DATASOURCE,
        "gridPos": {"w": w, "h": h},
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {
                    "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                    "showPoints": "never", "spanNulls": True,
                },
                **field_defaults,
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        "targets": tgts,
    }


def stat(title: str, desc: str, expr: str, unit: str, calc: str = "lastNotNull") -> dict[str, Any]:
    return {
        "type": "stat", "title": title, "description": desc, "datasource": DATASOURCE,
        "gridPos": {"w": 4, "h": 4},
        "fieldConfig": {"defaults": {"unit": unit, "decimals": 2}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": [calc], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
            "orientation": "auto", "textMode": "auto",
        },
        "targets": targets((expr, "")),
    }


def trend_panel(title: str, metric: str, what: str, unit: str = "s", w: int = 8) -> dict[str, Any]:
    return timeseries(title, f"{what} (`{metric}`: p95, p99, min, max)", trend_targets(metric),
                      unit, w)


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"w": GRID_WIDTH, "h": 1}}


FAILED = f'sum(k6_http_reqs_total{{{SEL}, expected_response="false"}})'
ALL_REQS = f"sum(k6_http_reqs_total{{{SEL}}})"
REQ_RATE = f"sum(rate(k6_http_reqs_total{{{SEL}}}{RATE}))"
FAILED_RATE = f'sum(rate(k6_http_reqs_total{{{SEL}, expected_response="false"}}{RATE}))'


def overview() -> list[dict[str, Any]]:
    return [
        row("Overview"),
        stat("HTTP requests", "All requests (`http_reqs`)", ALL_REQS, "short"),
        stat("Failed requests", "Share of requests with an unexpected status or a network "
             "error over the whole test (`http_req_failed`)",
             f"({FAILED} or vector(0)) / {ALL_REQS}", "percentunit"),
        stat("Peak request rate", "Highest requests per second", REQ_RATE, "reqps", "max"),
        stat("http_req_duration p95", "95th percentile request duration (highest over "
             "endpoints)", f"max(k6_http_req_duration_p95{{{SEL}}})", "s"),
        stat("Time to first token p95", "95th percentile time to first token (`llm_ttft_ms`)",
             f"max(k6_llm_ttft_ms_p95{{{SEL}}})", "s"),
        stat("LLM errors", "Broken streams, error events, malformed chunks (`llm_errors`)",
             f"sum(k6_llm_errors_total{{{SEL}}}) or vector(0)", "short"),
    ]


def traffic() -> list[dict[str, Any]]:
    return [
        row("Traffic"),
        timeseries("Request rate", "Requests per second, all and by status (`http_reqs`)",
                   targets((REQ_RATE, "all"),
                           (f"sum by (status) (rate(k6_http_reqs_total{{{SEL}}}{RATE}))",
                            "{{status}}")), "reqps", 12),
        timeseries("Error rate", "Share of failed requests per interval (`http_req_failed`)",
                   targets((f"({FAILED_RATE} or vector(0)) / {REQ_RATE}", "failed")),
                   "percentunit", 12, min=0),
        timeseries("VUs", "Active and allocated virtual users (`vus`, `vus_max`)",
                   targets((f"sum(k6_vus{{{SEL}}})", "vus"),
                           (f"sum(k6_vus_max{{{SEL}}})", "vus_max")), "short", 8),
        timeseries("Iterations rate", "Completed iterations per second by scenario "
                   "(`iterations`)",
                   targets((f"sum by (scenario) (rate(k6_iterations_total{{{SEL}}}{RATE}))",
                            "{{scenario}}")), "short", 8),
        timeseries("Dropped iterations", "Iterations an arrival-rate executor could not "
                   "start because no VU was free (`dropped_iterations`)",
                   targets((f"sum(increase(k6_dropped_iterations_total{{{SEL}}}{RATE})) "
                            "or vector(0)", "per interval"),
                           (f"sum(k6_dropped_iterations_total{{{SEL}}}) or vector(0)",
                            "total")), "short", 8),
        timeseries("Data sent / received", "Bytes per second (`data_sent`, `data_received`)",
                   targets((f"sum(rate(k6_data_sent_total{{{SEL}}}{RATE}))", "sent"),
                           (f"sum(rate(k6_data_received_total{{{SEL}}}{RATE}))", "received")),
                   "Bps", 8),
        timeseries("Checks rate", "Share of passed checks, by check (`checks`)",
                   targets((f"avg by (check) (k6_checks_rate{{{SEL}}})", "{{check}}")),
                   "percentunit", 8, min=0, max=1),
        timeseries("http_req_failed rate", "Failed share of all requests so far, overall "
                   "and by endpoint name (`http_req_failed`)",
                   targets((f"({FAILED} or vector(0)) / {ALL_REQS}", "all"),
                           (f'sum by (name) (k6_http_reqs_total{{{SEL}, '
                            f'expected_response="false"}}) / sum by (name) '
                            f"(k6_http_reqs_total{{{SEL}}})", "{{name}}")),
                   "percentunit", 8, min=0),
    ]


def http_timings() -> list[dict[str, Any]]:
    phases = ("blocked", "connecting", "tls_handshaking", "sending", "waiting", "receiving")
    return [
        row("HTTP timings"),
        trend_panel("http_req_duration", "http_req_duration",
                    "Request duration: sending + waiting + receiving", w=12),
        timeseries("http_req_duration p95 by endpoint", "95th percentile request duration "
                   "per endpoint name (`http_req_duration`)",
                   targets((f"max by (name) (k6_http_req_duration_p95{{{SEL}}})", "{{name}}")),
                   "s", 12),
        timeseries("Timing breakdown (p95)", "95th percentile of each request phase "
                   "(`http_req_blocked`, `_connecting`, `_tls_handshaking`, `_sending`, "
                   "`_waiting`, `_receiving`)",
                   targets(*((f"max(k6_http_req_{p}_p95{{{SEL}}})", p) for p in phases)),
                   "s", 12),
        trend_panel("Iteration duration", "iteration_duration", "Duration of one iteration",
                    w=12),
    ]


def llm() -> list[dict[str, Any]]:
    return [
        row("LLM"),
        trend_panel("Time to first token", "llm_ttft_ms",
                    "Request start to the first content or tool-call delta"),
        trend_panel("Inter-token latency", "llm_itl_ms",
                    "Gap between consecutive content events"),
        trend_panel("Time per output token", "llm_tpot_ms",
                    "(total - TTFT) / (output tokens - 1)"),
        trend_panel("Tokens per second", "llm_tokens_per_sec",
                    "Output tokens over the request's total time", unit="none"),
        trend_panel("Output tokens", "llm_output_tokens",
                    "Completion tokens per request (usage, else counted)", unit="none"),
        trend_panel("LLM TTFB", "llm_ttfb_ms", "Request start to the response headers"),
        trend_panel("LLM total time", "llm_total_ms", "Request start to the end of the body"),
        trend_panel("LLM receiving time", "llm_receiving_ms",
                    "Response headers to the end of the body"),
        trend_panel("Queue time", "llm_queue_ms", "Server-reported queueing (X-Queue-Time)"),
        timeseries("LLM errors", "Streams that ended without [DONE] / response.completed, "
                   "error events, malformed chunks (`llm_errors`)",
                   targets((f"sum(rate(k6_llm_errors_total{{{SEL}}}{RATE})) or vector(0)",
                            "errors/s"),
                           (f"sum(k6_llm_errors_total{{{SEL}}}) or vector(0)", "total")),
                   "short", 24),
    ]


def layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every panel an id and an x/y: left to right, wrapping at the grid width."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > GRID_WIDTH:
            x, y, row_h = 0, y + row_h, 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        row_h = max(row_h, h)
        if p["type"] == "row":
            x, y, row_h = 0, y + h, 0
    return panels


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [], "regex": "", "sort": 2, "hide": 0, "skipUrlSync": False,
    }


def dashboard() -> dict[str, Any]:
    return {
        "id": None,
        "uid": "indigo-loadtest",
        "title": "Indigo load test",
        "description": "indigo-loadtest runs (k6-compatible Prometheus remote-write series) "
        "with LLM streaming metrics",
        "tags": ["indigo-loadtest", "k6", "llm"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "5s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m"]},
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "templating": {"list": [
            variable("test_case", "Test case", "label_values(k6_http_reqs_total, test_case)"),
            variable("testid", "Test ID",
                     'label_values(k6_http_reqs_total{test_case=~"$test_case"}, testid)'),
        ]},
        "panels": layout([*overview(), *llm(), *traffic(), *http_timings()]),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)

"""Helpers of the monitoring tests: Prometheus' HTTP API and a registry filled with
every metric the dashboard reads."""

from __future__ import annotations

import json
import math
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from indigo_loadtest.metrics import EMPTY, Registry, tagset
from indigo_loadtest.monitoring.stack import NativePrometheus

TIME_TRENDS = ("llm_ttft_ms", "llm_itl_ms", "llm_tpot_ms", "llm_ttfb_ms", "llm_receiving_ms",
               "llm_total_ms", "llm_queue_ms")
PLAIN_TRENDS = ("llm_tokens_per_sec", "llm_output_tokens")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusAPI:
    """The HTTP API of a running Prometheus (loopback only)."""

    def __init__(self, server: NativePrometheus) -> None:
        self.server = server
        self.url = server.url
        self.write_url = server.remote_write_url

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector at the current time: [{"metric": {...}, "value": [t, "v"]}]."""
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def values(self, expr: str) -> dict[str, float]:
        """{__name__ or label string: value} of an instant query."""
        return {_key(r["metric"]): float(r["value"][1]) for r in self.query(expr)}

    def label_values(self, label: str, match: str) -> list[str]:
        return self.get(f"/api/v1/label/{label}/values", **{"match[]": match})

    def wait_for(self, expr: str, ok: Callable[[list[dict[str, Any]]], bool],
                 timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll until `ok(result)`; bounded by `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if ok(result) or time.monotonic() > deadline:
                return result
            time.sleep(0.05)


def _key(metric: dict[str, str]) -> str:
    return metric.get("__name__", "") or json.dumps(metric, sort_keys=True)


def finite(result: list[dict[str, Any]]) -> bool:
    return bool(result) and all(math.isfinite(float(r["value"][1])) for r in result)


def fill_registry(reg: Registry) -> None:
    """One round of samples for every metric the dashboard uses: 22 requests (2 failed),
    checks, iterations, a dropped iteration, VUs, and all LLM metrics."""
    b = reg.builtin
    base = tagset({"scenario": "stream"})
    request = base.with_pairs(("method", "POST"), ("name", "chat"),
                              ("url", "http://127.0.0.1:1/v1/chat/completions"))
    ok = request.with_pairs(("status", "200"), ("expected_response", "true"), ("error", ""))
    bad = request.with_pairs(("status", "500"), ("expected_response", "false"), ("error", ""))
    for i in range(20):
        b.record_http(ok, 1.0 + i, 0.5, 0.3, 0.1, 100.0 + 10 * i, 5.0, False, 300, 1200)
    for i in range(2):
        b.record_http(bad, 0.2, 0.0, 0.0, 0.1, 50.0 + i, 1.0, True, 300, 80)
    reg.record(b.vus, 3, EMPTY)
    reg.record(b.vus_max, 5, EMPTY)
    for i in range(4):
        reg.record(b.iterations, 1, base)
        reg.record(b.iteration_duration, 900.0 + 50 * i, base)
        reg.record(b.checks, 1.0, base.with_pairs(("check", "status is 200")))
        reg.record(b.checks, float(i % 2), base.with_pairs(("check", "has content")))
    reg.record(b.dropped_iterations, 1, base)
    llm = base.with_pairs(("status", "200"), ("prompt", "short"))
    for name in TIME_TRENDS:
        m = reg.metric(name, "trend", True)
        for i in range(10):
            reg.record(m, 20.0 + 7.5 * i, llm)
    for name in PLAIN_TRENDS:
        m = reg.metric(name, "trend")
        for i in range(10):
            reg.record(m, 30.0 + i, llm)
    reg.record(reg.metric("llm_errors", "counter"), 1, llm)

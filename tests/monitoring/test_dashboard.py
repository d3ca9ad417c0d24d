"""The shipped Grafana dashboard: a valid model, and every query answers from real data."""

from __future__ import annotations

import asyncio
import json
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml
from prom_helpers import PrometheusAPI, fill_registry, finite

from indigo_loadtest.metrics import Registry
from indigo_loadtest.monitoring.stack import DASHBOARD_UID, DATASOURCE_UID
from indigo_loadtest.outputs.base import RunInfo
from indigo_loadtest.outputs.prometheus_rw import PrometheusRemoteWriteOutput

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "indigo-loadtest.json"
PANEL_TYPES = {"row", "stat", "timeseries"}


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def all_targets(dash: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in all_panels(dash) for t in p.get("targets", [])]


def test_committed_json_is_the_generator_output() -> None:
    build = runpy.run_path(str(MONITORING / "build_dashboard.py"))
    assert DASHBOARD.read_text() == build["render"](), (
        "run `python monitoring/build_dashboard.py` after editing it"
    )


def test_dashboard_is_a_valid_grafana_model() -> None:
    dash = load_dashboard()
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time", "annotations"):
        assert key in dash, key
    assert dash["uid"] == DASHBOARD_UID
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    panels = all_panels(dash)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        assert p["type"] in PANEL_TYPES and p["title"]
        g = p["gridPos"]
        assert set(g) == {"h", "w", "x", "y"}
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["datasource"]["uid"] == DATASOURCE_UID and t["expr"].strip()
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names == ["test_case", "testid"]
    for v in dash["templating"]["list"]:
        assert v["type"] == "query" and v["datasource"]["uid"] == DATASOURCE_UID
        assert v["includeAll"] and v["allValue"] == ".*"
        assert v["definition"].startswith("label_values(")
    # Every query filters on both variables, so one run can be singled out.
    for title, t in all_targets(dash):
        selectors = re.findall(r"\{[^}]*\}", t["expr"])
        assert selectors, title
        for selector in selectors:
            assert 'testid=~"$testid"' in selector, title
            assert 'test_case=~"$test_case"' in selector, title


def test_dashboard_covers_the_seed_panels_and_the_llm_metrics() -> None:
    exprs = " ".join(t["expr"] for _, t in all_targets(load_dashboard()))
    for metric in (
        # the seed dashboard
        "k6_http_reqs_total", "k6_llm_ttfb_ms_p95", "k6_llm_tokens_per_sec_p95",
        "k6_llm_total_ms_p95", "k6_llm_receiving_ms_p95", "k6_llm_queue_ms_p95",
        "k6_http_req_duration_p95", "k6_vus", "k6_http_req_blocked_p95",
        "k6_http_req_connecting_p95", "k6_http_req_tls_handshaking_p95",
        "k6_http_req_sending_p95", "k6_http_req_waiting_p95", "k6_http_req_receiving_p95",
        "k6_checks_rate", "k6_data_sent_total", "k6_data_received_total",
        "k6_dropped_iterations_total", "k6_iteration_duration_p95", "k6_iterations_total",
        # real streaming metrics
        "k6_llm_ttft_ms_p95", "k6_llm_itl_ms_p95", "k6_llm_tpot_ms_p95",
        "k6_llm_output_tokens_p95", "k6_llm_errors_total",
    ):
        assert metric in exprs, metric


def test_provisioning_matches_the_dashboard() -> None:
    ds = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml")
                        .read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/dashboards.yml")
                               .read_text())["providers"]
    compose = yaml.safe_load((MONITORING / "docker-compose.yml").read_text())
    prom, grafana = compose["services"]["prometheus"], compose["services"]["grafana"]
    assert "--web.enable-remote-write-receiver" in prom["command"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "admin"
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in [*prom["volumes"],
                                                               *grafana["volumes"]]
                  if v.startswith("./"))
    for host_path in mounts:
        assert (MONITORING / host_path).exists(), host_path
    assert mounts["./grafana/dashboards"] == providers[0]["options"]["path"]
    assert (mounts["./grafana/dashboards"] + "/" + DASHBOARD.name
            == grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])


def grafana_escape(value: str) -> str:
    """A variable value as Grafana puts it into a PromQL regex string literal."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value)


def substitute(expr: str, testid: str, test_case: str) -> str:
    """What Grafana sends for one selected run."""
    return (expr.replace("$testid", grafana_escape(testid))
            .replace("$test_case", grafana_escape(test_case))
            .replace("$__rate_interval", "1m").replace("$__interval", "5s"))


@pytest.fixture(scope="module")
def dashboard_run(prometheus: PrometheusAPI) -> tuple[str, str]:
    """A registry with every metric the dashboard reads, pushed a few times with new
    samples in between (so rates and increases are non-zero)."""
    testid, test_case = "dash-run.1", "dashboard"  # a regex character on purpose
    reg = Registry()
    fill_registry(reg)
    out = PrometheusRemoteWriteOutput.from_config(
        {"K6_PROMETHEUS_RW_PUSH_INTERVAL": "100ms"}, prometheus.write_url)

    async def main() -> None:
        await out.start(reg, RunInfo(testid=testid, test_case=test_case))
        for _ in range(3):
            pushes = out.pushes
            for _ in range(200):  # bounded wait for the next periodic push
                if out.pushes > pushes:
                    break
                await asyncio.sleep(0.02)
            fill_registry(reg)
        await out.stop()

    asyncio.run(main())
    assert out.failed_pushes == 0 and out.pushes >= 4
    return testid, test_case


def test_every_dashboard_query_returns_data(prometheus: PrometheusAPI,
                                            dashboard_run: tuple[str, str]) -> None:
    testid, test_case = dashboard_run
    empty = []
    for title, t in all_targets(load_dashboard()):
        expr = substitute(t["expr"], testid, test_case)
        result = prometheus.query(expr)
        if not finite(result):
            empty.append(f"{title}: {expr} -> {result}")
    assert not empty, "\n".join(empty)


def test_dashboard_numbers_match_the_registry(prometheus: PrometheusAPI,
                                              dashboard_run: tuple[str, str]) -> None:
    testid, test_case = dashboard_run
    dash = load_dashboard()
    stat = {p["title"]: p["targets"][0]["expr"] for p in all_panels(dash) if p["type"] == "stat"}
    (requests,) = prometheus.values(substitute(stat["HTTP requests"], testid, test_case)).values()
    assert requests == 22 * 4
    (failed,) = prometheus.values(substitute(stat["Failed requests"], testid, test_case)).values()
    assert failed == pytest.approx(2 / 22)


def test_variable_queries_list_the_run(prometheus: PrometheusAPI,
                                       dashboard_run: tuple[str, str]) -> None:
    testid, test_case = dashboard_run
    variables = {v["name"]: v["definition"] for v in load_dashboard()["templating"]["list"]}
    for name, want in (("test_case", test_case), ("testid", testid)):
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", variables[name])
        assert m and m.group(2) == name
        match = m.group(1).replace("$test_case", grafana_escape(test_case))
        assert want in prometheus.label_values(name, match)

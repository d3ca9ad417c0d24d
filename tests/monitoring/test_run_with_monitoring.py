"""A real `indigo-loadtest run --monitor` pushing to a real Prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prom_helpers import PrometheusAPI, free_port

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


SCENARIO = '''\
"""Requests Prometheus' health endpoint and records an LLM-style trend."""
from indigo_loadtest import Counter, Trend, check, env, sleep

ttft = Trend("llm_ttft_ms", time=True)
llm_errors = Counter("llm_errors")
options = {"vus": 2, "duration": "1500ms"}


async def default(vu):
    r = await vu.http.get(env["TARGET"] + "/-/healthy")
    check(r, {"status is 200": lambda r: r.status == 200})
    ttft.add(10 + vu.iteration % 7)
    await sleep(0.02)
'''


def cli() -> str:
    exe = Path(sys.executable).parent / "indigo-loadtest"
    assert exe.exists(), "install the project: pip install -e '.[test]'"
    return str(exe)


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    scenario = tmp_path / "monitored.py"
    scenario.write_text(SCENARIO)
    env = {k: v for k, v in os.environ.items() if "PROMETHEUS_RW" not in k}
    return subprocess.run(
        [cli(), "run", str(scenario), "--no-color", "--results-dir", str(tmp_path), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_run_monitor_pushes_the_summary_counts(prometheus: PrometheusAPI, testid: str,
                                               tmp_path: Path) -> None:
    export = tmp_path / "summary.json"
    proc = run_cli(
        tmp_path, "--monitor", "--tag", f"testid={testid}", "--summary-export", str(export),
        "-e", f"TARGET={prometheus.url}", "-e", "BASE=" + prometheus.url,
        "-e", f"K6_PROMETHEUS_RW_SERVER_URL={prometheus.write_url}",
        "-e", "K6_PROMETHEUS_RW_PUSH_INTERVAL=300ms",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "prometheus-rw (" in proc.stdout + proc.stderr  # the run header names the output
    assert f"var-testid={testid}" in proc.stdout + proc.stderr  # and the dashboard URL
    summary = json.loads(export.read_text())["metrics"]
    requests = summary["http_reqs"]["count"]
    assert requests > 10

    sel = f'testid="{testid}"'
    (pushed,) = prometheus.values(f"sum(k6_http_reqs_total{{{sel}}})").values()
    assert pushed == requests
    (iterations,) = prometheus.values(f"sum(k6_iterations_total{{{sel}}})").values()
    assert iterations == summary["iterations"]["count"]
    # Several pushes during the run, not only the final one.
    samples = prometheus.query(f"count_over_time(k6_http_reqs_total{{{sel}}}[5m])")
    assert samples and max(float(s["value"][1]) for s in samples) >= 3
    labels = prometheus.query(f"k6_llm_ttft_ms_p95{{{sel}}}")[0]["metric"]
    assert labels["test_case"] == "monitored" and labels["scenario"] == "default"
    (p95,) = prometheus.values(f"k6_llm_ttft_ms_p95{{{sel}}}").values()
    assert 0.010 <= p95 <= 0.017  # milliseconds in the registry, seconds in Prometheus


def test_run_monitor_without_prometheus_is_one_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1/write"
    proc = run_cli(tmp_path, "--monitor", "-e", f"K6_PROMETHEUS_RW_SERVER_URL={url}",
                   "-e", "BASE=http://127.0.0.1:1", "-e", "TARGET=http://127.0.0.1:1")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert f"Prometheus does not answer at {url}" in proc.stderr

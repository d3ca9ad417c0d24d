"""With `--workers`, the remote-write output pushes the workers' live metrics while the
run goes on (the run's own registry is filled only when the workers finish)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from prom_helpers import PrometheusAPI
from test_run_with_monitoring import cli

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


SCENARIO = '''\
"""Requests Prometheus' health endpoint for a few seconds."""
from indigo_loadtest import env, sleep

options = {"vus": 2, "duration": "4s"}


async def default(vu):
    await vu.http.get(env["TARGET"] + "/-/healthy")
    await sleep(0.05)
'''


def test_workers_push_live_series_before_the_run_ends(prometheus: PrometheusAPI,
                                                      testid: str, tmp_path: Path) -> None:
    scenario = tmp_path / "live.py"
    scenario.write_text(SCENARIO)
    export = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if "PROMETHEUS_RW" not in k}
    proc = subprocess.Popen(
        [cli(), "run", str(scenario), "-q", "--no-summary", "--workers", "2",
         "--results-dir", str(tmp_path), "--summary-export", str(export),
         "--tag", f"testid={testid}", "--out", f"prometheus-rw={prometheus.write_url}",
         "-e", f"TARGET={prometheus.url}", "-e", f"BASE={prometheus.url}",
         "-e", "K6_PROMETHEUS_RW_PUSH_INTERVAL=200ms"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    expr = f'sum(k6_http_reqs_total{{testid="{testid}"}})'
    live: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline and not live:
            live = {k: v for k, v in prometheus.values(expr).items() if v > 0}
            time.sleep(0.1)
        still_running = proc.poll() is None
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    assert live and still_running, "no series reached Prometheus while the run went on"
    total = json.loads(export.read_text())["metrics"]["http_reqs"]["count"]
    (live_count,) = live.values()
    assert 0 < live_count < total  # a mid-run value, not the final push
    (final,) = prometheus.values(expr).values()
    assert final == total  # and the final push has every worker's requests

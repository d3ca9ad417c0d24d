"""Helpers of the load-clock tests (tests/cli/test_load_clock.py, tests/ray): one
arrival-rate plan, whose request count the plan itself sets, run through the real CLI;
its rates and its run record's series checked against the plan."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from cli_helpers import clean_env, run_cli, write_scenario

from indigo_loadtest.metrics.timeseries import interval_widths

RATE = 20  # iterations per second, one request each
# 4.5 s: the last interval of the series is half a second wide (1 s points), wide enough
# for its rate to be compared with the plan's. The abortOnFail threshold, below the plan's
# rate, is judged while the load runs (every 2 s, on the live metrics: with shards, their
# snapshots): a run that keeps to the plan must not be stopped by it.
ARRIVALS = f'''"""One request per iteration at a fixed arrival rate."""
from indigo_loadtest import env

options = {{"scenarios": {{"paced": {{
    "executor": "constant-arrival-rate", "rate": {RATE}, "timeUnit": "1s",
    "duration": "4500ms", "preAllocatedVUs": 10}}}},
    "thresholds": {{"http_reqs": [{{"threshold": "rate>{RATE * 3 // 4}", "abortOnFail": True}}]}}}}


async def default(vu):
    await vu.http.get(env["BASE"] + "/v1/models")
'''
TOLERANCE = 0.02  # the issue's bound: the backends' rates agree within 2 %


def run_arrivals(workdir: Path, base: str, name: str, *flags: str,
                 env: dict[str, str] | None = None, timeout: float = 60,
                 run: Callable[..., CompletedProcess[str]] = run_cli) -> dict[str, Any]:
    """Run the arrival-rate plan (with `run`: the CLI, by default run_cli); its summary
    export and run record."""
    write_scenario(workdir, "arrivals", ARRIVALS)
    export = workdir / f"{name}.json"
    done = run("run", "arrivals", *flags, "-q", "--summary-export", str(export),
                   cwd=workdir, env=env or clean_env(BASE=base), timeout=timeout)
    assert done.returncode == 0, done.stderr
    record = workdir / f"{name}.timeseries.json.gz"
    return {"export": json.loads(export.read_text()),
            "record": json.loads(gzip.decompress(record.read_bytes()))}


def rates(run: dict[str, Any]) -> dict[str, float]:
    metrics = run["export"]["metrics"]
    return {name: metrics[name]["rate"] for name in ("http_reqs", "iterations")}


def assert_same_rates(runs: dict[str, dict[str, Any]]) -> None:
    """Every run's rates within TOLERANCE of the first's, and of the plan's."""
    base_name, base = next(iter(runs.items()))
    for name, run in runs.items():
        for metric, rate in rates(run).items():
            assert abs(rate - RATE) <= TOLERANCE * RATE, (name, metric, rates(run))
            assert abs(rate - rates(base)[metric]) <= TOLERANCE * RATE, (
                name, base_name, metric, rates(run), rates(base))


def assert_series_paced(record: dict[str, Any]) -> None:
    """The first and the last interval of the request series hold their width's share
    of the plan's requests (±1 request, and ±1 for the arrival falling either side)."""
    series = record["series"]
    counts = series["metrics"]["http_reqs"]["cols"]["value"]
    widths = interval_widths(series["t"])
    assert sum(counts) == record["totals"]["http_reqs"]["count"]
    for k in (0, -1):
        expected = RATE * widths[k]
        assert abs(counts[k] - expected) <= 2, (k, counts, series["t"])

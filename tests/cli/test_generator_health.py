"""The tool says when it is the bottleneck: real runs of the CLI against a loopback server,
one whose iterations hold the event loop with CPU work, one that mostly sleeps."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import LocalServer, clean_env, run_cli, write_scenario

from indigo_loadtest.engine.health import ADVICE_OWN, LAG_LEVEL_MS
from indigo_loadtest.scenario.errors import ExitCode

# 50 ms of CPU per iteration. Counted in process time, not wall time: on a shared machine
# the OS may run other processes meanwhile, and the work still takes 50 ms of CPU.
BUSY = '''
import time
from indigo_loadtest import env

async def default(vu):
    t = time.process_time()
    while time.process_time() - t < 0.05:
        pass
    await vu.http.get(env["BASE"] + "/busy")
'''
STATS = "avg,med,p(99),max,count"
LAG_WARNING = "warning: generator: event-loop lag p(99)="
CPU_WARNING = "warning: generator: CPU p(90)="
WAIT_WARNING = "warning: generator: waiting for a CPU p(99)="
START_WARNING = "warning: generator: arrival-rate iterations started p(99)="


def run(workdir: Path, name: str, server: LocalServer,
        *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    export = workdir / f"{name}.json"
    res = run_cli("run", name, "-q", "--summary-trend-stats", STATS,
                  "--summary-export", str(export), *args,
                  cwd=workdir, env=clean_env(BASE=server.url))
    metrics = json.loads(export.read_text())["metrics"] if export.exists() else {}
    return res, metrics


def test_an_iteration_that_holds_the_loop_is_reported(workdir: Path,
                                                      local_server: LocalServer) -> None:
    write_scenario(workdir, "busy", f'"""Holds the loop 50 ms per iteration."""{BUSY}'
                   'options = {"vus": 1, "duration": "2s"}\n')
    res, metrics = run(workdir, "busy", local_server)
    assert res.returncode == ExitCode.OK, res.stderr  # a warning, not a failure
    lag = metrics["generator_loop_lag"]
    # Samples at random instants of 100 ms slots: about 20, each as late as the rest of
    # the 50 ms block it fell into.
    assert lag["count"] >= 10
    assert 30 <= lag["max"] < 1000
    assert lag["p(99)"] > LAG_LEVEL_MS
    assert LAG_WARNING in res.stderr and "(level 1ms)" in res.stderr
    assert "in the generator process" in res.stderr
    assert f"warning: generator: {ADVICE_OWN}" in res.stderr
    # The process's CPU use is recorded once a second. How much of a core it got depends
    # on what else the machine runs (on a shared 2-core machine under load, 10-100%), but
    # 50 ms of CPU per iteration is far from a light run's 1%.
    assert metrics["generator_cpu_percent"]["count"] >= 2
    assert metrics["generator_cpu_percent"]["max"] > 5
    assert "GENERATOR" in res.stdout and "generator_loop_lag" in res.stdout


@pytest.mark.needs_idle_core  # a run's own loop lag, which a busy machine's wake-ups raise
def test_a_light_run_does_not_warn(workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "light", '''"""A request, then sleep."""
from indigo_loadtest import env, sleep

options = {"vus": 2, "duration": "2s"}

async def default(vu):
    await vu.http.get(env["BASE"] + "/light")
    await sleep(0.1)
''')
    res, metrics = run(workdir, "light", local_server, "--workers", "1")
    assert res.returncode == ExitCode.OK, res.stderr
    lag = metrics["generator_loop_lag"]
    assert lag["count"] >= 15  # the sampler ran the whole 2 s
    # Below the level: what the OS takes from a process on a busy machine is recorded
    # apart (generator_cpu_wait), so the loop's own lag stays near the timer's resolution
    # (the median; the p(99) of ~20 samples is nearly their max, one late wake-up of a
    # loaded machine: the warning judges a robust p(99), test_health.py).
    assert lag["med"] < LAG_LEVEL_MS, lag
    assert metrics["generator_cpu_percent"]["max"] < 50
    for warning in (LAG_WARNING, CPU_WARNING, START_WARNING, ADVICE_OWN):
        assert warning not in res.stderr, res.stderr


def test_a_threshold_on_the_loop_lag_fails_the_run(workdir: Path,
                                                   local_server: LocalServer) -> None:
    write_scenario(workdir, "busy_threshold", f'"""Busy, with a lag threshold."""{BUSY}'
                   'options = {"vus": 1, "duration": "1s", '
                   '"thresholds": {"generator_loop_lag": ["p(99)<1"]}}\n')
    res, metrics = run(workdir, "busy_threshold", local_server)
    assert res.returncode == ExitCode.THRESHOLDS_FAILED, res.stderr
    assert metrics["generator_loop_lag"]["thresholds"] == {"p(99)<1": True}  # crossed


def test_every_worker_samples_its_own_loop(workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "busy_workers", f'"""Busy in two workers."""{BUSY}'
                   'options = {"vus": 2, "duration": "2s"}\n')
    res, metrics = run(workdir, "busy_workers", local_server, "--workers", "2")
    assert res.returncode == ExitCode.OK, res.stderr
    # Both workers' samples merged: about 2 x 20.
    assert metrics["generator_loop_lag"]["count"] >= 25
    assert metrics["generator_loop_lag"]["max"] >= 30
    # Each worker is named: its loop lag over the level, or, on a machine so loaded that
    # the OS kept it from a CPU most of the time, the waiting for a CPU (each timer's
    # lateness is split between the two).
    named = {w for ln in res.stderr.splitlines()
             if ln.startswith((LAG_WARNING, WAIT_WARNING))
             for w in re.search(r" in workers? ([\d, ]+) \(level", ln).group(1).split(", ")}
    assert named == {"0", "1"}, res.stderr


def test_arrival_rate_iterations_that_start_late_are_reported(
        workdir: Path, local_server: LocalServer) -> None:
    # 40 starts a second, each followed by 50 ms of CPU: the loop cannot start them on time.
    write_scenario(workdir, "late_starts", f'"""Busy open-loop iterations."""{BUSY}'
                   'options = {"scenarios": {"a": {"executor": "constant-arrival-rate", '
                   '"rate": 40, "timeUnit": "1s", "duration": "1s", "preAllocatedVUs": 2, '
                   '"maxVUs": 2}}}\n')
    res, metrics = run(workdir, "late_starts", local_server, "--workers", "1")
    assert res.returncode == ExitCode.OK, res.stderr
    delay = metrics["generator_start_delay"]
    assert delay["count"] == metrics["iterations"]["count"]  # one sample per start
    assert delay["max"] >= 20  # a start waits for a 50 ms busy iteration: tens of ms late
    assert START_WARNING in res.stderr and "in scenario 'a'" in res.stderr

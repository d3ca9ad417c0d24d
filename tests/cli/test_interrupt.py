"""Ctrl-C: the first SIGINT stops gracefully, the second at once; both still write results."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import LocalServer, clean_env, cli_argv, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


LOOPING = '''"""Loops until stopped."""
from indigo_loadtest import env, sleep

options = {{"vus": 2, "duration": "60s", "gracefulStop": "{graceful}"}}

async def default(vu):
    await vu.http.get(env["BASE"] + "/{tag}/" + str(vu.id))
    await sleep({pause})
'''


def start_run(workdir: Path, server: LocalServer, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_argv("run", name, "--out", "json", "--quiet"), cwd=workdir,
        env=clean_env(BASE=server.url), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def wait_for_requests(server: LocalServer, prefix: str, count: int, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while len(server.paths(prefix)) < count:
        assert time.monotonic() < deadline, "the run sent no traffic"
        time.sleep(0.05)


def results(workdir: Path, name: str) -> tuple[dict, list[dict]]:
    (export,) = (workdir / "results").glob(f"{name}_*.json")
    (ndjson,) = (workdir / "results").glob(f"{name}_*.ndjson")
    points = [json.loads(line) for line in ndjson.read_text().splitlines()]
    return json.loads(export.read_text()), points


def test_first_sigint_stops_gracefully_and_writes_everything(
    workdir: Path, local_server: LocalServer
) -> None:
    write_scenario(workdir, "looping", LOOPING.format(graceful="30s", tag="graceful", pause=0.05))
    proc = start_run(workdir, local_server, "looping")
    wait_for_requests(local_server, "/graceful/", 4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    assert "stopping gracefully" in err and "Traceback" not in err
    assert "TOTAL RESULTS" in out and "interrupted" in out
    summary, points = results(workdir, "looping")
    sent = len(local_server.paths("/graceful/"))
    assert summary["metrics"]["http_reqs"]["count"] == sent
    assert sum(1 for p in points if p.get("metric") == "http_reqs" and p["type"] == "Point") == sent


def test_second_sigint_stops_at_once_and_keeps_what_was_measured(
    workdir: Path, local_server: LocalServer
) -> None:
    # Each iteration sleeps far longer than the test may take: only a hard stop ends it soon.
    write_scenario(workdir, "stuck", LOOPING.format(graceful="60s", tag="stuck", pause=120))
    proc = start_run(workdir, local_server, "stuck")
    wait_for_requests(local_server, "/stuck/", 2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # still waiting for the in-flight iterations (gracefulStop)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    assert "TOTAL RESULTS" in out
    assert "stopping now" in err and "Traceback" not in err
    summary, _ = results(workdir, "stuck")
    assert summary["metrics"]["http_reqs"]["count"] == 2


def test_sigint_during_run_all_stops_the_current_scenario_and_skips_the_rest(
    workdir: Path, local_server: LocalServer
) -> None:
    write_scenario(workdir, "a_loop", LOOPING.format(graceful="30s", tag="all-a", pause=0.05))
    write_scenario(workdir, "b_loop", LOOPING.format(graceful="30s", tag="all-b", pause=0.05))
    proc = subprocess.Popen(
        cli_argv("run", "--all", "--pause", "0", "--quiet", "--no-summary"), cwd=workdir,
        env=clean_env(BASE=local_server.url), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    wait_for_requests(local_server, "/all-a/", 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    assert "a_loop" in out and "interrupted" in out
    assert "0/2 scenarios passed, 1 not run" in out
    assert local_server.paths("/all-b/") == []
    assert list((workdir / "results").glob("a_loop_*.json"))

"""A run goes on through an unreachable target and failing iterations; setup() failing
and delegated commands."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: nothing listens there


def test_unreachable_target_and_iteration_errors_are_counted(workdir: Path) -> None:
    write_scenario(workdir, "unreachable", '''"""Nothing listens at BASE."""
from indigo_loadtest import env

options = {"vus": 1, "iterations": 4, "thresholds": {"http_req_failed": ["rate<0.5"]}}

async def default(vu):
    await vu.http.get(env["BASE"] + "/x")
    if vu.iteration % 2:
        raise RuntimeError("boom in iteration")
''')
    res = run_cli("run", "unreachable", "-q", cwd=workdir,
                  env=clean_env(BASE=f"http://127.0.0.1:{closed_port()}"))
    assert res.returncode == ExitCode.THRESHOLDS_FAILED, res.stderr
    assert res.stderr.count("RuntimeError: boom in iteration") == 1  # shown once, counted
    (export,) = (workdir / "results").glob("unreachable_*.json")
    metrics = json.loads(export.read_text())["metrics"]
    assert metrics["http_req_failed"]["passes"] == 4  # k6 counts true samples as passes
    assert metrics["iterations"]["count"] >= 2


def test_setup_failure_exits_107_with_the_summary_written(workdir: Path) -> None:
    write_scenario(workdir, "bad_setup", '''"""setup() raises."""
def setup():
    raise ValueError("no data")

async def default(vu):
    pass
''')
    res = run_cli("run", "bad_setup", "-q", cwd=workdir,
                  env=clean_env(BASE="http://127.0.0.1:9"))
    assert res.returncode == ExitCode.SCRIPT_EXCEPTION, res.stderr
    assert "setup() failed" in res.stderr and "no data" in res.stderr
    assert list((workdir / "results").glob("bad_setup_*.json"))


def test_monitoring_command_is_delegated(workdir: Path) -> None:
    res = run_cli("monitoring", "--help", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert "up" in res.stdout and "down" in res.stdout

"""Outputs seen from the command line: the remote-write report in the summary footer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import LocalServer, clean_env, run_cli, write_scenario
from test_failures import closed_port

from indigo_loadtest.scenario.errors import ExitCode

TIMED = '''"""Gets /{tag} for a second."""
from indigo_loadtest import env, sleep

options = {{"vus": 1, "duration": "1s", "thresholds": {{"http_reqs": ["{threshold}"]}}}}

async def default(vu):
    await vu.http.get(env["BASE"] + "/{tag}")
    await sleep(0.05)
'''


@pytest.mark.parametrize(("threshold", "exit_code"), [
    ("count>0", ExitCode.OK), ("count<0", ExitCode.THRESHOLDS_FAILED),
])
def test_failed_remote_write_pushes_are_reported_in_the_footer(
        workdir: Path, local_server: LocalServer, threshold: str, exit_code: int) -> None:
    write_scenario(workdir, "pushed", TIMED.format(tag="pushed", threshold=threshold))
    url = f"http://127.0.0.1:{closed_port()}/api/v1/write"
    res = run_cli("run", "pushed", "--out", f"prometheus-rw={url}", "--no-color", cwd=workdir,
                  env=clean_env(BASE=local_server.url, K6_PROMETHEUS_RW_PUSH_INTERVAL="200ms"))
    assert res.returncode == exit_code, res.stderr
    footer = res.stdout[res.stdout.rindex(f"  target: {local_server.url}"):].splitlines()
    match = re.fullmatch(rf"  prometheus-rw {re.escape(url)}: 0 pushes sent, (\d+) failed, "
                         r"(\d+) dropped \(last error: .+\)", footer[1])
    assert match, footer
    assert int(match.group(1)) >= 2  # periodic pushes and the final one all failed
    warnings = [line for line in res.stderr.splitlines() if "prometheus-rw" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: prometheus-rw: push to ")
    assert "Traceback" not in res.stderr

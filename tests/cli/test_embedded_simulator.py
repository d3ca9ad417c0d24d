"""With BASE unset, `run` starts the embedded simulator, targets it, and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli, write_scenario

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


GUEST = '''"""Logs in as a guest on the target."""
from indigo_loadtest import check, env

options = {"vus": 1, "iterations": 2, "thresholds": {"checks": ["rate==1"]}}

async def default(vu):
    res = await vu.http.post(env["BASE"] + "/v1/auth/guest-login", json={})
    check(res, {"guest login 200": lambda r: r.status == 200,
                "has a token": lambda r: bool(r.json().get("access_token"))})
'''


def test_run_without_base_targets_the_embedded_simulator(workdir: Path) -> None:
    write_scenario(workdir, "guest", GUEST)
    res = run_cli("run", "guest", cwd=workdir, env=clean_env())
    assert res.returncode == 0, res.stderr
    header, summary = res.stdout.split("TOTAL RESULTS", 1)
    assert "target: embedded simulator at http://127.0.0.1:" in header
    assert "target: embedded simulator at http://127.0.0.1:" in summary
    assert "✓ guest login 200" in summary
    (export,) = (workdir / "results").glob("guest_*.json")
    assert json.loads(export.read_text())["metrics"]["checks"]["passes"] == 4


def test_serve_is_delegated_to_the_simulator(workdir: Path) -> None:
    res = run_cli("serve", "--help", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert "--port" in res.stdout

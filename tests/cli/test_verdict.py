"""No false green: the real CLI against the real simulator or a closed loopback port.

A BASE without a scheme, a run whose iterations all raise, a failing teardown(), a run
that sent nothing or reached nothing, thresholds on metrics without samples and absurd
plans each end with a non-zero exit code and one line saying why.
"""

from __future__ import annotations

import json
import re
import resource
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import REPO, clean_env, cli_argv, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

STANDARD = str(REPO / "scenarios" / "test-completion-standard.py")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: nothing listens there


def export_metrics(workdir: Path, name: str) -> dict:
    (export,) = (workdir / "results").glob(f"{name}_*.json")
    return json.loads(export.read_text())["metrics"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- case 1: BASE without a scheme ----------------------------------------------------------

@pytest.mark.parametrize("source", ["dotenv", "environment", "flag"])
def test_base_without_scheme_is_rejected_before_traffic(workdir: Path, source: str) -> None:
    base = f"localhost:{closed_port()}"
    env, args = clean_env(), []
    if source == "dotenv":
        (workdir / ".env").write_text(f"BASE={base}\n")
    elif source == "environment":
        env["BASE"] = base
    else:
        (workdir / ".env").write_text("BASE=http://127.0.0.1:9\n")  # -e wins over it
        args = ["-e", f"BASE={base}"]
    res = run_cli("run", STANDARD, "-q", *args, cwd=workdir,
                  env={**env, "SINGLE_RUN": "true"})
    assert res.returncode == ExitCode.INVALID_CONFIG, res.stdout + res.stderr
    assert error_lines(res.stderr) == [res.stderr.strip()]  # one line, no traceback
    assert f"BASE='{base}'" in res.stderr and "http://host:port" in res.stderr
    assert "THRESHOLDS" not in res.stdout and not (workdir / "results").exists()


def test_check_command_rejects_a_base_without_scheme(workdir: Path) -> None:
    res = run_cli("check", STANDARD, "-e", "BASE=localhost:8000", cwd=workdir)
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert "BASE='localhost:8000'" in res.stderr


# --- case 4: iteration errors, teardown(), nothing measured ---------------------------------

def test_standard_scenario_against_a_closed_port_does_not_pass(workdir: Path) -> None:
    env = clean_env(BASE=f"http://127.0.0.1:{closed_port()}", SINGLE_RUN="true")
    res = run_cli("run", STANDARD, "-q", cwd=workdir, env=env)
    assert res.returncode != ExitCode.OK
    assert any(line.startswith("error: nothing was measured of the target: 1 request(s) "
                               "sent, none got a response (dial: connection refused")
               for line in error_lines(res.stderr)), res.stderr


def test_requests_that_all_fail_at_the_network_level_measure_nothing(workdir: Path) -> None:
    write_scenario(workdir, "refused", '''"""Nothing listens at BASE; no thresholds."""
from indigo_loadtest import env

options = {"vus": 2, "iterations": 4}

async def default(vu):
    await vu.http.get(env["BASE"] + "/x")
''')
    res = run_cli("run", "refused", "-q", cwd=workdir,
                  env=clean_env(BASE=f"http://127.0.0.1:{closed_port()}"))
    assert res.returncode == ExitCode.NOTHING_MEASURED, res.stderr
    assert error_lines(res.stderr) == [
        "error: nothing was measured of the target: 4 request(s) sent, none got a response "
        "(dial: connection refused ×4)"]
    assert "every request failed" not in res.stderr  # that warning is for a passing run
    assert "http_reqs" in res.stdout  # the summary is still printed


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_iteration_raising_is_counted_and_fails(workdir: Path, simulator_url: str,
                                                      workers: str) -> None:
    write_scenario(workdir, "raises", '''"""Each iteration reaches the target, then raises."""
from indigo_loadtest import env

options = {"vus": 2, "iterations": 6}

async def default(vu):
    await vu.http.get(env["BASE"] + "/v1/version")
    raise KeyError("choices")
''')
    res = run_cli("run", "raises", "-q", "--workers", workers, cwd=workdir,
                  env=clean_env(BASE=simulator_url))
    assert res.returncode == ExitCode.NOTHING_MEASURED, res.stderr
    assert ("error: nothing was measured: every iteration (6) ended with an exception "
            "(KeyError ×6)") in error_lines(res.stderr)
    assert re.search(r"^ +iteration_errors\.+: 6 ", res.stdout, re.M), res.stdout
    assert export_metrics(workdir, "raises")["iteration_errors"]["count"] == 6


def test_iteration_errors_are_tagged_and_some_successes_pass(workdir: Path,
                                                             simulator_url: str) -> None:
    write_scenario(workdir, "some_raise", '''"""One iteration in three raises."""
from indigo_loadtest import check, env

options = {"vus": 1, "iterations": 6}

async def default(vu):
    res = await vu.http.get(env["BASE"] + "/v1/version")
    check(res, {"status 200": lambda r: r.status == 200})
    if vu.iteration % 3 == 0:
        raise ValueError("bad body")
''')
    res = run_cli("run", "some_raise", "-q", "--out", "json=raw.ndjson", cwd=workdir,
                  env=clean_env(BASE=simulator_url))
    assert res.returncode == ExitCode.OK, res.stderr
    points = [json.loads(line) for line in (workdir / "raw.ndjson").read_text().splitlines()]
    errors = [p["data"]["tags"] for p in points
              if p["type"] == "Point" and p["metric"] == "iteration_errors"]
    assert len(errors) == 2
    assert all(t["error_type"] == "ValueError" and t["scenario"] == "default" for t in errors)
    assert export_metrics(workdir, "some_raise")["iteration_errors"]["count"] == 2


def test_teardown_raising_exits_107(workdir: Path, simulator_url: str) -> None:
    write_scenario(workdir, "bad_teardown", '''"""teardown() raises after a good test."""
from indigo_loadtest import check, env

async def default(vu):
    res = await vu.http.get(env["BASE"] + "/v1/version")
    check(res, {"status 200": lambda r: r.status == 200})

def teardown(data):
    raise RuntimeError("cleanup failed")
''')
    res = run_cli("run", "bad_teardown", "-q", cwd=workdir, env=clean_env(BASE=simulator_url))
    assert res.returncode == ExitCode.SCRIPT_EXCEPTION, res.stderr
    assert error_lines(res.stderr) == ["error: teardown() failed: RuntimeError: cleanup failed"]
    assert export_metrics(workdir, "bad_teardown")["checks"]["passes"] == 1


def test_a_run_without_requests_or_passed_checks_measured_nothing(workdir: Path) -> None:
    write_scenario(workdir, "idle", '''"""Sends nothing; checks with CHECK, a trend with TREND."""
from indigo_loadtest import Trend, check, env

computed = Trend("computed_value")
options = {"vus": 1, "iterations": 3}

async def default(vu):
    if env.get("CHECK"):
        check(vu.iteration, {"computed": lambda i: i >= 0})
    if env.get("TREND"):
        computed.add(vu.iteration)
''')
    env = clean_env(BASE=f"http://127.0.0.1:{closed_port()}")
    res = run_cli("run", "idle", "-q", cwd=workdir, env=env)
    assert res.returncode == ExitCode.NOTHING_MEASURED, res.stderr
    reason = ("nothing was measured: 3 iterations sent no HTTP request, passed no check "
              "and recorded no metric of their own")
    assert error_lines(res.stderr) == [f"error: {reason}"]
    # The export alone tells a CI so (k6's keys unchanged beside it).
    (export,) = (workdir / "results").glob("idle_*.json")
    assert json.loads(export.read_text())["indigo_verdict"] == {
        "exit_code": ExitCode.NOTHING_MEASURED, "passed": False,
        "text": f"failed (exit code {int(ExitCode.NOTHING_MEASURED)}): {reason}",
        "errors": [reason]}
    # A scenario that measures without HTTP does so with checks or its own metrics.
    for measured in ("CHECK=1", "TREND=1"):
        passed = workdir / f"{measured}.json"
        ran = run_cli("run", "idle", "-q", "-e", measured, "--summary-export", str(passed),
                      cwd=workdir, env=env)
        assert ran.returncode == ExitCode.OK, ran.stderr
        assert json.loads(passed.read_text())["indigo_verdict"] == {
            "exit_code": 0, "passed": True, "text": "passed", "errors": []}


ALL_FAILED_SCENARIO = '''"""GETs URL_PATH three times (404 on the simulator unless it exists)."""
from indigo_loadtest import env

options = {{"vus": 1, "iterations": 3{thresholds}}}

async def default(vu):
    await vu.http.get(env["BASE"] + env["URL_PATH"])
'''


@pytest.mark.parametrize(("path", "thresholds", "exit_code", "warned"), [
    ("/no-such-path", "", ExitCode.OK, True),  # k6's verdict, but said out loud
    ("/no-such-path", ', "thresholds": {"http_req_failed": ["rate<0.5"]}',
     ExitCode.THRESHOLDS_FAILED, False),  # judged: no need to warn
    ("/v1/version", "", ExitCode.OK, False),  # nothing failed
])
def test_every_request_failing_without_a_threshold_is_said(
        workdir: Path, simulator_url: str, path: str, thresholds: str, exit_code: int,
        warned: bool) -> None:
    write_scenario(workdir, "failing", ALL_FAILED_SCENARIO.format(thresholds=thresholds))
    res = run_cli("run", "failing", "-q", cwd=workdir,
                  env=clean_env(BASE=simulator_url, URL_PATH=path))
    assert res.returncode == exit_code, res.stderr
    line = ("warning: every request failed (3 of 3: status 404 ×3) and no threshold on "
            "http_req_failed or checks judges it, so the run passes; add one, e.g. "
            "'http_req_failed': ['rate<0.01']")
    assert (line in res.stderr.splitlines()) is warned, res.stderr


# --- case 5: metrics without samples --------------------------------------------------------

NO_SAMPLES_SCENARIO = '''"""A threshold on a trend that never gets a sample."""
from indigo_loadtest import Trend, check, env

models_time = Trend("models_time_ms", True)
options = {"vus": 1, "iterations": 2, "thresholds": {"models_time_ms": ["p(95)<2000"]}}

async def default(vu):
    res = await vu.http.get(env["BASE"] + "/v1/version")
    check(res, {"status 200": lambda r: r.status == 200})
'''


def test_threshold_without_samples_is_shown_as_such_and_passes(workdir: Path,
                                                               simulator_url: str) -> None:
    write_scenario(workdir, "unsampled", NO_SAMPLES_SCENARIO)
    res = run_cli("run", "unsampled", "-q", "--no-color", cwd=workdir,
                  env=clean_env(BASE=simulator_url))
    assert res.returncode == ExitCode.OK, res.stderr
    lines = [" ".join(line.split()) for line in res.stdout.splitlines()]
    assert "? 'p(95)<2000' p(95)=n/a (no samples)" in lines
    assert "models_time_ms.................: no samples" in lines
    assert ("warning: thresholds on metrics without samples were not evaluated: "
            "models_time_ms 'p(95)<2000' (--strict-thresholds makes them fail)") in res.stderr
    metrics = export_metrics(workdir, "unsampled")
    assert metrics["models_time_ms"]["p(95)"] is None
    assert metrics["models_time_ms"]["thresholds"] == {"p(95)<2000": False}


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_strict_thresholds_fail_on_no_samples(workdir: Path, simulator_url: str,
                                              how: str) -> None:
    write_scenario(workdir, "unsampled", NO_SAMPLES_SCENARIO)
    args = ["--strict-thresholds"] if how == "flag" else []
    env = clean_env(BASE=simulator_url)
    if how == "environment":
        env["INDIGO_STRICT_THRESHOLDS"] = "true"
    res = run_cli("run", "unsampled", "-q", "--no-color", *args, cwd=workdir, env=env)
    assert res.returncode == ExitCode.THRESHOLDS_FAILED, res.stderr
    assert "✗ 'p(95)<2000' p(95)=n/a (no samples)" in res.stdout
    assert error_lines(res.stderr) == [
        "error: thresholds on metrics without samples fail (--strict-thresholds): "
        "models_time_ms 'p(95)<2000'"]
    assert export_metrics(workdir, "unsampled")["models_time_ms"]["thresholds"] == {
        "p(95)<2000": True}


# --- case 10: absurd plans ------------------------------------------------------------------

def _limit_memory() -> None:
    # Without the bound an absurd plan grows memory at ~140 MB/s: fail fast, not the machine.
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.parametrize("options", [
    '{"vus": 10**12, "duration": "10s"}',
    '{"scenarios": {"rate": {"executor": "constant-arrival-rate", "rate": 1, '
    '"duration": "10s", "preAllocatedVUs": 1, "maxVUs": 10**9}}}',
    '{"stages": [{"duration": "10s", "target": 10**7}]}',
])
def test_absurd_plans_are_rejected_before_traffic(workdir: Path, options: str) -> None:
    write_scenario(workdir, "absurd", f'''"""An absurd plan."""
options = {options}

async def default(vu):
    pass
''')
    started = time.monotonic()
    res = subprocess.run(cli_argv("run", "absurd", "-q"), cwd=workdir, text=True,
                         capture_output=True, timeout=60, preexec_fn=_limit_memory,
                         env=clean_env(BASE=f"http://127.0.0.1:{closed_port()}"))
    assert res.returncode == ExitCode.INVALID_CONFIG, res.stderr[-2000:]
    assert time.monotonic() - started < 20
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("error: scenario ") and "more than the limit of 100000 per run" in line
    assert "--vus-limit N or INDIGO_VUS_LIMIT=N" in line


def test_vus_limit_can_be_lowered_and_raised(workdir: Path) -> None:
    write_scenario(workdir, "three", '''"""Three VUs, one check each."""
from indigo_loadtest import check

options = {"vus": 3, "iterations": 3}

async def default(vu):
    check(vu.id, {"has an id": lambda i: i > 0})
''')
    env = clean_env(BASE=f"http://127.0.0.1:{closed_port()}")
    flag = run_cli("run", "three", "-q", "--vus-limit", "2", cwd=workdir, env=env)
    assert flag.returncode == ExitCode.INVALID_CONFIG
    assert "up to 3 VUs, more than the limit of 2 per run" in flag.stderr
    from_env = run_cli("run", "three", "-q", cwd=workdir, env={**env, "INDIGO_VUS_LIMIT": "2"})
    assert from_env.returncode == ExitCode.INVALID_CONFIG
    raised = run_cli("run", "three", "-q", "--vus-limit", "3", cwd=workdir,
                     env={**env, "INDIGO_VUS_LIMIT": "2"})  # the flag wins
    assert raised.returncode == ExitCode.OK, raised.stderr

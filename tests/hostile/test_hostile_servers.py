"""A hostile or broken server cannot take the generator's memory or time past its limits.

Each case runs the real CLI in a subprocess, 1 VU for 2 s with a 1.5 s request timeout,
against one behaviour of `hostile_servers`, and asserts:
- the run ends within its planned time plus the request timeout (plus a margin for
  start-up on a busy machine): PLANNED_S + TIMEOUT_S + MARGIN_S;
- the generator's peak RSS (wait4's ru_maxrss of the child) stays under RSS_BOUND_MB,
  the bound docs/guarantees.md states. Linux carries the forking process's high-water
  mark across exec into that figure, so it is an upper bound: at least pytest's own RSS;
- every request failed, with the expected error_code (summary export), and for LLM
  calls the expected llm_errors reason;
- the exit code is the thresholds' (99: `http_req_failed: rate<0.01` fails).
The child runs under an address-space rlimit, so a regression fails the test with a
MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_servers import HostileServer

from indigo_loadtest.scenario.errors import ExitCode

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


SCENARIO = Path(__file__).with_name("hostile_scenario.py")
PLANNED_S = 2.0
TIMEOUT_S = 1.5
MARGIN_S = 12.0  # interpreter start-up and teardown on a loaded 2-core machine
RSS_BOUND_MB = 300
ADDRESS_SPACE_LIMIT = 3 << 30  # a safety net only: a regression dies here, not the machine


@dataclass(frozen=True)
class Case:
    path: str
    mode: str  # get | llm | stream
    code: int
    reason: str = ""  # llm_errors reason, for llm and stream


CASES = {
    "endless chunked body": Case("/endless-chunked", "get", 1710),
    "huge Content-Length sent fast": Case("/huge-content-length", "get", 1710),
    "1 MiB gzip bomb inflating to 1 GiB": Case("/gzip-bomb", "llm", 1711, "limit_exceeded"),
    "undecodable gzip body": Case("/undecodable-gzip", "get", 1701),
    "SSE event that never ends": Case("/sse-endless-event", "stream", 1714, "limit_exceeded"),
    "2 million headers": Case("/many-headers", "get", 1713),
    "64 MiB header line": Case("/huge-header-line", "get", 1712),
    "endless fast SSE stream": Case("/sse-endless-stream", "stream", 1715, "limit_exceeded"),
    "close mid-body": Case("/close-mid-body", "llm", 1000, "incomplete"),
    "malformed status line": Case("/malformed-status", "get", 1000),
    "stall after headers": Case("/stall-after-headers", "stream", 1050, "incomplete"),
    "drip one byte per second": Case("/drip", "get", 1050),
}


@dataclass
class Finished:
    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    metrics: dict


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    try:
        yield server
    finally:
        server.stop()


def run_measured(tmp_path: Path, base: str, *env: str, args: tuple[str, ...] = (),
                 kill_after: float = 60.0) -> Finished:
    """The CLI on the hostile scenario; its wall time and peak RSS (wait4's rusage)."""
    export = tmp_path / "summary.json"
    argv = [sys.executable, "-m", "indigo_loadtest.cli", "run", str(SCENARIO), "--quiet",
            "--no-color", "--workers", "1", "--summary-export", str(export),
            "--results-dir", str(tmp_path), "-e", f"BASE={base}",
            "-e", f"DURATION={PLANNED_S}s", "-e", f"TIMEOUT={TIMEOUT_S}s", *args]
    for item in env:
        argv += ["-e", item]
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    environ = {k: v for k, v in os.environ.items() if k not in ("BASE", "DEBUG", "API_KEY")}
    with out.open("w") as fo, err.open("w") as fe:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe, env=environ)
        resource.prlimit(proc.pid, resource.RLIMIT_AS,
                         (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > kill_after:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    metrics = json.loads(export.read_text())["metrics"] if export.exists() else {}
    return Finished(proc.returncode, seconds, usage.ru_maxrss / 1024, out.read_text(),
                    err.read_text(), metrics)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_hostile_server_fails_requests_not_the_generator(
    case: Case, hostile: HostileServer, tmp_path: Path,
) -> None:
    env = [f"TARGET={hostile.url}{case.path}", f"MODE={case.mode}", f"CODE={case.code}"]
    if case.reason:
        env.append(f"REASON={case.reason}")
    run = run_measured(tmp_path, hostile.url, *env)
    figures = f"exit {run.returncode}, {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB"
    print(f"{case.path}: {figures}")  # shown with -s: the measured figures
    context = f"{figures}\n{run.stderr[-2000:]}"
    assert run.seconds < PLANNED_S + TIMEOUT_S + MARGIN_S, context
    assert run.peak_rss_mb < RSS_BOUND_MB, context
    assert run.returncode == ExitCode.THRESHOLDS_FAILED, context
    failed = run.metrics["http_req_failed"]
    with_code = run.metrics[f"http_req_failed{{error_code:{case.code}}}"]
    # Every request failed, each with the expected code; the test went on after each.
    assert failed["fails"] == 0 and failed["passes"] >= 1, context
    assert with_code["passes"] == failed["passes"], (with_code, failed, context)
    if case.reason:
        assert run.metrics[f"llm_errors{{reason:{case.reason}}}"]["count"] == failed["passes"]
    if case.code not in (1050,):  # a request that fails at once leaves time for more
        assert failed["passes"] >= 2, context


def test_the_stream_event_cap_bounds_raw_outputs(hostile: HostileServer, tmp_path: Path) -> None:
    cap = 1000
    ndjson = tmp_path / "samples.ndjson"
    run = run_measured(tmp_path, hostile.url, f"TARGET={hostile.url}/sse-endless-stream",
                       "MODE=stream", "CODE=1715", "REASON=limit_exceeded",
                       f"MAX_STREAM_EVENTS={cap}", args=("--out", f"json={ndjson}"))
    assert run.returncode == ExitCode.THRESHOLDS_FAILED, run.stderr[-2000:]
    streams = run.metrics["http_req_failed{error_code:1715}"]["passes"]
    itl = sum(1 for line in ndjson.open() if '"metric":"llm_itl_ms"' in line.replace(" ", "")
              and '"Point"' in line)
    # One ITL sample per gap between events: at most cap - 1 per stream, however
    # fast and long the server streams.
    assert streams >= 2 and 0 < itl <= (cap - 1) * streams, (itl, streams)
    assert ndjson.stat().st_size < 2_000 * cap * streams


def test_an_invalid_url_in_an_iteration_is_a_failed_request(
    hostile: HostileServer, tmp_path: Path,
) -> None:
    run = run_measured(tmp_path, hostile.url, "TARGET=localhost:8000/v1/models", "CODE=1020")
    context = run.stderr[-2000:]
    assert run.returncode == ExitCode.THRESHOLDS_FAILED, context
    assert "Traceback" not in run.stderr and "ValueError" not in run.stderr, context
    failed = run.metrics["http_req_failed"]
    assert failed["passes"] >= 2 and failed["fails"] == 0, context
    assert run.metrics["http_req_failed{error_code:1020}"]["passes"] == failed["passes"]


def test_a_bad_limit_is_one_line_before_any_traffic(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "badlimit.py").write_text(
        '"""A limit that is no size."""\n'
        'options = {"maxResponseBodySize": "huge"}\n'
        "async def default(vu):\n    pass\n")
    res = subprocess.run([sys.executable, "-m", "indigo_loadtest.cli", "check", "badlimit"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert res.stderr.strip().splitlines() == [
        "error: options: maxResponseBodySize: invalid size 'huge' "
        '(use bytes, or e.g. "64MiB", "512kB")']

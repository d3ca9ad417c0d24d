"""SIGINT during start-up (imports, the parser, the scenario's import, the embedded
simulator's start) ends the run with exit 105 and one line, never a KeyboardInterrupt
traceback; once the test runs, the usual graceful stop applies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import clean_env, cli_argv, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

# Reads BASE and none is set: start-up includes the embedded simulator's start.
SCENARIO = '''"""Asks the simulator for its version for a while."""
from indigo_loadtest import env, sleep

options = {"vus": 1, "duration": "20s"}

async def default(vu):
    await vu.http.get(env["BASE"] + "/v1/version")
    await sleep(0.1)
'''


def import_time() -> float:
    """How long the interpreter and the CLI's imports take now, on this machine: the
    control the signal times are measured from (a loaded machine starts slower)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import indigo_loadtest.cli"], check=True,
                   env=clean_env())
    return time.monotonic() - started


@pytest.fixture
def started(workdir: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def interrupted_after(workdir: Path, procs: list[subprocess.Popen[str]],
                      delay: float) -> tuple[int, str, str]:
    proc = subprocess.Popen(cli_argv("run", "probe", "-q", "--no-report"), cwd=workdir,
                            env=clean_env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    procs.append(proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_sigint_during_startup_is_exit_105_and_one_line(
        workdir: Path, started: list[subprocess.Popen[str]]) -> None:
    write_scenario(workdir, "probe", SCENARIO)
    control = import_time()
    # As the CLI's imports end (the parser's, the scenario's), then during the simulator's
    # start, then (on a fast machine) once the test may already run. A fifth over the
    # control: two processes started one after the other on a busy machine differ.
    endings = []
    for offset in (0.0, 0.1, 0.4, 0.8):
        code, out, err = interrupted_after(workdir, started, control * 1.2 + offset)
        assert code == ExitCode.EXTERNAL_ABORT, err
        assert "Traceback" not in err, err
        if "TOTAL RESULTS" in out:  # the test had started: a graceful stop
            assert "stopping gracefully" in err, err
            endings.append("graceful")
        else:
            lines = [line for line in err.splitlines() if line.strip()]
            assert lines == ["error: interrupted by SIGINT during start-up: the test did not "
                             "start, nothing was sent"], err
            endings.append("start-up")
    assert endings[0] == "start-up", endings

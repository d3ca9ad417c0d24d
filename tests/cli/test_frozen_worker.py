"""A frozen `--workers` process (SIGSTOP: a stand-in for a deadlock, a swapped-out or
throttled process) neither hangs the run nor lets it pass (issue 22 §2): it is declared
lost after `SILENCE_LIMIT` without a snapshot, one SIGTERM still ends the run, and once
resumed it drops the arrival-rate starts it overslept instead of running them late.
Real CLI runs against the real simulator, real worker processes, real signals."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import clean_env, cli_argv, write_scenario

from indigo_loadtest.engine.arrival_rate import MAX_START_LATENESS
from indigo_loadtest.engine.shard_health import SILENCE_LIMIT
from indigo_loadtest.scenario.errors import ExitCode

# Each iteration appends when it started (unix time) and how late against its scheduled
# start (seconds) to a file named after its worker's pid.
SCENARIO = '''"""{rate} iterations/s for {duration}s, in arrival-rate starts."""
import os
import time
from pathlib import Path

from indigo_loadtest import env
from indigo_loadtest.engine.arrival_rate import scheduled_start

options = {{"scenarios": {{"steady": {{
    "executor": "constant-arrival-rate", "rate": {rate}, "timeUnit": "1s",
    "duration": "{duration}s", "preAllocatedVUs": 4, "maxVUs": 8, "gracefulStop": "1s"}}}}}}


async def default(vu):
    late = time.perf_counter() - scheduled_start.get()
    with open(Path(env["PIDS_DIR"], str(os.getpid())), "a") as f:
        f.write(f"{{time.time()}} {{late}}\\n")
    await vu.http.get(env["BASE"] + "/v1/version")
'''
RATE = 20
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="no SIGSTOP here")
# How far past the bound the run may end on a loaded machine: start-up, the parent's
# check every second, the summary and files.
MARGIN = 15.0


class FrozenRun:
    """One `run --workers 2` in a session of its own; its workers found by their files."""

    def __init__(self, workdir: Path, url: str, duration: float, *args: str) -> None:
        self.pids_dir = workdir / "pids"
        self.pids_dir.mkdir()
        self.export = workdir / "summary.json"
        self.frozen: list[int] = []
        write_scenario(workdir, "steady", SCENARIO.format(rate=RATE, duration=duration))
        self.proc = subprocess.Popen(
            cli_argv("run", "steady", "--workers", "2", "--env", f"PIDS_DIR={self.pids_dir}",
                     "--summary-export", str(self.export), *args),
            cwd=workdir, env=clean_env(BASE=url), text=True, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def workers(self, limit: float = 30) -> list[int]:
        deadline = time.monotonic() + limit
        while len(list(self.pids_dir.iterdir())) < 2:
            assert time.monotonic() < deadline, "the workers did not start iterating"
            time.sleep(0.05)
        return sorted(int(p.name) for p in self.pids_dir.iterdir())

    def freeze(self, pid: int) -> None:
        self.frozen.append(pid)
        os.kill(pid, signal.SIGSTOP)

    def starts(self, pid: int) -> list[tuple[float, float]]:
        """Worker `pid`'s iterations: (started at, seconds late)."""
        lines = (self.pids_dir / str(pid)).read_text().split("\n")
        return [(float(a), float(b)) for a, b in (line.split() for line in lines if line)]

    def exported(self) -> dict:
        return json.loads(self.export.read_text())

    def kill(self) -> None:
        for pid in self.frozen:  # a stopped process must be resumed to be reaped cleanly
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()


@pytest.fixture
def runs(workdir: Path, simulator_url: str) -> Iterator[list[FrozenRun]]:
    made: list[FrozenRun] = []
    yield made
    for run in made:
        run.kill()


def start(runs: list[FrozenRun], workdir: Path, url: str, duration: float,
          *args: str) -> FrozenRun:
    runs.append(FrozenRun(workdir, url, duration, *args))
    return runs[-1]


def lost_line(pid: int) -> re.Pattern[str]:
    return re.compile(rf"worker [01] of 2 \(pid {pid}\) went silent \([^)]*; killed after "
                      rf"{SILENCE_LIMIT:g}s without a snapshot\) [\d.]+s into the test; "
                      "its share of the test was not run from then on")


def test_a_frozen_worker_is_lost_after_the_bound_and_the_other_runs_to_the_end(
    workdir: Path, simulator_url: str, runs: list[FrozenRun]
) -> None:
    run = start(runs, workdir, simulator_url, 4)
    frozen, survivor = run.workers()
    time.sleep(1.5)  # past its first live snapshots (every second)
    frozen_at = time.time()
    run.freeze(frozen)
    out, err = run.proc.communicate(timeout=4 + SILENCE_LIMIT + 2 * MARGIN)
    took = time.time() - frozen_at

    assert run.proc.returncode == ExitCode.WORKER_DIED, err
    line = lost_line(frozen)
    assert line.search(err) and re.search(r"(?m)^error: " + line.pattern, err), err
    assert re.search(r"(?m)^  degraded: " + line.pattern, out), out
    assert "Traceback" not in err
    # It waited the bound for the frozen worker, and not much longer.
    assert SILENCE_LIMIT - 1.5 < took < 4 + SILENCE_LIMIT + MARGIN, err
    # The survivor went on to the planned end, well past the freeze.
    survivor_starts = [t for t, _ in run.starts(survivor)]
    assert max(survivor_starts) - frozen_at > 1.5
    # Every file is written; the frozen worker's last snapshot counts as its measurements.
    exported = run.exported()
    assert exported["indigo_verdict"]["exit_code"] == ExitCode.WORKER_DIED
    counted = exported["metrics"]["http_reqs"]["count"]
    assert len(survivor_starts) < counted <= len(survivor_starts) + len(run.starts(frozen))


def test_one_sigterm_ends_a_run_with_a_frozen_worker_within_graceful_stop_and_the_bound(
    workdir: Path, simulator_url: str, runs: list[FrozenRun]
) -> None:
    run = start(runs, workdir, simulator_url, 60)
    frozen, _ = run.workers()
    time.sleep(1.5)
    run.freeze(frozen)
    time.sleep(0.5)
    signalled = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)  # once, as a CI runner does before its SIGKILL
    out, err = run.proc.communicate(timeout=1 + SILENCE_LIMIT + 2 * MARGIN)
    took = time.monotonic() - signalled

    assert took < 1 + SILENCE_LIMIT + MARGIN, err  # gracefulStop 1 s + the bound
    # Interrupted, and degraded: the interrupt keeps its own code; the worker is named.
    assert run.proc.returncode == ExitCode.EXTERNAL_ABORT, err
    assert lost_line(frozen).search(err), err
    assert "TOTAL RESULTS" in out and "Traceback" not in err
    assert run.exported()["metrics"]["http_reqs"]["count"] > 0


def test_a_worker_resumed_after_a_freeze_drops_the_starts_it_overslept(
    workdir: Path, simulator_url: str, runs: list[FrozenRun]
) -> None:
    run = start(runs, workdir, simulator_url, 7)
    frozen, _ = run.workers()
    time.sleep(1.0)
    run.freeze(frozen)
    time.sleep(4.0)  # well under the bound: it is not lost, only late
    os.kill(frozen, signal.SIGCONT)
    _, err = run.proc.communicate(timeout=7 + 2 * MARGIN)

    assert run.proc.returncode == ExitCode.OK, err
    assert "went silent" not in err and "Traceback" not in err
    # No start of the resumed worker ran later than the bound allows (plus the time
    # from its scheduled instant to its first line of code, on a loaded machine) ...
    lateness = [late for _, late in run.starts(frozen)]
    assert max(lateness) < MAX_START_LATENESS + 0.5, sorted(lateness)[-5:]
    # ... the ones it overslept by more are counted as dropped: its share (10/s) over
    # the 4 s freeze, less the last second's starts (within the bound), less slack.
    dropped = run.exported()["metrics"]["dropped_iterations"]["count"]
    assert dropped >= (4.0 - MAX_START_LATENESS - 1.0) * RATE / 2, dropped


def test_a_run_stopped_whole_and_resumed_loses_no_worker(
    workdir: Path, simulator_url: str, runs: list[FrozenRun]
) -> None:
    # Ctrl-Z then `fg`: the main process is stopped with its workers, longer than the
    # bound; that time is nobody's silence.
    run = start(runs, workdir, simulator_url, 4)
    run.workers()
    time.sleep(1.0)
    os.killpg(run.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(SILENCE_LIMIT + 1.5)
    finally:
        os.killpg(run.proc.pid, signal.SIGCONT)
    _, err = run.proc.communicate(timeout=4 + 2 * MARGIN)
    assert run.proc.returncode == ExitCode.OK, err
    assert "went silent" not in err and "Traceback" not in err

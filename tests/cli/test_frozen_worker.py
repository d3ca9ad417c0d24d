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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
        (workdir / "scenarios").mkdir(exist_ok=True)
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


@dataclass
class Ended:
    """How one run ended: the process (returncode set), its output and what was done to it."""

    run: FrozenRun
    out: str
    err: str
    took: float  # seconds from the freeze (or the signal) to the end
    frozen: int = 0
    survivor: int = 0
    frozen_at: float = 0.0  # unix time


def lost_after_the_bound(run: FrozenRun) -> Ended:
    frozen, survivor = run.workers()
    time.sleep(1.5)  # past its first live snapshots (every second)
    frozen_at = time.time()
    run.freeze(frozen)
    out, err = run.proc.communicate(timeout=4 + SILENCE_LIMIT + 2 * MARGIN)
    return Ended(run, out, err, time.time() - frozen_at, frozen, survivor, frozen_at)


def one_sigterm(run: FrozenRun) -> Ended:
    frozen, _ = run.workers()
    time.sleep(1.5)
    run.freeze(frozen)
    time.sleep(0.5)
    signalled = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)  # once, as a CI runner does before its SIGKILL
    out, err = run.proc.communicate(timeout=1 + SILENCE_LIMIT + 2 * MARGIN)
    return Ended(run, out, err, time.monotonic() - signalled, frozen)


def resumed(run: FrozenRun) -> Ended:
    frozen, _ = run.workers()
    time.sleep(1.0)
    run.freeze(frozen)
    time.sleep(4.0)  # well under the bound: it is not lost, only late
    os.kill(frozen, signal.SIGCONT)
    out, err = run.proc.communicate(timeout=7 + 2 * MARGIN)
    return Ended(run, out, err, 0.0, frozen)


def stopped_whole(run: FrozenRun) -> Ended:
    # Ctrl-Z then `fg`: the main process is stopped with its workers, longer than the
    # bound; that time is nobody's silence.
    run.workers()
    time.sleep(1.0)
    os.killpg(run.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(SILENCE_LIMIT + 1.5)
    finally:
        os.killpg(run.proc.pid, signal.SIGCONT)
    out, err = run.proc.communicate(timeout=4 + 2 * MARGIN)
    return Ended(run, out, err, 0.0)


# name: (planned seconds, what is done to the run)
CASES: dict[str, tuple[float, Callable[[FrozenRun], Ended]]] = {
    "lost": (4, lost_after_the_bound), "sigterm": (60, one_sigterm),
    "resumed": (7, resumed), "whole": (4, stopped_whole)}


@pytest.fixture(scope="module")
def ended(tmp_path_factory: pytest.TempPathFactory,
          simulator_url: str) -> Iterator[dict[str, Ended]]:
    """The four runs side by side (each mostly waits out the bound: together they take
    the longest one's time, not the sum), each in a folder and a session of its own."""
    runs = {name: FrozenRun(tmp_path_factory.mktemp(name), simulator_url, planned)
            for name, (planned, _) in CASES.items()}
    try:
        with ThreadPoolExecutor(len(runs)) as pool:
            futures = {name: pool.submit(CASES[name][1], run) for name, run in runs.items()}
            yield {name: future.result() for name, future in futures.items()}
    finally:
        for run in runs.values():
            run.kill()


def lost_line(pid: int) -> re.Pattern[str]:
    return re.compile(rf"worker [01] of 2 \(pid {pid}\) went silent \([^)]*; killed after "
                      rf"{SILENCE_LIMIT:g}s without a snapshot\) [\d.]+s into the test; "
                      "its share of the test was not run from then on")


def test_a_frozen_worker_is_lost_after_the_bound_and_the_other_runs_to_the_end(
    ended: dict[str, Ended]
) -> None:
    end = ended["lost"]
    run, err, frozen = end.run, end.err, end.frozen
    assert run.proc.returncode == ExitCode.WORKER_DIED, err
    line = lost_line(frozen)
    assert line.search(err) and re.search(r"(?m)^error: " + line.pattern, err), err
    assert re.search(r"(?m)^  degraded: " + line.pattern, end.out), end.out
    assert "Traceback" not in err
    # It waited the bound for the frozen worker, and not much longer.
    assert SILENCE_LIMIT - 1.5 < end.took < 4 + SILENCE_LIMIT + MARGIN, err
    # The survivor went on to the planned end, well past the freeze.
    survivor_starts = [t for t, _ in run.starts(end.survivor)]
    assert max(survivor_starts) - end.frozen_at > 1.5
    # Every file is written; the frozen worker's last snapshot counts as its measurements.
    exported = run.exported()
    assert exported["indigo_verdict"]["exit_code"] == ExitCode.WORKER_DIED
    counted = exported["metrics"]["http_reqs"]["count"]
    assert len(survivor_starts) < counted <= len(survivor_starts) + len(run.starts(frozen))


def test_one_sigterm_ends_a_run_with_a_frozen_worker_within_graceful_stop_and_the_bound(
    ended: dict[str, Ended]
) -> None:
    end = ended["sigterm"]
    run, err = end.run, end.err
    assert end.took < 1 + SILENCE_LIMIT + MARGIN, err  # gracefulStop 1 s + the bound
    # Interrupted, and degraded: the interrupt keeps its own code; the worker is named.
    assert run.proc.returncode == ExitCode.EXTERNAL_ABORT, err
    assert lost_line(end.frozen).search(err), err
    assert "TOTAL RESULTS" in end.out and "Traceback" not in err
    assert run.exported()["metrics"]["http_reqs"]["count"] > 0


def test_a_worker_resumed_after_a_freeze_drops_the_starts_it_overslept(
    ended: dict[str, Ended]
) -> None:
    end = ended["resumed"]
    run, err = end.run, end.err
    assert run.proc.returncode == ExitCode.OK, err
    assert "went silent" not in err and "Traceback" not in err
    # No start of the resumed worker ran later than the bound allows (plus the time
    # from its scheduled instant to its first line of code, on a loaded machine) ...
    lateness = [late for _, late in run.starts(end.frozen)]
    assert max(lateness) < MAX_START_LATENESS + 0.5, sorted(lateness)[-5:]
    # ... the ones it overslept by more are counted as dropped: its share (10/s) over
    # the 4 s freeze, less the last second's starts (within the bound), less slack.
    dropped = run.exported()["metrics"]["dropped_iterations"]["count"]
    assert dropped >= (4.0 - MAX_START_LATENESS - 1.0) * RATE / 2, dropped


def test_a_run_stopped_whole_and_resumed_loses_no_worker(ended: dict[str, Ended]) -> None:
    end = ended["whole"]
    assert end.run.proc.returncode == ExitCode.OK, end.err
    assert "went silent" not in end.err and "Traceback" not in end.err

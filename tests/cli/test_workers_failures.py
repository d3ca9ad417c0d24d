"""`--workers`: a worker that dies, gauges merged across workers, setup() data that cannot
reach the workers, and a user error in setup(). Real CLI subprocesses, real worker
processes found by the pids the scenario writes down, real signals."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cli_helpers import LocalServer, clean_env, cli_argv, run_cli, write_scenario

import indigo_loadtest
from indigo_loadtest.scenario.errors import ExitCode

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


PACKAGE_DIR = str(Path(indigo_loadtest.__file__).resolve().parent)

# Each worker writes down its pid when it starts iterating; every request carries the
# pid and the time it was sent, so the server's log tells what each worker did and when.
LOOPING = '''"""Two workers loop for {duration}s."""
import os
import time
from pathlib import Path

from indigo_loadtest import env, sleep

options = {{"vus": 2, "duration": "{duration}s"}}


async def default(vu):
    Path(env["PIDS_DIR"], str(os.getpid())).touch()
    await vu.http.get(f"{{env['BASE']}}/{tag}/{{os.getpid()}}?t={{time.time()}}")
    await sleep(0.05)
'''


def wait_for_pids(folder: Path, count: int, limit: float = 20) -> list[int]:
    deadline = time.monotonic() + limit
    while len(list(folder.iterdir())) < count:
        assert time.monotonic() < deadline, "the workers did not start iterating"
        time.sleep(0.05)
    return sorted(int(p.name) for p in folder.iterdir())


def sent_at(server: LocalServer, tag: str, pid: int) -> list[float]:
    """When worker `pid` sent each of its requests (unix seconds)."""
    return [float(parse_qs(urlsplit(p).query)["t"][0])
            for p in server.paths(f"/{tag}/{pid}?")]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_dead_worker_degrades_the_run_and_the_other_runs_to_the_end(
    workdir: Path, local_server: LocalServer, sig: signal.Signals
) -> None:
    tag = f"dead-{sig.name}"
    pids_dir = workdir / "pids"
    pids_dir.mkdir()
    export = workdir / "summary.json"
    write_scenario(workdir, "looping", LOOPING.format(duration=5, tag=tag))
    proc = subprocess.Popen(
        cli_argv("run", "looping", "--workers", "2", "--env", f"PIDS_DIR={pids_dir}",
                 "--summary-export", str(export)),
        cwd=workdir, env=clean_env(BASE=local_server.url), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        dead, survivor = wait_for_pids(pids_dir, 2)
        time.sleep(2.0)  # well past the workers' first live snapshot (every second)
        killed_at = time.time()
        os.kill(dead, sig)  # one worker, not the CLI process
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == ExitCode.WORKER_DIED, err
    how = "was killed by SIGKILL" if sig == signal.SIGKILL else "stopped early on SIGTERM"
    line = re.compile(rf"worker [01] of 2 \(pid {dead}\) {how}.*its share of the test was "
                      "not run from then on")
    assert line.search(err) and re.search(r"(?m)^error: " + line.pattern, err), err
    assert re.search(r"(?m)^  degraded: " + line.pattern, out), out
    assert "Traceback" not in err
    # The surviving worker went on to the planned end, well past the death.
    survivor_times = sent_at(local_server, tag, survivor)
    assert max(survivor_times) - killed_at > 2.0
    assert max(survivor_times) - min(survivor_times) > 4.0
    # The export was written, says the run is degraded, and counts what the dead worker
    # measured before it died.
    exported = json.loads(export.read_text())
    verdict = exported["indigo_verdict"]
    assert verdict["exit_code"] == ExitCode.WORKER_DIED and not verdict["passed"]
    assert len(verdict["errors"]) == 1 and line.search(verdict["errors"][0]), verdict
    metrics = exported["metrics"]
    survivor_sent = len(survivor_times)
    dead_sent = len(sent_at(local_server, tag, dead))
    assert dead_sent > 0
    counted = metrics["http_reqs"]["count"]
    if sig == signal.SIGTERM:  # stopped gracefully: its exact final state
        assert counted == survivor_sent + dead_sent
    else:  # its last live snapshot, taken at most a second before it died
        assert survivor_sent < counted <= survivor_sent + dead_sent


BUSY = '''"""Iterations that hog the event loop."""
import os
import time
from pathlib import Path

from indigo_loadtest import env

options = {"vus": 2, "duration": "1s", "gracefulStop": "2s"}


async def default(vu):
    Path(env["PIDS_DIR"], str(os.getpid())).touch()
    started = time.monotonic()
    while time.monotonic() - started < 3:
        pass
'''


def test_a_second_sigterm_kills_a_worker_whose_loop_is_busy(workdir: Path) -> None:
    pids_dir = workdir / "pids"
    pids_dir.mkdir()
    write_scenario(workdir, "busy", BUSY)
    proc = subprocess.Popen(
        cli_argv("run", "busy", "--workers", "2", "-q", "--env", f"PIDS_DIR={pids_dir}"),
        cwd=workdir, env=clean_env(BASE="http://127.0.0.1:9"), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        busy = wait_for_pids(pids_dir, 2)[0]
        os.kill(busy, signal.SIGTERM)  # cannot stop gracefully: its loop never yields
        time.sleep(0.3)
        os.kill(busy, signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitCode.WORKER_DIED, err
    assert re.search(rf"worker [01] of 2 \(pid {busy}\) was killed by SIGTERM", err), err
    assert "degraded: worker" in out


def test_sigterm_to_the_process_group_is_an_interrupt_not_a_dead_worker(
    workdir: Path, local_server: LocalServer
) -> None:
    # As a service manager stops a run: every process of the group gets SIGTERM.
    pids_dir = workdir / "pids"
    pids_dir.mkdir()
    export = workdir / "summary.json"
    write_scenario(workdir, "looping", LOOPING.format(duration=30, tag="group-term"))
    proc = subprocess.Popen(
        cli_argv("run", "looping", "--workers", "2", "--env", f"PIDS_DIR={pids_dir}",
                 "--summary-export", str(export)),
        cwd=workdir, env=clean_env(BASE=local_server.url), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        wait_for_pids(pids_dir, 2)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    # No worker is reported lost (the generator-health warnings may name workers).
    assert "degraded" not in out and not re.search(r"worker \d of \d \(pid", err), err
    # Every worker stopped gracefully and sent its exact final state.
    sent = len(local_server.paths("/group-term/"))
    assert json.loads(export.read_text())["metrics"]["http_reqs"]["count"] == sent > 0


GAUGES = '''"""Gauges written in two processes (or two VUs of one)."""
import os
from pathlib import Path

from indigo_loadtest import Gauge, env, sleep

fixed = Gauge("fixed_gauge")
ordered = Gauge("ordered_gauge")
options = {"scenarios": {"s": {"executor": "per-vu-iterations", "vus": 2, "iterations": 1}}}


async def default(vu):
    fixed.add(7)
    try:  # whichever VU comes first writes 1 at once; the other writes 2 later
        os.close(os.open(Path(env["ORDER_FILE"]), os.O_CREAT | os.O_EXCL))
        ordered.add(1)
    except FileExistsError:
        await sleep(0.5)
        ordered.add(2)
'''


def gauge_lines(workdir: Path, workers: int) -> dict[str, str]:
    order = workdir / f"order-{workers}"
    res = run_cli("run", "gauges", "--workers", str(workers), "--env", f"ORDER_FILE={order}",
                  cwd=workdir, env=clean_env(BASE="http://127.0.0.1:9"))
    assert res.returncode == 0, res.stderr
    lines = {}
    for line in res.stdout.splitlines():
        name, _, value = line.strip().partition(":")
        if name.rstrip(".") in ("fixed_gauge", "ordered_gauge"):
            lines[name.rstrip(".")] = " ".join(value.split())
    return lines


def test_custom_gauges_merge_across_workers_as_in_one_process(workdir: Path) -> None:
    write_scenario(workdir, "gauges", GAUGES)
    one, two = gauge_lines(workdir, 1), gauge_lines(workdir, 2)
    assert one == {"fixed_gauge": "7 min=7 max=7", "ordered_gauge": "2 min=1 max=2"}
    assert two == one  # not 14 and 3: the value written last wins, min/max widen


def test_setup_data_that_cannot_reach_the_workers_is_one_line_exit_107(workdir: Path) -> None:
    write_scenario(workdir, "locked", '''"""setup() returns a lock."""
import threading

options = {"vus": 2, "iterations": 2}


def setup():
    return {"lock": threading.Lock()}


async def default(vu):
    pass
''')
    res = run_cli("run", "locked", "--workers", "2", "-q", "--no-summary", cwd=workdir,
                  env=clean_env(BASE="http://127.0.0.1:9"))
    assert res.returncode == ExitCode.SCRIPT_EXCEPTION, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "setup() data" in errors[0] and "pickle" in errors[0]
    assert "Traceback" not in res.stderr and PACKAGE_DIR not in res.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_user_error_in_setup_shows_only_the_scenario_frames(workdir: Path,
                                                              workers: str) -> None:
    path = write_scenario(workdir, "bad_setup", '''"""setup() raises in a helper."""
options = {"vus": 2, "iterations": 2}


def load_models():
    raise ValueError("no such model")


def setup():
    return load_models()


async def default(vu):
    pass
''')
    res = run_cli("run", "bad_setup", "--workers", workers, "-q", "--no-summary",
                  cwd=workdir, env=clean_env(BASE="http://127.0.0.1:9"))
    assert res.returncode == ExitCode.SCRIPT_EXCEPTION, res.stderr
    frames = re.findall(r'File "([^"]+)", line \d+, in (\w+)', res.stderr)
    assert frames == [(str(path), "setup"), (str(path), "load_models")], res.stderr
    assert PACKAGE_DIR not in res.stderr
    assert "error: setup() failed: ValueError: no such model" in res.stderr


# Iterations that ignore a hard stop for a while: a third Ctrl-C is what ends the run.
STUBBORN = '''"""Two workers loop for 30s; a hard stop does not end their iterations at once."""
import asyncio
import os
from pathlib import Path

from indigo_loadtest import env

options = {"vus": 2, "duration": "30s"}


async def default(vu):  # one iteration, which a graceful stop waits for
    Path(env["PIDS_DIR"], str(os.getpid())).touch()
    try:
        while True:
            await vu.http.get(f"{env['BASE']}/third/{os.getpid()}")
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        await asyncio.sleep(3)
'''


def test_a_third_ctrl_c_keeps_what_the_workers_had_shown_live(
    workdir: Path, local_server: LocalServer
) -> None:
    # The third signal cancels the run before any worker's final state comes in: the
    # summary and the run record keep each worker's last live snapshot (they used to
    # lose every worker's share: 0 requests in the export after a live count of many).
    pids_dir = workdir / "pids"
    pids_dir.mkdir()
    export = workdir / "summary.json"
    write_scenario(workdir, "stubborn", STUBBORN)
    proc = subprocess.Popen(
        cli_argv("run", "stubborn", "--workers", "2", "--env", f"PIDS_DIR={pids_dir}",
                 "--summary-export", str(export)),
        cwd=workdir, env=clean_env(BASE=local_server.url), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_for_pids(pids_dir, 2)
        time.sleep(2.5)  # past the workers' first live snapshots (every second)
        for _ in range(3):  # apart: signals sent at once would merge into one
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
        _, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, err
    sent = len(local_server.paths("/third/"))
    counted = json.loads(export.read_text())["metrics"]["http_reqs"]["count"]
    assert 0 < counted <= sent, (counted, sent, err)
    # The run record's series adds up to the run's total, not more.
    with gzip.open(workdir / "summary.timeseries.json.gz") as f:
        series = json.load(f)["series"]["metrics"]["http_reqs"]["cols"]["value"]
    assert sum(series) == counted

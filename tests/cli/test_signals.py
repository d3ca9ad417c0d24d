"""Signals at any moment still give the summary and the files (issue 9, cases 7 and 8):
a stalled final push is cut short, and CPU-bound scenario code that blocks the event
loop is broken by the second signal, in one process or in workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import LocalServer, assert_stopped, clean_env, cli_argv, write_scenario
from test_interrupt import LOOPING, wait_for_requests

from indigo_loadtest.scenario.errors import ExitCode

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


# Sends one request, then spins: the event loop never runs again by itself.
BUSY = '''"""Blocks the event loop."""
from indigo_loadtest import env

options = {{"vus": 2, "duration": "60s"}}

async def default(vu):
    await vu.http.get(env["BASE"] + "/{tag}/" + str(vu.id))
    {spin}
'''
SPIN = "while True:\n        pass"
# Even swallows the cancellation that breaks it: only the last resort ends this one.
STUBBORN_SPIN = ("while True:\n        try:\n            while True:\n                pass\n"
                 "        except BaseException:\n            pass")
STOP_BOUND = 8.0  # the issue asks for 2 s; the margin is for a loaded test machine (2 cores busy)


class StalledEndpoint:
    """A TCP server on 127.0.0.1 that accepts, reads, and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/v1/write"
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def stalled() -> Iterator[StalledEndpoint]:
    endpoint = StalledEndpoint()
    yield endpoint
    endpoint.close()


def start(workdir: Path, server: LocalServer, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_argv("run", *args, "--quiet"), cwd=workdir,
        env=clean_env(BASE=server.url, **env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def export_of(workdir: Path, name: str) -> dict:
    (export,) = (workdir / "results").glob(f"{name}_*.json")
    return json.loads(export.read_text())


@pytest.mark.parametrize("signals", [1, 2])
def test_sigint_during_the_final_push_still_writes_summary_and_export(
    workdir: Path, local_server: LocalServer, stalled: StalledEndpoint, signals: int
) -> None:
    # One push only (the final one), which the endpoint never answers within its 60 s.
    text = LOOPING.format(graceful="30s", tag=f"push{signals}", pause=0.05)
    write_scenario(workdir, "pushed", text.replace('"60s"', '"1s"'))
    proc = start(workdir, local_server, "pushed", "--workers", "1",
                 "--out", f"prometheus-rw={stalled.url}",
                 K6_PROMETHEUS_RW_PUSH_INTERVAL="1h", K6_PROMETHEUS_RW_TIMEOUT="60s")
    assert stalled.accepted.wait(20), "the final push never started"
    time.sleep(0.2)
    for _ in range(signals):  # a quick double Ctrl-C, both while the push stalls
        proc.send_signal(signal.SIGINT)
    assert_stopped(proc, STOP_BOUND, ExitCode.EXTERNAL_ABORT, "final write cut short")
    sent = len(local_server.paths(f"/push{signals}/"))
    assert export_of(workdir, "pushed")["metrics"]["http_reqs"]["count"] == sent > 0
    assert not list((workdir / "results").glob(".*.tmp"))


def test_repeated_sigint_stops_cpu_bound_code_in_one_process(
    workdir: Path, local_server: LocalServer
) -> None:
    write_scenario(workdir, "busy", BUSY.format(tag="busy1", spin=SPIN))
    proc = start(workdir, local_server, "busy", "--workers", "1", "--out", "json")
    wait_for_requests(local_server, "/busy1/", 1)
    time.sleep(0.7)  # well inside the spin
    proc.send_signal(signal.SIGINT)
    time.sleep(0.7)
    assert proc.poll() is None  # a graceful stop waits for the iteration (it never ends)
    proc.send_signal(signal.SIGINT)
    assert_stopped(proc, STOP_BOUND, ExitCode.EXTERNAL_ABORT,
                   "CPU-bound code blocks the event loop")
    # The other VU's request may have been in flight (its answer unread) when the hard stop
    # cancelled it: a cancelled request is not a sample.
    counted = export_of(workdir, "busy")["metrics"]["http_reqs"]["count"]
    assert 1 <= counted <= len(local_server.paths("/busy1/"))
    (ndjson,) = (workdir / "results").glob("busy_*.ndjson")
    points = [json.loads(line) for line in ndjson.read_text().splitlines()]
    assert sum(p["metric"] == "http_reqs" and p["type"] == "Point" for p in points) == counted


def test_third_sigint_writes_and_exits_when_the_code_swallows_the_break(
    workdir: Path, local_server: LocalServer
) -> None:
    write_scenario(workdir, "stubborn", BUSY.format(tag="stubborn", spin=STUBBORN_SPIN))
    proc = start(workdir, local_server, "stubborn", "--workers", "1", "--out", "json")
    wait_for_requests(local_server, "/stubborn/", 1)
    time.sleep(0.7)
    for _ in range(2):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.7)
    assert proc.poll() is None  # the break was swallowed
    proc.send_signal(signal.SIGINT)
    assert_stopped(proc, STOP_BOUND, ExitCode.EXTERNAL_ABORT,
                   "does not stop: writing the results")
    counted = export_of(workdir, "stubborn")["metrics"]["http_reqs"]["count"]
    assert 1 <= counted <= len(local_server.paths("/stubborn/"))
    (ndjson,) = (workdir / "results").glob("stubborn_*.ndjson")
    assert sum('"metric":"http_reqs","type":"Point"' in line
               for line in ndjson.read_text().splitlines()) == counted


def test_repeated_sigterm_stops_workers_in_cpu_bound_code(
    workdir: Path, local_server: LocalServer
) -> None:
    write_scenario(workdir, "busyw", BUSY.format(tag="busyw", spin=SPIN))
    proc = start(workdir, local_server, "busyw", "--workers", "2")
    wait_for_requests(local_server, "/busyw/", 2)  # one VU per worker, each now spinning
    time.sleep(0.7)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.7)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert_stopped(proc, STOP_BOUND, ExitCode.EXTERNAL_ABORT)
    assert export_of(workdir, "busyw")["metrics"]["http_reqs"]["count"] == 2


def test_a_signal_outside_the_runs_handlers_is_held_not_a_keyboard_interrupt() -> None:
    from indigo_loadtest.runner import SignalHold, signals_held

    with signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here: it must not raise KeyboardInterrupt
        hold = signal.getsignal(signal.SIGINT)
        assert isinstance(hold, SignalHold) and hold.take() == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is not hold  # restored


# No signal at all: the plan's end plus gracefulStop is the limit, as in k6.
ENDLESS = '''"""Each VU's first iteration sends a request; the next never gives the loop back."""
from indigo_loadtest import env

options = {"scenarios": {"spin": {"executor": "constant-vus", "vus": 2, "duration": "1s",
                                  "gracefulStop": "1s"}}}

async def default(vu):
    if vu.iteration == 0:
        await vu.http.get(env["BASE"] + env["TAG"] + str(vu.id))
        return
    while True:
        pass
'''
ENDLESS_BOUND = 12.0  # 1 s + 1 s gracefulStop, about 0.5 s to see the blocked loop, slack


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cpu_bound_code_is_interrupted_at_the_end_plus_graceful_stop(
    workdir: Path, local_server: LocalServer, workers: str
) -> None:
    write_scenario(workdir, "endless", ENDLESS)
    proc = start(workdir, local_server, "endless", "--workers", workers,
                 TAG=f"/endless{workers}/")
    _, err = assert_stopped(proc, ENDLESS_BOUND, ExitCode.OK,
                            "warning: scenario code still held the event loop when "
                            "gracefulStop ran out (CPU-bound code that never awaits)")
    # One line per run, however many workers it fired in (each worker's VU spins).
    assert err.count("still held the event loop") == 1, err
    if workers == "2":
        assert "never awaits) in 2 of 2 workers:" in err, err
    assert len(local_server.paths(f"/endless{workers}/")) == 2  # the first iterations


@pytest.mark.parametrize("workers", ["1", "2"])
def test_one_sigint_breaks_cpu_bound_code_after_graceful_stop(
    workdir: Path, local_server: LocalServer, workers: str
) -> None:
    # A long plan: only the graceful stop's own gracefulStop can end it this soon.
    write_scenario(workdir, "endless", ENDLESS.replace('"duration": "1s"', '"duration": "60s"'))
    tag = f"/graceful{workers}/"
    proc = start(workdir, local_server, "endless", "--workers", workers, TAG=tag)
    wait_for_requests(local_server, tag, 2)
    time.sleep(0.7)  # both VUs spin now
    proc.send_signal(signal.SIGINT)
    _, err = assert_stopped(proc, ENDLESS_BOUND, ExitCode.EXTERNAL_ABORT,
                            "iteration was interrupted then")
    assert err.count("still held the event loop") == 1, err


@pytest.mark.parametrize(("script", "code", "passes"), [
    ("print('TOTAL RESULTS'); sys.stderr.write('stopped'); sys.exit(105)", 105, True),
    ("print('TOTAL RESULTS'); sys.stderr.write('stopped'); sys.exit(0)", 105, False),
    ("print('TOTAL RESULTS'); sys.stderr.write('said else'); sys.exit(105)", 105, False),
    ("print('TOTAL RESULTS'); sys.stderr.write('stopped Traceback'); sys.exit(105)", 105,
     False),
    ("print('no summary'); sys.stderr.write('stopped'); sys.exit(105)", 105, False),
    ("import time; time.sleep(3.5); print('TOTAL RESULTS'); sys.stderr.write('stopped'); "
     "sys.exit(105)", 105, False),
])
def test_assert_stopped_fails_on_each_part_missing(script: str, code: int,
                                                   passes: bool) -> None:
    # Each part of the shape the tests above check, missing in turn (the last one: too slow).
    proc = subprocess.Popen([sys.executable, "-c", f"import sys; {script}"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if passes:
        assert_stopped(proc, 3.0, code, "stopped")
    else:
        with pytest.raises(AssertionError):
            assert_stopped(proc, 3.0, code, "stopped")

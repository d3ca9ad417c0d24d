"""Start the simulator in its own process (never in the caller's event loop)."""

from __future__ import annotations

import atexit
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..platform_support import detached
from .cli import READY_PREFIX
from .config import to_argv_and_env

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
POLL_S = 0.05  # how often a wait for the simulator sees `give_up`
MAX_READY_LINE = 4096  # bytes of the first line read (the ready line is far shorter)


class SimulatorStartError(RuntimeError):
    """The simulator process did not come up (the message says why, in one line)."""


class SimulatorProcess:
    """A running simulator: `.url`, `.stop()` (idempotent), a context manager."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url
        atexit.register(self.stop)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within a few seconds."""
        atexit.unregister(self.stop)
        proc = self.proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None and not proc.stdout.closed:
            proc.stdout.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SimulatorProcess {self.url} pid={self.proc.pid}>"


def start_simulator_process(host: str = "127.0.0.1", port: int = 0, *,
                            give_up: Callable[[], bool] = lambda: False,
                            **options: Any) -> SimulatorProcess:
    """Run `python -m indigo_loadtest.simulator` and return once it answers HTTP.

    `options` are `SimulatorConfig` fields (ttft_ms=..., error_rate=..., db=..., api_key=...);
    secrets travel in the child's environment, never on its command line. `give_up`,
    polled while waiting, stops the start (SimulatorStartError): e.g. a Ctrl-C.
    """
    flags, secret_env = to_argv_and_env(options)
    argv = [sys.executable, "-m", "indigo_loadtest.simulator", "--host", host,
            "--port", str(port), "--parent-pid", str(os.getpid()), *flags]
    # Its own session (process group on Windows): a Ctrl-C at the terminal stops the load
    # test gracefully while the target keeps answering (teardown may still call it); the
    # watchdog ends it after us.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env={**os.environ, **secret_env}, **detached())
    try:
        url = _wait_ready(proc, give_up)
        _wait_answers(url, proc, give_up)
    except BaseException:
        SimulatorProcess(proc, "").stop()
        raise
    return SimulatorProcess(proc, url)


def _wait_ready(proc: subprocess.Popen[bytes], give_up: Callable[[], bool]) -> str:
    """The URL from the child's ready line. A thread reads it: select() cannot wait on a
    pipe on Windows."""
    stdout = proc.stdout
    assert stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline(MAX_READY_LINE)), daemon=True,
                     name="indigo-loadtest-simulator-start").start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            first = lines.get(timeout=POLL_S)
            break
        except queue.Empty:
            _check_wait(give_up, deadline, f"simulator did not start within "
                                           f"{START_TIMEOUT_S:g}s")
    if not first:
        code = proc.wait()
        raise SimulatorStartError(f"simulator exited during start (exit code {code})")
    line = first.decode(errors="replace").strip()
    if not line.startswith(READY_PREFIX):
        raise SimulatorStartError(f"unexpected simulator output: {line[:200]}")
    return line[len(READY_PREFIX):]


def _wait_answers(url: str, proc: subprocess.Popen[bytes],
                  give_up: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    while True:
        try:
            with opener.open(url + "/v1/version", timeout=2.0) as resp:
                resp.read()
                return
        except (urllib.error.URLError, OSError) as exc:
            if proc.poll() is not None:
                raise SimulatorStartError(f"simulator at {url} does not answer: {exc}") from None
            _check_wait(give_up, deadline, f"simulator at {url} does not answer: {exc}")
            time.sleep(0.02)


def _check_wait(give_up: Callable[[], bool], deadline: float, timed_out: str) -> None:
    if give_up():
        raise SimulatorStartError("its start was given up")
    if time.monotonic() > deadline:
        raise SimulatorStartError(timed_out)

"""Slow and greedy clients (issue 22 §6): the simulator has the head, body and idle
timeouts and the connection bound a real server has (simulator/connections.py).

A real simulator process, limited to 256 file descriptors (soft and hard, so it cannot
raise them), and a slowloris client on 127.0.0.1 holding 400 half-sent requests, some
trickling a header line at a time. Without the bound the process runs out of
descriptors and stops accepting: everyone else is locked out."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from indigo_loadtest.simulator.cli import READY_PREFIX

FDS = 256
HOLDERS = 400
HEAD_TIMEOUT = 1.5  # s: --header-timeout-s, and --body-timeout-s
# How late a close may come after its timeout on a busy machine (the timer's own
# rounding of up to 1 s included).
MARGIN = 4.0
HALF_SENT = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n"


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FDS, FDS))


@pytest.fixture
def simulator() -> Iterator[tuple[str, int]]:
    """A simulator (its own process group) with few descriptors and short timeouts."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "indigo_loadtest.simulator", "--host", "127.0.0.1", "--port",
         "0", "--header-timeout-s", str(HEAD_TIMEOUT), "--body-timeout-s", str(HEAD_TIMEOUT),
         "--ttft-ms", "0", "--tokens-per-sec", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=_limit_fds,
        start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith(READY_PREFIX), line
        url = line[len(READY_PREFIX):].strip()
        yield url, int(url.rsplit(":", 1)[1])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def hold(port: int, n: int) -> list[socket.socket]:
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(HALF_SENT)
        held.append(s)
    return held


def closed_by_server(s: socket.socket, wait: float) -> bool:
    """The server closed `s` (EOF, a reset, or an answer then EOF) within `wait` s."""
    s.settimeout(wait)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def answers(url: str) -> bool:
    with urllib.request.urlopen(url + "/v1/models", timeout=5) as resp:
        return resp.status == 200


def test_half_sent_requests_lock_nobody_out_and_time_out(simulator: tuple[str, int]) -> None:
    url, port = simulator
    held = hold(port, HOLDERS)
    try:
        assert answers(url)  # the others are still served, at once
        # Trickled header lines do not extend a head's time: closed within the timeout
        # from the connection's opening, like the held ones left.
        trickling = hold(port, 3)
        started = time.monotonic()
        while time.monotonic() - started < HEAD_TIMEOUT + 0.5:
            for s in trickling:
                with contextlib.suppress(OSError):
                    s.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.3)
        for s in trickling + held[-20:]:
            assert closed_by_server(s, HEAD_TIMEOUT + MARGIN), "a half-sent head held on"
        assert answers(url)
    finally:
        for s in held:
            s.close()


def test_a_body_that_does_not_arrive_is_408(simulator: tuple[str, int]) -> None:
    url, port = simulator
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        s.settimeout(HEAD_TIMEOUT + MARGIN)
        assert s.recv(4096).startswith(b"HTTP/1.1 408 "), "no 408 for a stalled body"
        assert closed_by_server(s, MARGIN)
    assert answers(url)


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(
        simulator: tuple[str, int]) -> None:
    _, port = simulator
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(HALF_SENT + b"\r\n")
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert closed_by_server(s, HEAD_TIMEOUT + MARGIN)

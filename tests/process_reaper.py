"""Every process a test starts is killed, with its process group, when the test ends:
passed, failed or timed out (a run that swallowed SIGTERM once burned a core for 30
minutes of later tests). A pytest plugin: tests/conftest.py loads it (`pytest_plugins`).

Each `subprocess.Popen` made while a test runs (subprocess.run and check_output too)
starts in a process group of its own unless the caller chose one, and is remembered; at
the test's end whatever is left of those groups, and of the processes below them that
left the group (setsid), is sent SIGKILL. Processes started by session fixtures (the
shared simulator, a Ray cluster, Prometheus) are made before the test's own fixtures and
are not touched: their fixtures end them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_OriginalPopen = subprocess.Popen
# What a session prepares in the background while tests run (the vLLM server and its
# model, the container image) runs at a lower priority: it must not take the CPU from a
# test that times things meanwhile (a bench search failed so under load).
BACKGROUND = ("nice", "-n", "10")


class _TrackedPopen(_OriginalPopen):  # type: ignore[type-arg,misc]
    started: list[_OriginalPopen] | None = None  # the running test's, else None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.started is not None and not _chooses_group(kwargs):
            kwargs["start_new_session"] = True
        super().__init__(*args, **kwargs)
        if self.started is not None:
            self.started.append(self)


def _chooses_group(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("start_new_session")) or kwargs.get("process_group") is not None


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The parent is the 2nd field after the command, which may hold spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def _below(pids: list[int]) -> set[int]:
    children, found, todo = _children(), set(), list(pids)
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, []))
    return found


def kill_everything_of(procs: list[_OriginalPopen]) -> list[int]:
    """SIGKILL each process's group and every process below it; the pids that were
    still running (for the report)."""
    alive = [p.pid for p in procs if p.poll() is None]
    doomed = _below([p.pid for p in procs])
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # a group that outlived its leader too
    for pid in doomed - {os.getpid()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)
    return alive


@pytest.fixture(autouse=True)
def _reap_test_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    started: list[_OriginalPopen] = []
    _TrackedPopen.started = started
    try:
        yield
    finally:
        _TrackedPopen.started = None
        left = kill_everything_of(started)
        if left:
            _say(request, f"{request.node.nodeid}: killed processes it left running "
                 f"(pids {left})")


def _say(request: pytest.FixtureRequest, line: str) -> None:
    """A line on the real stderr, past pytest's capture (as its live logging writes)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        sys.stderr.write(f"\n{line}\n")
        sys.stderr.flush()


def pytest_configure(config: pytest.Config) -> None:
    subprocess.Popen = _TrackedPopen  # type: ignore[misc]

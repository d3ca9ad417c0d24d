"""Shared fixtures: real servers on loopback, never mocks."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

# Every process a test starts is killed with its process group when the test ends.
pytest_plugins = ["process_reaper"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def simulator_url() -> Iterator[str]:
    """A real simulator process on a free loopback port, shared by the session."""
    from indigo_loadtest.simulator.process import start_simulator_process

    proc = start_simulator_process(host="127.0.0.1", port=0)
    try:
        yield proc.url
    finally:
        proc.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test of the machine's own timing may retry once (pytest-rerunfailures shows it as
    # RERUN in the summary); every other test gets one try.
    for item in items:
        if item.get_closest_marker("needs_idle_core") is not None:
            item.add_marker(pytest.mark.flaky(reruns=1))

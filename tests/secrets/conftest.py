"""The secrets tests: the real CLI against the embedded simulator, and a remote-write
listener on 127.0.0.1 that records everything it receives."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The CLI tests' helpers (run the real CLI in a subprocess, a clean environment).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from rw_listener import Listener, echo_listener


@pytest.fixture(name="echo_listener")
def echo_listener_fixture() -> Iterator[Listener]:
    with echo_listener() as listener:
        yield listener

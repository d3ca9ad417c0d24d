"""The vLLM tests: run last, against one server started in the background as soon as
collection selected one of them (vllm_server.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

from vllm_server import VLLMServer

_server: VLLMServer | None = None


def _is_vllm(item: pytest.Item) -> bool:
    return item.get_closest_marker("vllm") is not None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Last: the server starts while the rest of the suite runs.
    items.sort(key=_is_vllm)  # stable: every other test keeps its order


def pytest_collection_finish(session: pytest.Session) -> None:
    global _server
    if session.config.option.collectonly:
        return
    if _server is None and any(_is_vllm(item) for item in session.items):
        _server = VLLMServer()
        _server.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _server is not None:
        _server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _server is not None and _server.url:
        terminalreporter.write_line(f"vLLM server: model built and serving in "
                                    f"{_server.started_s:.0f} s")


@pytest.fixture(scope="session")
def vllm_url() -> Iterator[str]:
    """The server's base URL; the test fails (never skips) when vLLM is missing or did
    not start, with the reason and the server log's tail."""
    if _server is None:  # selected without collection seeing it (cannot happen)
        pytest.fail("the vLLM server was not started")
    yield _server.wait()


@pytest.fixture(scope="session")
def vllm_model_dir(vllm_url: str) -> Path:
    assert _server is not None
    return _server.model

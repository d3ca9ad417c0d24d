"""Helpers of the CLI tests: run the real `indigo-loadtest` in a subprocess."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
# Configuration the developer's shell may carry, which would change what a run does.
_CLEARED = ("BASE", "MODEL", "DEBUG", "API_KEY", "LOADTEST_TOKEN", "INDIGO_SCENARIOS_DIR",
            "DURATION_MIN", "NONSTREAM_RPS", "STREAM_RPS", "SINGLE_RUN", "NO_COLOR", "K6_NO_COLOR")


@dataclass
class LocalServer:
    """A small aiohttp server; remembers the requests it served."""

    url: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def paths(self, prefix: str = "/") -> list[str]:
        return [p for p, _ in self.requests if p.startswith(prefix)]


def _k6_variables() -> set[str]:
    """K6_VUS, INDIGO_VUS, ...: they would change any run's plan and outputs."""
    from indigo_loadtest.k6compat import ENV_SETTINGS, PREFIXES

    return {prefix + name for name, _ in ENV_SETTINGS.values() for prefix in PREFIXES}


def clean_env(**extra: str) -> dict[str, str]:
    cleared = {*_CLEARED, *_k6_variables()}
    env = {k: v for k, v in os.environ.items() if k not in cleared}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "indigo_loadtest.cli", *args]


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_argv(*args), cwd=cwd, env=env or clean_env(), text=True,
                          capture_output=True, timeout=timeout)


def write_scenario(workdir: Path, name: str, text: str) -> Path:
    path = workdir / "scenarios" / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return path


def result_text(path: Path) -> str:
    """A result file's text (the run record is gzip JSON)."""
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()


@contextmanager
def serve_in_thread(app: web.Application) -> Iterator[str]:
    """Serve `app` on a free loopback port from a thread of its own; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def stopped_within(proc: subprocess.Popen[str], bound: float) -> tuple[str, str, float]:
    """The process's stdout, stderr and how long it took to end from now."""
    started = time.monotonic()
    out, err = proc.communicate(timeout=bound + 20)
    return out, err, time.monotonic() - started


def assert_stopped(proc: subprocess.Popen[str], bound: float, code: int,
                   *messages: str) -> tuple[str, str]:
    """A run that was stopped (by a signal, or by its own limit): it ended within `bound`
    seconds from now with exit `code`, said each of `messages` on stderr with no
    traceback, and still printed its summary. Returns (stdout, stderr)."""
    out, err, took = stopped_within(proc, bound)
    assert took < bound, err
    assert proc.returncode == code, err
    for message in messages:
        assert message in err, err
    assert "Traceback" not in err, err
    assert "TOTAL RESULTS" in out, out
    return out, err

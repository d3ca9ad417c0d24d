"""Which asyncio event loop runs the generator, its workers and the simulator.

uvloop where it exists (Linux, macOS): its timers are sub-millisecond and its sockets and
call_soon cheaper than the standard loop's (for the whole tool, measured: about 10 % less
CPU per request, the same per stream event). uvloop has no Windows build, so there (or
with `INDIGO_EVENT_LOOP=asyncio`, which keeps that path tested on Linux) the standard
library's loop runs the same code; docs/platforms.md says what it costs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
LOOP_ENV = "INDIGO_EVENT_LOOP"  # "uvloop" (default where installed) or "asyncio"


def loop_name() -> str:
    """"uvloop" or "asyncio": the loop `run` will use in this process."""
    chosen = os.environ.get(LOOP_ENV, "").strip().lower()
    if chosen == "asyncio":
        return "asyncio"
    if chosen not in ("", "uvloop"):
        # A misspelt "asyncio" would otherwise run, unnoticed, on the other loop.
        from .scenario.errors import ExitCode, ScenarioError

        raise ScenarioError(f"{LOOP_ENV}: expected asyncio or uvloop, got "
                            f"{os.environ[LOOP_ENV]!r}", ExitCode.USAGE)
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the chosen loop."""
    try:
        name = loop_name()
    except Exception:
        coro.close()  # never awaited: no warning at exit after the error line
        raise
    if name == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)

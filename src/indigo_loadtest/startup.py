"""SIGINT/SIGTERM during start-up (the CLI's imports, the parser, the scenario's import,
the embedded simulator's start): held, not raised as KeyboardInterrupt.

A KeyboardInterrupt in the middle of an import prints a traceback, and in a C extension's
initialisation it can crash the process (orjson's did: exit -11, nothing written). So a
first signal is held and start-up ends at its next step (`end_startup`) with one line and
exit 105; a second one, for a step that does not end, exits at once with one line. Only
stdlib imports here: this module is imported before anything else of the CLI.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

EXTERNAL_ABORT = 105  # ExitCode.EXTERNAL_ABORT, without importing the enum this early
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StartupHold:
    """The signal handler of start-up: remembers the signals; the second one exits."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: object) -> None:
        self.pending.append(signum)
        if len(self.pending) > 1:
            name = signal.Signals(signum).name
            _say(f"{name} received again during start-up: exiting now; nothing was sent")
            os._exit(EXTERNAL_ABORT)  # the embedded simulator's watchdog ends it after us

    def message(self) -> str:
        name = signal.Signals(self.pending[0]).name
        return f"interrupted by {name} during start-up: the test did not start, nothing was sent"


_hold: StartupHold | None = None


def hold_startup() -> None:
    """Hold SIGINT/SIGTERM from now until `end_startup` (the main thread only)."""
    global _hold
    if _hold is not None or threading.current_thread() is not threading.main_thread():
        return
    hold = StartupHold()
    hold.previous = {sig: signal.signal(sig, hold) for sig in SIGNALS}
    _hold = hold


def pending() -> bool:
    """A signal came during start-up (a step that waits polls this, to end sooner)."""
    return _hold is not None and bool(_hold.pending)


def checkpoint() -> None:
    """Start-up goes on unless a signal came: then it ends here (see `end_startup`)."""
    if pending():
        end_startup()


def end_startup(*, check: bool = True) -> None:
    """Start-up is over: the handlers from before `hold_startup` are back, and a signal
    that came during it ends the command here (a ScenarioError, exit 105) unless
    `check` is False. Idempotent."""
    global _hold
    hold, _hold = _hold, None
    if hold is None:
        return
    for sig, handler in hold.previous.items():
        signal.signal(sig, handler)
    if check and hold.pending:
        from .scenario.errors import ExitCode, ScenarioError

        raise ScenarioError(hold.message(), ExitCode.EXTERNAL_ABORT)


def _say(line: str) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.write(f"\nerror: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or being written when interrupted
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """The `indigo-loadtest` console script: signals are held before the CLI's imports."""
    hold_startup()
    from .cli import main as cli_main

    return cli_main(argv)

"""`run --all`: the signals of the parent, forwarded to the scenario's process."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator


class SignalForwarder:
    """Children run in their own session, so a terminal's Ctrl-C reaches only us; each
    signal is forwarded once (first: graceful stop, second: hard stop) and no further
    scenario starts. Where there are no sessions (Windows) the child shares the
    terminal's Ctrl-C, so only other signals are forwarded (`_forwards`)."""

    def __init__(self) -> None:
        self.interrupted = False
        self.child: subprocess.Popen[bytes] | None = None

    def _handle(self, signum: int, frame: object) -> None:
        self.interrupted = True
        child = self.child
        if child is not None and child.poll() is None and self._forwards(signum):
            child.send_signal(signum)

    @staticmethod
    def _forwards(signum: int) -> bool:
        from .platform_support import has_sessions

        return has_sessions() or signum != signal.SIGINT

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def run(self, argv: list[str]) -> int:
        from .platform_support import has_sessions

        self.child = subprocess.Popen(argv, start_new_session=has_sessions())
        try:
            while True:
                try:
                    return self.child.wait()
                except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                    continue
        finally:
            self.child = None

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.interrupted and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))

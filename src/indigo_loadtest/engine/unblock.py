"""Stopping scenario code that never gives the event loop back (`while True: pass`).

A stop is a callback on the event loop; CPU-bound code in an iteration keeps the loop
from ever running it. A Python-level signal handler still runs in the main thread
between two bytecodes of that code, so it can break it: `break_blocking_task` cancels
the task that holds the loop and raises the cancellation right there, exactly as a
hard stop would have cancelled it at its next `await`.

`LoopWatch` tells whether the loop is blocked (its heartbeat is late), so a handler
only breaks in when the loop could not have handled the stop itself.

`DeadlineBreaker` does the same without any signal from the user once the scenarios'
end plus `gracefulStop` has passed: k6 interrupts an iteration still running then, and
a stop that is a loop callback never reaches code that holds the loop.

Where no signal is spare for the watchdog (Windows: `platform_support.break_signal`),
`keep_breaking` does nothing: a Ctrl-C handler still breaks the code it interrupts
(`break_now`), but a worker's hard stop and the re-breaking watchdog are unavailable.
"""

from __future__ import annotations

import _thread
import asyncio
import signal
import threading
import time
from collections.abc import Container
from typing import Any

from ..platform_support import break_signal

BEAT = 0.1  # the heartbeat's period
BLOCKED_AFTER = 0.5  # no heartbeat for this long: the loop is blocked
# Sent by a worker's own stop-listener thread to its main thread (never by a user).
BREAK_SIGNAL = break_signal()


class LoopWatch:
    """A callback re-armed every BEAT seconds; its lateness says the loop is blocked."""

    def __init__(self) -> None:
        self.last_beat = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._beat()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _beat(self) -> None:
        self.last_beat = time.monotonic()
        assert self._loop is not None
        self._handle = self._loop.call_later(BEAT, self._beat)

    def blocked(self, after: float = BLOCKED_AFTER) -> bool:
        return self._handle is not None and time.monotonic() - self.last_beat > after


def break_blocking_task(spare: Container[asyncio.Future] = ()) -> bool:
    """From a signal handler in the loop's thread: cancel the running task and raise
    CancelledError into the code it is running. Returns False (raises nothing) when no
    task runs, or the running task is one of `spare` (the run itself, not a VU)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    task = asyncio.current_task(loop)
    if task is None or task in spare:
        return False
    task.cancel()
    raise asyncio.CancelledError("stopped: CPU-bound code kept the event loop blocked")


class Unblocker:
    """Breaks whatever blocks the loop once a hard stop is requested, and keeps doing so
    for a while (the next VU may start spinning as soon as the first is broken): a
    watchdog thread interrupts the main thread, whose BREAK_SIGNAL handler breaks the
    running task if the loop is (still) blocked."""

    def __init__(self, watch: LoopWatch, spare: Container[asyncio.Future] = ()) -> None:
        self.watch = watch
        self.spare = spare
        self.active = True  # False once only our own code runs (it must not be broken)
        self.broke_at = 0.0  # when a blocking task was last broken
        self._watchdog: threading.Thread | None = None
        self._previous: Any = None

    def install(self) -> None:
        """In the main thread."""
        if BREAK_SIGNAL is not None:
            self._previous = signal.signal(BREAK_SIGNAL, self._on_break)

    def uninstall(self) -> None:
        self.active = False
        if self._previous is not None:
            signal.signal(BREAK_SIGNAL, self._previous)

    def _on_break(self, signum: int, frame: object) -> None:
        if self.active and self.watch.blocked():
            self.break_now()

    def break_now(self) -> None:
        """From a signal handler in the loop's thread (see `break_blocking_task`)."""
        self.broke_at = time.monotonic()
        break_blocking_task(self.spare)

    def break_swallowed(self) -> bool:
        """The loop has not turned since the last break: the code caught it."""
        return bool(self.broke_at) and self.watch.last_beat < self.broke_at

    def keep_breaking(self, *, tries: int = 20) -> None:
        """From any thread: for tries × BLOCKED_AFTER seconds, break a blocked loop."""
        if self._watchdog is not None or BREAK_SIGNAL is None:
            return

        signum = BREAK_SIGNAL

        def watchdog() -> None:
            for _ in range(tries):
                time.sleep(BLOCKED_AFTER)
                if self.active and self.watch.blocked():
                    _thread.interrupt_main(signum)

        self._watchdog = threading.Thread(target=watchdog, name="indigo-loadtest-unblock",
                                          daemon=True)
        self._watchdog.start()


class DeadlineBreaker:
    """Past `deadline` (a `time.monotonic()` instant: the plan's last scenario end plus its
    gracefulStop), a thread interrupts the main thread every BLOCKED_AFTER seconds while
    the loop stays blocked, until `cancel()`. The run's BREAK_SIGNAL handler (an
    `Unblocker` installed by the run or by a worker process) breaks the blocking task;
    where none is installed, `interrupt_main` does nothing. Only armed in the main
    thread, the one a signal handler runs in (a Ray actor's loop runs in another)."""

    def __init__(self, deadline: float, grace: float,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._done = threading.Event()
        self.watch = LoopWatch()
        self.deadline = deadline
        self.grace = grace  # the longest gracefulStop: a graceful stop's own limit
        self.fired = False  # the loop was still blocked past the deadline
        if BREAK_SIGNAL is None or threading.current_thread() is not threading.main_thread():
            return
        self.watch.start(loop)
        threading.Thread(target=self._guard, args=(BREAK_SIGNAL,), daemon=True,
                         name="indigo-loadtest-deadline").start()

    def stopping(self) -> None:
        """From any thread: a graceful stop was asked for now, so the iterations have
        `grace` seconds from now, not from the plan's end."""
        self.deadline = min(self.deadline, time.monotonic() + self.grace)

    def _guard(self, signum: int) -> None:
        while (left := self.deadline - time.monotonic()) > 0:
            if self._done.wait(min(left, BEAT)):
                return
        while not self._done.wait(BLOCKED_AFTER):
            if self.watch.blocked():
                self.fired = True
                _thread.interrupt_main(signum)

    def cancel(self) -> None:
        self._done.set()
        self.watch.stop()

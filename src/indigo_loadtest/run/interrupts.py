"""SIGINT/SIGTERM during a run (`Interrupts`), and the handler that holds a signal
for it before it is installed (`signals_held`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .settings import Console

if TYPE_CHECKING:
    from .engine import Engine


class Interrupts:
    """SIGINT/SIGTERM: the first stops gracefully, the second stops at once (in-flight
    iterations cancelled), a third abandons teardown too. After the test, while the
    outputs stop, a signal cuts their final write short (e.g. a stalled push); the
    summary and the files are written whatever the timing.

    The handlers are Python-level (`signal.signal`), not the loop's: they run between two
    bytecodes even while CPU-bound scenario code blocks the loop. Then a second signal
    breaks that code (see `engine.unblock`), and a third, if the code swallowed the break,
    writes what it can and exits at once (`last_resort`)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, console: Console, engine: Engine,
                 run_task: asyncio.Future[Any]) -> None:
        from ..engine.unblock import LoopWatch, Unblocker

        self.console = console
        self.engine = engine
        self.run_task = run_task
        self.count = 0
        self.finishing = False  # the test is over; outputs, summary and files are written
        self.last_resort: Callable[[], None] | None = None
        self.watch = LoopWatch()
        self.unblocker = Unblocker(self.watch)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future[Any] | None = None  # an output's stop(), cut short

    def _on_signal(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.watch.blocked():
            self._while_blocked(signum)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self, signum)

    def __call__(self, signum: int) -> None:
        """A signal, handled on the event loop."""
        name = signal.Signals(signum).name
        if self.finishing:
            self._cut_short(name)
        elif self.count == 1:
            self.console.note(f"\n{name} received: stopping gracefully "
                              "(press Ctrl-C again to stop at once)")
            self.engine.stop(f"interrupted by {name}")
        elif self.count == 2:
            self._hard_stop(name)
        else:
            self.run_task.cancel()

    def _note(self, text: str) -> None:
        with contextlib.suppress(RuntimeError):  # stderr was being written when interrupted
            self.console.note(text)

    def _hard_stop(self, name: str) -> None:
        self._note(f"{name} received again: stopping now; what was measured is still written")
        self.engine.stop(f"interrupted by {name}", hard=True)
        self.unblocker.keep_breaking()  # CPU-bound code would never see the stop

    def _cut_short(self, name: str) -> None:
        task = self._stopping
        if task is not None and not task.done():
            self._note(f"\n{name} received: the outputs' final write is cut short; "
                       "the summary and files are still written")
            task.cancel()

    def _while_blocked(self, signum: int) -> None:
        """In the main thread, inside whatever code blocks the loop. While the results
        are written (our own code) a signal changes nothing: they are written."""
        if self.finishing:
            return
        name = signal.Signals(signum).name
        if self.count == 1:
            self._note(f"\n{name} received: stopping gracefully; CPU-bound code blocks "
                       "the event loop: press Ctrl-C again to break it")
            self.engine.stop(f"interrupted by {name}")
            return
        if self.unblocker.break_swallowed() and self.last_resort is not None:
            self.last_resort()  # write what can be written, and exit
        self._hard_stop(name)
        self.unblocker.break_now()

    def finish(self) -> None:
        """The test is over: from now on only our own code runs, which is never broken."""
        self.finishing = True
        self.unblocker.active = False

    async def cut_short_on_signal(self, stopping: Awaitable[None]) -> bool:
        """Await an output's stop(); False if a signal cut it short."""
        task = self._stopping = asyncio.ensure_future(stopping)
        try:
            await asyncio.wait([task])
        finally:
            self._stopping = None
        if task.cancelled():
            return False
        task.result()
        return True

    @contextlib.contextmanager
    def installed(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        self._loop = loop
        self.unblocker.spare = (self.run_task, asyncio.current_task())  # never broken
        self.watch.start(loop)
        self.unblocker.install()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in self.SIGNALS}
        hold = previous[signal.SIGINT]
        if isinstance(hold, SignalHold):  # signals from before the run's start
            for signum in hold.take():
                self._on_signal(signum, None)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.unblocker.uninstall()
            self.watch.stop()


class SignalHold:
    """The SIGINT/SIGTERM handler around the event loop, outside `Interrupts`: a signal
    before the run's own handlers are installed is held for them (they replay it); one
    after they are gone finds the results written and nothing left to stop, and must not
    turn into a KeyboardInterrupt on the way out."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    def __call__(self, signum: int, frame: object) -> None:
        self.pending.append(signum)

    def take(self) -> list[int]:
        pending, self.pending = self.pending, []
        return pending


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    from ..startup import end_startup

    end_startup()  # start-up's own hold (a signal during it ends the command, exit 105)
    hold = SignalHold()
    previous = {sig: signal.signal(sig, hold) for sig in Interrupts.SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

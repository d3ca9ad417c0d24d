"""The live progress line: elapsed time, VUs, iterations, requests per second.

On a terminal it is one line rewritten in place (on stderr, so the summary on stdout
stays clean); otherwise, e.g. in CI logs, a plain line every `plain_interval` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Snapshot:
    elapsed: float
    vus: int
    vus_max: int
    iterations: int
    http_reqs: int
    dropped_iterations: int = 0
    # The request rate measured where the requests are made (--workers); None: the
    # line computes it from http_reqs between two of its snapshots.
    req_rate: float | None = None


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def format_line(now: Snapshot, rate: float, total: float | None = None) -> str:
    elapsed = format_elapsed(now.elapsed)
    if total:
        elapsed += f"/{format_elapsed(total)}"
    parts = [
        f"running ({elapsed})",
        f"{now.vus}/{now.vus_max} VUs",
        f"{now.iterations} complete iterations",
        f"{now.http_reqs} reqs",
        f"{rate:.1f} req/s",
    ]
    if now.dropped_iterations:
        parts.append(f"{now.dropped_iterations} dropped")
    return ", ".join(parts)


class ProgressLine:
    """Prints progress until `stop()`; `run()` is meant to be a background task."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        stream: TextIO | None = None,
        *,
        total_duration: float | None = None,
        tty: bool | None = None,
        tty_interval: float = 0.5,
        plain_interval: float = 10.0,
    ) -> None:
        self.snapshot = snapshot
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = tty_interval if self.tty else plain_interval
        self.total_duration = total_duration
        self._last: Snapshot | None = None
        self._width = 0

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval)
                self.print_once()
        finally:
            self.clear()

    def print_once(self) -> None:
        now = self.snapshot()
        rate = 0.0
        if now.req_rate is not None:
            rate = now.req_rate
        elif self._last is not None and now.elapsed > self._last.elapsed:
            rate = (now.http_reqs - self._last.http_reqs) / (now.elapsed - self._last.elapsed)
        elif now.elapsed > 0:
            rate = now.http_reqs / now.elapsed
        self._last = now
        line = format_line(now, rate, self.total_duration)
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the in-place line, so what follows starts on a clean line."""
        if self.tty and self._width:
            with contextlib.suppress(OSError, ValueError):
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
            self._width = 0

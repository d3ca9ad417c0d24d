"""Whether a shard's runner (a `--workers` process, a `--ray` actor) is still alive, and
the words for how one ended: used by `WorkerPool` and every pool built on it.

A runner that sends nothing for `SILENCE_LIMIT` seconds is lost, whatever the reason:
stopped (SIGSTOP, a debugger), deadlocked, swapped out, starved of CPU, its event loop
held by scenario code, its node cut off. A live one sends a snapshot every
`snapshot_interval` (1 s at most), so the bound is ten missed snapshots or more: robust
to a busy machine, short enough that a run ends soon after its plan.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from ..metrics.registry import SHARD_SUMMED_GAUGES
from ..platform_support import is_kill_signal

SILENCE_LIMIT = 10.0
# The pool looks at the silences at least this often (seconds).
CHECK_EVERY = 1.0
# A gap between two looks longer than this means this process itself did not run (it was
# stopped with its workers, e.g. Ctrl-Z then `fg`, or starved): that time is nobody's
# silence, since no message could have been read meanwhile.
OWN_STALL = CHECK_EVERY + 2.0


class SilenceWatch:
    """When each runner was last heard from, on a clock that runs only while this
    process does (see `OWN_STALL`)."""

    def __init__(self, runners: int, limit: float = SILENCE_LIMIT) -> None:
        self.limit = limit
        now = self._checked = time.monotonic()
        self._heard = dict.fromkeys(range(runners), now)

    def heard(self, i: int) -> bool:
        """Runner `i` sent something; False if it is no longer watched (it ended)."""
        if i not in self._heard:
            return False
        self._heard[i] = time.monotonic()
        return True

    def forget(self, i: int) -> float:
        """Runner `i` ended: no longer watched. Returns when it was last heard from."""
        return self._heard.pop(i, time.monotonic())

    def silent(self) -> list[int]:
        """The runners silent for the limit or more (call at least every CHECK_EVERY)."""
        now = time.monotonic()
        gap = now - self._checked
        self._checked = now
        if gap > OWN_STALL:
            for i in self._heard:
                self._heard[i] += gap
        return [i for i, at in self._heard.items() if now - at >= self.limit]


def describe_failure(i: int, msg: Any, proc: Any = None) -> str:
    if msg is not None and msg[0] == "error":
        return f"worker {i} failed:\n{msg[1]}"
    code = proc.exitcode if proc is not None else None
    return f"worker {i} exited unexpectedly" + (f" (exit code {code})" if code else "")


def how_it_failed(msg: Any) -> str:
    """`msg` is what a worker sent instead of the expected message (None: it exited)."""
    if msg is not None and msg[0] == "error":
        last = msg[1].strip().splitlines()[-1] if msg[1].strip() else "an error"
        return f"failed with {last}"
    return "exited"


def how_it_died(proc: Any) -> str:
    """How a worker process ended, from its exit status (joined or not)."""
    code = proc.exitcode
    if code is None:
        return "closed its connection to the main process"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the out-of-memory killer sends this)" if is_kill_signal(-code) else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def how_it_went_silent(limit: float) -> str:
    """The time given with it is its last snapshot's: what it measured after is lost."""
    return (f"went silent (stopped, deadlocked, starved of CPU or its event loop held; "
            f"killed after {limit:g}s without a snapshot)")


def retired(state: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A dead worker's last snapshot as its final state: it no longer runs or holds any
    VU, so its share of the summed VU gauges is 0 from now on (its peaks are kept)."""
    out = []
    for md in state:
        if md["name"] in SHARD_SUMMED_GAUGES:
            sinks = [(items, {**st, "value": 0.0, "min": min(st["min"], 0.0)})
                     if st["count"] else (items, st) for items, st in md["sinks"]]
            md = {**md, "sinks": sinks}
        out.append(md)
    return out

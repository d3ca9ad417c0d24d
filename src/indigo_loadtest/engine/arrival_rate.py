"""Open-loop executors: iterations start on an absolute timeline, however slow the
target is (no coordinated omission).

Start times come from `schedule.py`, measured from the executor's start, so a late
wake-up never shifts later starts. At each start an idle VU runs the iteration in
a task of its own; if none is idle a new VU is initialised, up to `maxVUs`, else
the iteration is dropped and counted in `dropped_iterations`. A start that comes
more than `MAX_START_LATENESS` after its time (the process was frozen, or its loop
held) is dropped too.

The event loop's timers have millisecond granularity (libuv's, and epoll's
timeout), so the scheduler sleeps on a timer until shortly before a start and then
yields to the loop until the exact instant: I/O keeps being served meanwhile, and
starts are precise to a few tens of microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from .executors import Executor
from .health import start_delay_metric
from .schedule import constant_arrivals, gamma_arrivals, ramping_arrivals, stages_duration
from .vu import VU

# The perf_counter() instant an open-loop iteration was due to start, seen by the code it
# runs (tasks copy the context when created), so a request can record how late it was sent.
scheduled_start: ContextVar[float | None] = ContextVar("scheduled_start", default=None)

# Last stretch before a start spent yielding to the loop instead of sleeping on a
# timer. uvloop's timers fire within about half a millisecond of their deadline; the
# stock asyncio loop rounds epoll timeouts up to the next millisecond, so it needs a
# wider window (at more CPU) for the same precision.
SPIN_WINDOW_UVLOOP = 0.0004
SPIN_WINDOW_ASYNCIO = 0.0012
# Starts that are already due are made back to back; after this many the scheduler yields
# to the loop once.
LATE_STARTS_PER_YIELD = 64
# A start overdue by more than this (seconds) is dropped (`dropped_iterations`), never
# run: the process was frozen (SIGSTOP, swapped out) or its loop held, and the load it
# overslept would reach the target as a burst the plan never asked for.
MAX_START_LATENESS = 1.0


def spin_window(loop: asyncio.AbstractEventLoop) -> float:
    return SPIN_WINDOW_UVLOOP if type(loop).__module__.startswith("uvloop") else SPIN_WINDOW_ASYNCIO


class _ArrivalRateExecutor(Executor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        pre = max(cfg.pre_allocated_vus, 0)
        max_vus = max(cfg.max_vus or pre, pre)
        self._pre_vus = self.et.scale(pre)
        self._max_vus = self.et.scale(max_vus)
        # The timeline is striped over the segment re-split by maxVUs, as in k6, so a
        # shard starts iterations in proportion to the VUs it has.
        self._timeline_et = self.et.for_value(max_vus)
        self._idle: list[VU] = []
        self._m_start_delay = start_delay_metric(self.ctx.registry)

    def _arrivals(self) -> Iterator[float]:
        raise NotImplementedError

    async def _run(self) -> None:
        self._spin_window = spin_window(asyncio.get_running_loop())
        self._idle = [self._new_vu() for _ in range(self._pre_vus)]
        self._idle.reverse()  # VU 1 first
        duration = self.regular_duration() or 0.0
        start = self.started_at
        if self._timeline_et is not None:
            await self._follow_timeline(iter(self._arrivals()), start, duration)
        await self._sleep_until(start + duration)
        await self._drain()

    async def _follow_timeline(self, arrivals: Iterator[float], start: float,
                               duration: float) -> None:
        late = 0
        offset = next(arrivals, None)
        while offset is not None and offset < duration:
            due = start + offset
            now = perf_counter()
            if due > now:
                late = 0
                now = await self._wait_precise(due)
            else:
                # Behind schedule (a rate above what this process can start): let I/O,
                # stops and signals in now and then, and never run past the planned end.
                late += 1
                if late % LATE_STARTS_PER_YIELD == 0:
                    await asyncio.sleep(0)
                    now = perf_counter()
                    if now >= start + duration:
                        self._drop(1 + sum(1 for o in arrivals if o < duration))
                        return
            if self.stopping:
                return
            if now - due > MAX_START_LATENESS:  # overslept: frozen, or the loop held
                offset = self._skip_overdue(arrivals, start, duration)
                continue
            scheduled_start.set(due)
            self._start_iteration(due)
            offset = next(arrivals, None)

    def _skip_overdue(self, arrivals: Iterator[float], start: float,
                      duration: float) -> float | None:
        """Drop the start at hand and every next one overdue by more than the bound;
        returns the first that is not (None: the plan has no more)."""
        cutoff = min(perf_counter() - start - MAX_START_LATENESS, duration)
        skipped, offset = 1, next(arrivals, None)
        while offset is not None and offset < cutoff:
            skipped, offset = skipped + 1, next(arrivals, None)
        self._drop(skipped)
        return offset

    async def _wait_precise(self, due: float) -> float:
        """Returns the perf_counter() at which the wait ended (late if frozen meanwhile)."""
        window = self._spin_window
        if due - perf_counter() > window:
            await self._sleep_until(due - window)
        now = perf_counter()
        while not self.stopping and now < due:
            await asyncio.sleep(0)
            now = perf_counter()
        return now

    def _start_iteration(self, due: float) -> None:
        idle = self._idle
        if idle:
            vu = idle.pop()
        elif len(self._vus) < self._max_vus:
            vu = self._new_vu()
        else:
            self._drop(1)
            return
        self._track(asyncio.get_running_loop().create_task(self._iterate(vu, due)))

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._record(self.ctx.builtin.dropped_iterations, float(count), self.tags)

    async def _iterate(self, vu: VU, due: float) -> None:
        # The real start is when this task first runs, on a later pass of the loop.
        self._record(self._m_start_delay, (perf_counter() - due) * 1000.0, self.tags)
        try:
            await self.run_iteration(vu)
        finally:
            self._idle.append(vu)


class ConstantArrivalRate(_ArrivalRateExecutor):
    """`rate` iterations per `timeUnit`, for `duration`."""

    kind = "constant-arrival-rate"

    def regular_duration(self) -> float:
        return self.config.duration

    def _arrivals(self) -> Iterator[float]:
        cfg = self.config
        assert self._timeline_et is not None
        if cfg.arrivals in ("poisson", "gamma"):
            return gamma_arrivals(cfg.rate, cfg.time_unit, cfg.duration, self._timeline_et,
                                  cfg.burstiness, cfg.seed)
        return constant_arrivals(cfg.rate, cfg.time_unit, cfg.duration, self._timeline_et)


class RampingArrivalRate(_ArrivalRateExecutor):
    """From `startRate`, the rate (per `timeUnit`) moves linearly through `stages`."""

    kind = "ramping-arrival-rate"

    def regular_duration(self) -> float:
        return stages_duration(self.config.stages)

    def _arrivals(self) -> Iterator[float]:
        cfg = self.config
        assert self._timeline_et is not None
        return ramping_arrivals(cfg.start_rate, cfg.time_unit, cfg.stages, self._timeline_et)

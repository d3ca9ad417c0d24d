"""The six k6 executors: how many VUs run which iterations when.

Every executor waits for its `startTime`, runs until its regular end (iterations
done, duration over, or a stop), then stops starting iterations and gives the
in-flight ones `gracefulStop` before cancelling them; a cancelled iteration is not
counted, as in k6. Times come from `time.perf_counter()` (uvloop's `loop.time()`
only has millisecond resolution); the event loop's timers are used for coarse
waits only.

Closed-loop executors (`constant-vus`, `ramping-vus`, `shared-iterations`,
`per-vu-iterations`) run one long-lived task per VU. Open-loop arrival-rate
executors are in `arrival_rate.py`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from types import MappingProxyType
from typing import Any, ClassVar

from ..metrics.registry import Registry, current_tags
from ..metrics.tags import tagset
from .errors import ErrorReporter
from .plan import ScenarioConfig, TestPlan
from .schedule import ramping_vu_steps, stages_duration
from .segment import FULL, ExecutionTuple
from .vu import VU, ClientFactory, current_vu

# How long cancelled iterations get to unwind before we stop waiting for them.
CANCEL_WAIT = 2.0


class EngineError(Exception):
    """A plan the engine cannot run (unknown executor, missing exec function)."""


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class LoopTicker:
    """Tells whether the event loop ran between two points: an iteration that never
    suspended (a sync function, or async code without a real await) must yield, or
    its VU would loop without ever letting the other VUs, timers and signals run."""

    __slots__ = ("_armed", "_loop", "epoch")

    def __init__(self) -> None:
        self.epoch = 0
        self._armed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def arm(self) -> int:
        """Ask for a tick at the loop's next pass; returns the current epoch."""
        if not self._armed:
            self._armed = True
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._tick)
        return self.epoch

    def _tick(self) -> None:
        self.epoch += 1
        self._armed = False


class RunContext:
    """What the executors of one run share: metrics, VUs, setup data, error reporting."""

    def __init__(self, plan: TestPlan, registry: Registry, client_factory: ClientFactory,
                 env: Mapping[str, str], reporter: ErrorReporter) -> None:
        self.registry = registry
        self.builtin = registry.builtin
        self.client_factory = client_factory
        self.base_env = dict(env)
        self.reporter = reporter
        self.test_tags = tagset(plan.tags)
        # k6: each iteration starts with an empty cookie jar unless noCookiesReset.
        self.reset_cookies = not plan.extra.get("no_cookies_reset", False)
        self.setup_data: Any = None
        self.iterations = 0  # completed, all scenarios
        self.vus: list[VU] = []  # every VU created (for vus_max and closing)
        self.ticker = LoopTicker()
        self._idle_vus: list[VU] = []

    def acquire_vu(self) -> VU:
        """An initialised VU not used by any running scenario, or a new one."""
        if self._idle_vus:
            return self._idle_vus.pop()
        vu = VU(len(self.vus) + 1, self.client_factory, self.setup_data)
        self.vus.append(vu)
        return vu

    def release_vu(self, vu: VU) -> None:
        self._idle_vus.append(vu)


@dataclass
class ScenarioProgress:
    name: str
    executor: str
    state: str  # waiting, running, stopping, done
    vus: int
    iterations: int
    dropped: int
    fraction: float  # 0..1 of the regular schedule


class Executor:
    """Common life cycle: start time, regular phase, graceful stop, VU bookkeeping."""

    kind: ClassVar[str] = ""

    def __init__(self, config: ScenarioConfig, ctx: RunContext, fn: Callable[..., Any],
                 et: ExecutionTuple = FULL) -> None:
        self.config = config
        self.ctx = ctx
        self.fn = fn
        self.et = et
        self.name = config.name
        self.tags = ctx.test_tags.with_tags(config.tags).with_pairs(("scenario", config.name))
        self.env: Mapping[str, str] = MappingProxyType({**ctx.base_env, **config.env})
        self.iterations = 0
        self.dropped = 0
        self.state = "waiting"
        self.stopping = False
        self.started_at = 0.0
        self._hard = False
        self._wake: asyncio.Future[None] | None = None
        self._wake_when_idle = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._vus: list[VU] = []
        self._is_async = inspect.iscoroutinefunction(fn)
        b = ctx.builtin
        self._m_iterations = b.iterations
        self._m_duration = b.iteration_duration
        self._record = ctx.registry.record
        self._reset_cookies = ctx.reset_cookies

    # --- life cycle ----------------------------------------------------------------------
    async def run(self, t0: float) -> None:
        """Run this scenario; `t0` is the test's start (perf_counter)."""
        try:
            await self._sleep_until(t0 + self.config.start_time)
            if self.stopping:
                return
            self.state = "running"
            self.started_at = perf_counter()
            await self._run()
        finally:
            self.state = "done"
            for vu in self._vus:
                self.ctx.release_vu(vu)
            self._vus.clear()

    async def _run(self) -> None:
        raise NotImplementedError

    def request_stop(self) -> None:
        """Stop starting iterations; in-flight ones get gracefulStop."""
        self.stopping = True
        self._on_stopping()
        self._wake_up()

    def hard_stop(self) -> None:
        """Cancel in-flight iterations now."""
        self._hard = True
        self.request_stop()

    def _on_stopping(self) -> None:
        """Hook: let idle VU tasks notice the stop."""

    @property
    def active_vus(self) -> int:
        return len(self._vus)

    def regular_duration(self) -> float | None:
        """Length of the regular phase, if time-bound."""
        return None

    def fraction_done(self) -> float:
        d = self.regular_duration()
        if self.state == "done":
            return 1.0
        if not d or not self.started_at:
            return 0.0
        return min(1.0, (perf_counter() - self.started_at) / d)

    def progress(self) -> ScenarioProgress:
        return ScenarioProgress(self.name, self.kind, self.state, self.active_vus,
                                self.iterations, self.dropped, self.fraction_done())

    # --- waiting -------------------------------------------------------------------------
    async def _sleep_until(self, deadline: float) -> None:
        """Sleep until `deadline` (perf_counter), a stop, or another wake-up."""
        delay = deadline - perf_counter()
        if delay <= 0 or (self.stopping and not self._wake_when_idle):
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._wake = fut
        handle = loop.call_later(delay, _resolve, fut)
        try:
            await fut
        finally:
            handle.cancel()
            self._wake = None

    def _wake_up(self) -> None:
        if self._wake is not None:
            _resolve(self._wake)

    # --- tasks and VUs -------------------------------------------------------------------
    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._untrack)

    def _untrack(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks and self._wake_when_idle:
            self._wake_up()

    def _new_vu(self) -> VU:
        vu = self.ctx.acquire_vu()
        self._vus.append(vu)
        vu.activate(self.name, len(self._vus), self.tags, self.env)
        return vu

    async def _wait_idle(self, deadline: float) -> None:
        """Until every tracked task has ended, `deadline`, or a stop."""
        self._wake_when_idle = True
        while self._tasks and not self.stopping and perf_counter() < deadline:
            await self._sleep_until(deadline)

    async def _drain(self) -> None:
        """Regular end: no new iterations; gracefulStop for in-flight ones, then cancel."""
        self.stopping = True
        self.state = "stopping"
        self._on_stopping()
        self._wake_when_idle = True
        deadline = perf_counter() + self.config.graceful_stop
        while self._tasks and not self._hard and perf_counter() < deadline:
            await self._sleep_until(deadline)
        if self._tasks:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=CANCEL_WAIT)

    # --- one iteration -------------------------------------------------------------------
    async def run_iteration(self, vu: VU) -> None:
        """Run the scenario function once on `vu` and record `iterations` and
        `iteration_duration`. An exception is reported and the iteration still counts
        (as in k6); a cancelled iteration is not counted."""
        current_tags.set(vu.tags)
        current_vu.set(vu)
        if self._reset_cookies:
            vu.clear_cookies()
        start = perf_counter()
        try:
            if self._is_async:
                await self.fn(vu)
            else:
                result = self.fn(vu)
                if inspect.isawaitable(result):
                    await result
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            # Raised by the scenario code itself, not a cancellation of this VU.
            self._report(exc, vu)
        except Exception as exc:
            self._report(exc, vu)
        except SystemExit as exc:  # counted as any error; it must not end the run
            self._report(exc, vu)
        finally:
            vu.iteration += 1
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError  # the scenario code swallowed a cancellation
        elapsed_ms = (perf_counter() - start) * 1000.0
        tags = vu.tags
        self._record(self._m_iterations, 1.0, tags)
        self._record(self._m_duration, elapsed_ms, tags)
        self.iterations += 1
        self.ctx.iterations += 1


    def _report(self, exc: BaseException, vu: VU) -> None:
        self.ctx.reporter.report(
            exc, f"scenario {self.name!r} (VU {vu.id}, iteration {vu.iteration})")
        self._record(self.ctx.builtin.iteration_errors, 1.0,
                     vu.tags.with_pairs(("error_type", type(exc).__name__)))

    async def run_looped(self, vu: VU) -> None:
        """run_iteration for a VU that loops: yields to the loop if the iteration
        did not."""
        epoch = self.ctx.ticker.arm()
        await self.run_iteration(vu)
        if self.ctx.ticker.epoch == epoch:
            await asyncio.sleep(0)


class _LoopingExecutor(Executor):
    """A fixed set of VUs, each looping iterations while `_claim` allows."""

    def _vu_count(self) -> int:
        return self.et.scale(self.config.vus)

    def _claim(self, vu: VU) -> bool:
        raise NotImplementedError

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self._vu_count()):
            self._track(loop.create_task(self._vu_loop(self._new_vu())))
        end = self.started_at + (self.regular_duration() or 0.0)
        await self._wait_idle(end)
        await self._drain()

    async def _vu_loop(self, vu: VU) -> None:
        while not self.stopping and self._claim(vu):
            await self.run_looped(vu)


class SharedIterations(_LoopingExecutor):
    """`iterations` shared by `vus` VUs, within `maxDuration`."""

    kind = "shared-iterations"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # As k6: iterations follow the VUs (a shard without VUs gets no iterations).
        et = self.et.for_value(self.config.vus)
        self._total = et.scale(self.config.iterations) if et is not None else 0
        self._claimed = 0

    def _vu_count(self) -> int:
        return min(super()._vu_count(), self._total)

    def regular_duration(self) -> float:
        return self.config.max_duration

    def _claim(self, vu: VU) -> bool:
        if self._claimed >= self._total:
            return False
        self._claimed += 1
        return True

    def fraction_done(self) -> float:
        if self.state == "done" or not self._total:
            return 1.0
        return self.iterations / self._total


class PerVUIterations(_LoopingExecutor):
    """Each of `vus` VUs runs exactly `iterations` iterations, within `maxDuration`."""

    kind = "per-vu-iterations"

    def regular_duration(self) -> float:
        return self.config.max_duration

    def _claim(self, vu: VU) -> bool:
        return vu.iteration < self.config.iterations

    def fraction_done(self) -> float:
        total = self._vu_count() * self.config.iterations
        if self.state == "done" or not total:
            return 1.0
        return self.iterations / total


class ConstantVUs(_LoopingExecutor):
    """`vus` VUs loop iterations for `duration`."""

    kind = "constant-vus"

    def regular_duration(self) -> float:
        return self.config.duration

    def _claim(self, vu: VU) -> bool:
        return perf_counter() < self.started_at + self.config.duration


class _Slot:
    """One VU position of ramping-vus: active (may start iterations) or parked."""

    __slots__ = ("active", "busy", "interrupting", "resume", "serial", "task", "vu")

    def __init__(self, vu: VU) -> None:
        self.vu = vu
        self.active = False
        self.busy = False
        self.interrupting = False
        self.serial = 0  # iterations started, to match a pending hard interrupt
        self.resume = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None


class RampingVUs(Executor):
    """VUs follow `stages` linearly from `startVUs`; a VU ramped down finishes its
    iteration within `gracefulRampDown`, then is interrupted."""

    kind = "ramping-vus"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots: list[_Slot] = []

    def regular_duration(self) -> float:
        return stages_duration(self.config.stages)

    @property
    def active_vus(self) -> int:
        if self.state == "done":
            return 0
        return sum(1 for s in self._slots if s.active or s.busy)

    async def _run(self) -> None:
        cfg = self.config
        steps = ramping_vu_steps(cfg.start_vus, cfg.stages, self.et)
        for offset, target in steps:
            await self._sleep_until(self.started_at + offset)
            if self.stopping:
                break
            self._set_target(target)
        await self._sleep_until(self.started_at + self.regular_duration())
        await self._drain()

    def _set_target(self, target: int) -> None:
        loop = asyncio.get_running_loop()
        while len(self._slots) < target:
            self._slots.append(_Slot(self._new_vu()))
        for i, slot in enumerate(self._slots):
            if i < target and not slot.active:
                slot.active = True
                if slot.task is None:
                    slot.task = loop.create_task(self._slot_loop(slot))
                    self._track(slot.task)
                else:
                    slot.resume.set()
            elif i >= target and slot.active:
                slot.active = False
                if slot.busy:
                    loop.call_later(self.config.graceful_ramp_down, self._interrupt,
                                    slot, slot.serial)

    def _interrupt(self, slot: _Slot, serial: int) -> None:
        """gracefulRampDown is over: cancel the ramped-down VU's iteration."""
        if (not slot.active and slot.busy and slot.serial == serial
                and slot.task is not None and not self.stopping):
            slot.interrupting = True
            slot.task.cancel()

    def _on_stopping(self) -> None:
        for slot in self._slots:
            slot.resume.set()

    async def _slot_loop(self, slot: _Slot) -> None:
        while not self.stopping:
            try:
                if not slot.active:
                    slot.resume.clear()
                    await slot.resume.wait()
                    continue
                slot.busy = True
                slot.serial += 1
                try:
                    await self.run_looped(slot.vu)
                finally:
                    slot.busy = False
            except asyncio.CancelledError:
                if not slot.interrupting:
                    raise
                slot.interrupting = False
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()

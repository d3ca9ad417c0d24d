"""One test execution: setup(), every scenario concurrently, teardown(data).

    result = await Execution(plan, module, registry, client_factory).run()

`stop(reason)` ends it gracefully from anywhere on the loop (Ctrl-C, abortOnFail):
executors stop starting iterations and in-flight ones get their gracefulStop;
teardown still runs. `progress()` is cheap enough to read several times a second.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from types import ModuleType
from typing import Any, TextIO

from ..metrics.registry import Registry, current_tags, set_active_registry
from .arrival_rate import ConstantArrivalRate, RampingArrivalRate
from .errors import ErrorReporter, ExitCalled, SyncHookRequest
from .executors import (
    ConstantVUs,
    EngineError,
    Executor,
    PerVUIterations,
    RampingVUs,
    RunContext,
    ScenarioProgress,
    SharedIterations,
)
from .health import HealthSampler
from .plan import ScenarioConfig, TestPlan
from .segment import FULL, ExecutionTuple
from .unblock import DeadlineBreaker
from .vu import VU, ClientFactory, current_vu, sync_hook

EXECUTOR_CLASSES: dict[str, type[Executor]] = {
    c.kind: c for c in (SharedIterations, PerVUIterations, ConstantVUs, RampingVUs,
                        ConstantArrivalRate, RampingArrivalRate)
}

# How often the vus / vus_max gauges are sampled.
GAUGE_INTERVAL = 1.0


class HookTimeout(str):
    """The error of a setup() or teardown() that ran past its timeout (k6 exits 100/101
    for these, not 107): a str, so it travels wherever the other hook errors do."""


@dataclass
class ExecutionResult:
    iterations: int  # completed iterations, all scenarios
    interrupted: bool  # stopped before the plan's end (stop(), setup failure)
    stop_reason: str | None
    scenario_iterations: dict[str, int]
    dropped_iterations: int
    elapsed: float  # seconds on the load clock (see `Execution.elapsed`)
    setup_data: Any = None
    setup_error: str | None = None  # setup() raised or timed out: scenarios did not run
    teardown_error: str | None = None
    iteration_errors: dict[str, int] = field(default_factory=dict)  # 'Type at file:line' → n
    # Scenario code still held the loop when gracefulStop ran out (DeadlineBreaker fired).
    held_loop: bool = False


def held_loop_warning(where: str = "") -> str:
    """The one line saying the DeadlineBreaker broke an iteration; `where` (e.g.
    ' in 2 of 4 workers') is said by the main process of a --workers run, once."""
    return ("warning: scenario code still held the event loop when gracefulStop ran out "
            f"(CPU-bound code that never awaits){where}: its iteration was interrupted "
            "then, as k6 interrupts any iteration still running at that point\n")


@dataclass
class Progress:
    elapsed: float
    vus: int
    vus_max: int
    iterations: int
    dropped: int
    stage: str  # setup, running, teardown, done
    scenarios: list[ScenarioProgress]


class Execution:
    """Runs a TestPlan against a loaded scenario module."""

    # False in a worker's shard: its result's `held_loop` is reported by the main
    # process, once for all workers (WorkersExecution), not once per worker.
    warn_held_loop = True

    def __init__(
        self,
        plan: TestPlan,
        module: ModuleType | Any,
        registry: Registry,
        client_factory: ClientFactory,
        *,
        env: Mapping[str, str] | None = None,
        segment: ExecutionTuple | None = None,
        start_at: float | None = None,
        setup_data: Any = None,
        error_stream: TextIO | None = None,
    ) -> None:
        """`env`: the run's environment (default: `plan.extra["env"]`), under each
        scenario's own `env`. `segment`: this process's execution segment.
        `start_at`: a `time.monotonic()` instant at which the scenarios start (after
        setup), so several worker processes share one timeline. `setup_data`: what
        VUs get as `vu.data` when setup() does not run here (`plan.no_setup`, e.g. a
        worker process given the data of a setup() run once elsewhere)."""
        self.plan = plan
        self.module = module
        self.registry = registry
        self.segment = segment or FULL
        self.start_at = start_at
        self.given_setup_data = setup_data
        self.reporter = ErrorReporter(error_stream)
        base_env = env if env is not None else plan.extra.get("env", {})
        self.ctx = RunContext(plan, registry, client_factory, base_env, self.reporter)
        self.executors = [self._make_executor(sc) for sc in plan.scenarios]
        self.stage = "init"
        self.stop_reason: str | None = None
        # The load clock (perf_counter): the scenarios' common start and their end.
        self._load_t0 = 0.0
        self._load_end = 0.0
        self._hard = False
        self._hook_task: asyncio.Future[Any] | None = None
        self._breaker: DeadlineBreaker | None = None

    def _make_executor(self, sc: ScenarioConfig) -> Executor:
        cls = EXECUTOR_CLASSES.get(sc.executor)
        if cls is None:
            raise EngineError(f"scenario {sc.name!r}: unknown executor {sc.executor!r}")
        fn = getattr(self.module, sc.exec_name, None)
        if not callable(fn):
            raise EngineError(
                f"scenario {sc.name!r}: the scenario file has no function {sc.exec_name!r}")
        return cls(sc, self.ctx, fn, self.segment)

    # --- control -------------------------------------------------------------------------
    def stop(self, reason: str = "stopped", *, hard: bool = False) -> None:
        """End the test: no new iterations, in-flight ones get gracefulStop (or are
        cancelled at once with `hard`), then teardown. Idempotent; call on the loop."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._hard = self._hard or hard
        self.stopping_now()
        if hard and self._hook_task is not None:
            self._hook_task.cancel()  # a second Ctrl-C also ends setup()/teardown()
        for ex in self.executors:
            ex.hard_stop() if hard else ex.request_stop()

    def stopping_now(self) -> None:
        """From any thread, even while CPU-bound scenario code holds the loop (a stop is a
        loop callback it never lets run): that code is broken `gracefulStop` from now
        rather than at the plan's end (see `_deadline_breaker`)."""
        breaker = self._breaker
        if breaker is not None:
            breaker.stopping()

    @property
    def elapsed(self) -> float:
        """The load clock: seconds since the scenarios' common start (`start_at`, or
        setup()'s end), frozen when the last scenario ends (its gracefulStop included);
        0 before. setup() and teardown() are not on it (docs/metrics.md)."""
        if not self._load_t0:
            return 0.0
        return max(0.0, (self._load_end or perf_counter()) - self._load_t0)

    def live_as_of(self) -> float | None:
        """The load-clock instant `live_registry()` is complete up to: now while the
        scenarios run here; None before they start and once they have ended."""
        if not self._load_t0 or self._load_end:
            return None
        return self.elapsed

    def live_registry(self) -> Registry:
        """The metrics so far: in this process, the run's registry itself."""
        return self.registry

    def request_rate(self) -> float | None:
        """None: the registry's counts are current, the caller takes the rate between
        two readings (see `backend.ExecutionBackend`)."""
        return None

    def progress(self) -> Progress:
        scenarios = [ex.progress() for ex in self.executors]
        return Progress(
            elapsed=self.elapsed,
            vus=sum(s.vus for s in scenarios),
            vus_max=len(self.ctx.vus),
            iterations=self.ctx.iterations,
            dropped=sum(s.dropped for s in scenarios),
            stage=self.stage,
            scenarios=scenarios,
        )

    # --- running -------------------------------------------------------------------------
    async def run(self) -> ExecutionResult:
        set_active_registry(self.registry)
        setup_vu = VU(0, self.ctx.client_factory)
        setup_error: str | None = None
        teardown_error: str | None = None
        sampler: asyncio.Task[None] | None = None
        health: HealthSampler | None = None
        try:
            self.stage = "setup"
            data, setup_error = await self._setup(setup_vu)
            self.ctx.setup_data = data
            if setup_error is None:
                if self.stop_reason is None:
                    self.stage = "running"
                    sampler = asyncio.ensure_future(self._sample_gauges())
                    health = self._start_health()
                    await self._run_scenarios()
                    if health is not None:  # teardown() is not load: not sampled
                        health.stop()
                self.stage = "teardown"
                teardown_error = await self._teardown(setup_vu, data)
            elif self.stop_reason is None:
                self.stop_reason = f"setup() failed: {setup_error}"
        finally:
            if sampler is not None:
                sampler.cancel()
            if health is not None:
                health.stop()
            self._record_gauges()
            self.stage = "done"
            await self._close_vus(setup_vu)
        return ExecutionResult(
            iterations=self.ctx.iterations,
            interrupted=self.stop_reason is not None,
            stop_reason=self.stop_reason,
            scenario_iterations={ex.name: ex.iterations for ex in self.executors},
            dropped_iterations=sum(ex.dropped for ex in self.executors),
            elapsed=self.elapsed,
            setup_data=self.ctx.setup_data,
            setup_error=setup_error,
            teardown_error=teardown_error,
            iteration_errors=self.reporter.summary(),
            held_loop=self._breaker is not None and self._breaker.fired,
        )

    async def _run_scenarios(self) -> None:
        t0 = perf_counter()
        if self.start_at is not None:
            t0 += self.start_at - time.monotonic()
        self._load_t0 = t0
        breaker = self._deadline_breaker(t0)
        try:
            outcomes = await asyncio.gather(*(ex.run(t0) for ex in self.executors),
                                            return_exceptions=True)
        finally:
            self._load_end = perf_counter()
            if breaker is not None:
                breaker.cancel()
                if breaker.fired and self.warn_held_loop:
                    self.reporter.say(held_loop_warning())
        for ex, outcome in zip(self.executors, outcomes, strict=True):
            if isinstance(outcome, BaseException):  # an engine bug: keep the results
                self.reporter.report(outcome, f"the executor of scenario {ex.name!r}")

    def _deadline_breaker(self, t0: float) -> DeadlineBreaker | None:
        """CPU-bound code still running at the plan's hard end (each scenario's start,
        regular phase and gracefulStop) is broken then, as k6 would interrupt it."""
        ends = [ex.config.start_time + (ex.regular_duration() or math.inf)
                + ex.config.graceful_stop for ex in self.executors]
        if not ends or math.isinf(max(ends)):
            return None
        deadline = time.monotonic() + (t0 - perf_counter()) + max(ends)
        grace = max(ex.config.graceful_stop for ex in self.executors)
        self._breaker = DeadlineBreaker(deadline, grace, asyncio.get_running_loop())
        if self.stop_reason is not None:  # stopped while the scenarios were starting
            self._breaker.stopping()
        return self._breaker

    async def _setup(self, vu: VU) -> tuple[Any, str | None]:
        fn = getattr(self.module, "setup", None)
        if self.plan.no_setup or not callable(fn):
            return self.given_setup_data, None
        return await self._call_hook(fn, (), vu, "setup", self.plan.setup_timeout)

    async def _teardown(self, vu: VU, data: Any) -> str | None:
        fn = getattr(self.module, "teardown", None)
        if self.plan.no_teardown or not callable(fn):
            return None
        args = (data,) if _accepts_argument(fn) else ()
        return (await self._call_hook(fn, args, vu, "teardown", self.plan.teardown_timeout))[1]

    async def _call_hook(self, fn: Callable[..., Any], args: tuple[Any, ...], vu: VU,
                         name: str, timeout: float) -> tuple[Any, str | None]:
        """Run setup/teardown in a task of its own, as VU 0 in group `::name`."""

        async def call() -> Any:
            current_vu.set(vu)
            current_tags.set(self.ctx.test_tags.with_pairs(("group", f"::{name}")))
            if not inspect.iscoroutinefunction(fn):
                sync_hook.set(name)  # its `http.post(...)` would be a coroutine left unawaited
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    sync_hook.set(None)  # a plain function that returned a coroutine: it can
                    result = await result
            except SystemExit as exc:
                raise ExitCalled(exc.code) from None
            return result

        if self._hard:
            return None, f"{name}() skipped: the test was aborted"
        self._hook_task = asyncio.ensure_future(
            asyncio.wait_for(call(), timeout if timeout > 0 else None))
        try:
            return await self._hook_task, None
        except TimeoutError:
            return None, HookTimeout(f"{name}() did not finish within {timeout:g}s "
                                     f"({name}Timeout)")
        except asyncio.CancelledError:
            if not self._hard:
                raise
            return None, f"{name}() interrupted: the test was aborted"
        except (SyncHookRequest, ExitCalled) as exc:  # one line, no traceback
            return None, str(exc)
        except Exception as exc:
            self.reporter.report(exc, f"{name}()")
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            self._hook_task = None

    # --- gauges and cleanup ------------------------------------------------------------------
    def _record_gauges(self) -> None:
        b = self.registry.builtin
        tags = self.ctx.test_tags
        self.registry.record(b.vus, float(sum(ex.active_vus for ex in self.executors)), tags)
        self.registry.record(b.vus_max, float(len(self.ctx.vus)), tags)

    def _start_health(self) -> HealthSampler | None:
        """The generator's own health, sampled while scenarios run in this process (not in
        a parent that only runs setup() and teardown() for its workers)."""
        if not self.executors:
            return None
        health = HealthSampler(self.registry, self.ctx.test_tags, worker=self.segment.index)
        health.start()
        return health

    async def _sample_gauges(self) -> None:
        while True:
            self._record_gauges()
            # Often until the first VU runs, so that live readers (a --workers progress
            # line) show the VUs from the start rather than a second of 0/0.
            started = any(ex.active_vus for ex in self.executors)
            await asyncio.sleep(GAUGE_INTERVAL if started else GAUGE_INTERVAL / 20)

    async def _close_vus(self, setup_vu: VU) -> None:
        for vu in (setup_vu, *self.ctx.vus):
            try:
                await vu.close()
            except Exception as exc:  # a client that fails to close must not lose results
                self.reporter.report(exc, f"closing the HTTP client of VU {vu.id}")


def _accepts_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               for p in params)

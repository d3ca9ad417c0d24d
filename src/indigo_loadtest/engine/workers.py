"""`--workers N`: one test run as N processes, each a shard of the whole.

Each worker runs the test for one k6 execution segment of the evenly split sequence
`0, 1/N, ..., 1` (worker i gets `i/N:(i+1)/N`), so VUs, iterations and arrival rates
are split exactly as k6 splits them across instances, and the shards add up to the
one-process run. The parent process:

- starts the workers (the `spawn` start method: a clean interpreter each, no state
  inherited from the parent's event loop), waits until all have loaded the scenario,
  then releases them at one common monotonic instant, so arrival-rate schedules line up;
- receives each worker's `Registry.state()` every `snapshot_interval` seconds (live
  progress and live thresholds: `live_registry()`), and the final state at the end,
  merged into the run's registry;
- relays a stop (Ctrl-C, `abortOnFail`) to every worker: workers ignore SIGINT
  themselves, so a terminal's Ctrl-C reaches them only through the parent;
- outlives a worker that dies (SIGKILL, the out-of-memory killer, a crash), or that sends
  nothing for `SILENCE_LIMIT` (frozen: killed, see shard_health): the others go
  on to the planned end, the dead one's last snapshot is merged as its measurements, and
  the run is reported as degraded (`WorkersResult.lost`). A worker sent SIGTERM stops its
  share gracefully and sends its final state (a second SIGTERM kills it at once).

The work of one shard is a module-level async function (picklable by reference),
`shard_fn(ctx: ShardContext) -> result`, which runs the engine for `ctx.shard` with
`ctx.registry` active; its return value must be picklable.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

from ..metrics.registry import Registry, set_active_registry
from ..scenario.errors import ExitCode, ScenarioError
from .errors import ErrorReporter
from .execution import Execution, ExecutionResult, Progress, held_loop_warning
from .plan import TestPlan
from .segment import ExecutionTuple
from .shard_health import (
    CHECK_EVERY,
    SILENCE_LIMIT,
    SilenceWatch,
    describe_failure,
    how_it_died,
    how_it_failed,
    how_it_went_silent,
    retired,
)
from .snapshots import RequestRates, send_snapshots, state_totals
from .unblock import LoopWatch, Unblocker
from .vu import ClientFactory

ShardFunction = Callable[["ShardContext"], Awaitable[Any]]

# How long after the last worker is ready they all start: enough for the start
# message to reach every worker before the instant comes.
START_DELAY = 0.05
# Upper bound on how long loading the scenario in a worker may take.
READY_TIMEOUT = 120.0


def default_workers() -> int:
    """The default worker count: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Shard:
    """One worker's share: its execution segment of the evenly split sequence."""

    index: int  # 0-based
    execution_tuple: ExecutionTuple  # the engine's form of the segment (what executors scale by)

    def scale(self, value: int) -> int:
        """This shard's part of an integer `value` (VUs, iterations), striped as k6 does."""
        return self.execution_tuple.scale(value)


def make_shards(workers: int) -> list[Shard]:
    """The evenly split execution-segment sequence for `workers` processes."""
    if workers < 1:
        raise ValueError("--workers must be at least 1")
    seq = tuple(Fraction(i, workers) for i in range(workers + 1))
    return [Shard(i, ExecutionTuple(seq[i], seq[i + 1], seq)) for i in range(workers)]


class ShardContext:
    """What a shard function gets in its worker process."""

    def __init__(self, shard: Shard, payload: Any, registry: Registry, start_at: float):
        self.shard = shard
        self.payload = payload
        self.registry = registry
        self.start_at = start_at  # time.monotonic() instant at which all shards start
        self.stop_reason: str | None = None
        self.hard_stop = False
        self.terminated_by: str | None = None  # a signal this worker itself was sent
        # The scenario module, imported before the shard reported ready (prepare_shard).
        self.preloaded: Any = None
        self._stop_callbacks: list[Callable[[str, bool], Any]] = []
        # Called at once from the thread or signal handler that gets a stop, before the
        # loop does (`Execution.stopping_now`): the loop may be held by scenario code.
        self.stopping_hooks: list[Callable[[], Any]] = []

    def on_stop(self, fn: Callable[[str, bool], Any]) -> None:
        """Call `fn(reason, hard)` when the parent stops the test (`Execution.stop`)."""
        self._stop_callbacks.append(fn)
        if self.stop_reason is not None:
            fn(self.stop_reason, self.hard_stop)

    async def wait_start(self) -> None:
        """Sleep until the common start instant (call right before starting VUs)."""
        delay = self.start_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def stopping_now(self) -> None:
        for fn in self.stopping_hooks:
            fn()

    def _stop(self, reason: str, hard: bool = False) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        elif not hard or self.hard_stop:
            return  # already stopping, and not escalating to a hard stop
        self.hard_stop = self.hard_stop or hard
        for fn in self._stop_callbacks:
            fn(self.stop_reason, self.hard_stop)


@dataclass
class WorkersResult:
    """The shards' return values (by shard index) and any worker failures."""

    results: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    # One line per worker that did not run its share to the end (died, stopped by a
    # signal of its own, failed): the run measured less than it planned.
    lost: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.lost


# --- the worker process ----------------------------------------------------------------
def _worker_main(conn: Connection, shard: Shard, shard_fn: ShardFunction, payload: Any,
                 snapshot_interval: float) -> None:
    # The parent turns Ctrl-C into a graceful stop message; a worker killed by the
    # terminal's SIGINT would lose its metrics.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from ..event_loop import run as run_loop
        from .gc_tuning import freeze_loaded

        freeze_loaded()
        run_loop(_worker_async(conn, shard, shard_fn, payload, snapshot_interval))
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


async def _worker_async(conn: Connection, shard: Shard, shard_fn: ShardFunction,
                        payload: Any, snapshot_interval: float) -> None:
    loop = asyncio.get_running_loop()
    registry = Registry()
    set_active_registry(registry)
    ctx = ShardContext(shard, payload, registry, 0.0)
    started: asyncio.Future[float | None] = loop.create_future()
    watch = LoopWatch()  # a hard stop must also reach CPU-bound scenario code
    watch.start(loop)
    unblocker = Unblocker(watch, spare=(asyncio.current_task(),))
    unblocker.install()
    threading.Thread(target=_listen, args=(conn, loop, ctx, started, unblocker),
                     daemon=True).start()
    prepare_shard(ctx)  # ready once the scenario is loaded: the start is not eaten by it
    conn.send(("ready",))
    signal.signal(signal.SIGTERM, _sigterm_handler(loop, ctx, started))
    start_at = await started
    if start_at is None:  # stopped before the start
        conn.send(("done", None, registry.state(), ctx.terminated_by))
        return
    ctx.start_at = start_at
    snapshots = asyncio.ensure_future(
        send_snapshots(conn, registry, snapshot_interval, start_at))
    try:
        result = await shard_fn(ctx)
    finally:
        unblocker.active = False  # only our own code from here on
        snapshots.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await snapshots
    conn.send(("done", result, registry.state(), ctx.terminated_by))


def _sigterm_handler(loop: asyncio.AbstractEventLoop, ctx: ShardContext,
                     started: asyncio.Future) -> Callable[[int, Any], None]:
    """SIGTERM sent to a worker (alone, or to the whole process group as a service
    manager does): stop this shard gracefully, as the parent's own stop would, and send
    the final state. A plain signal handler, not the loop's: it also runs while an
    iteration hogs the loop, so that a second SIGTERM still ends the worker at once."""

    def handler(signum: int, frame: Any) -> None:
        if ctx.terminated_by is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        ctx.terminated_by = signal.Signals(signum).name
        reason = f"worker received {ctx.terminated_by}"
        loop.call_soon_threadsafe(lambda: started.done() or started.set_result(None))
        loop.call_soon_threadsafe(ctx._stop, reason)
        ctx.stopping_now()

    return handler


def _listen(conn: Connection, loop: asyncio.AbstractEventLoop, ctx: ShardContext,
            started: asyncio.Future, unblocker: Unblocker) -> None:
    """Worker side: messages from the parent (start, stop), on a thread of their own."""

    def resolve(value: float | None) -> None:
        if not started.done():
            started.set_result(value)

    with contextlib.suppress(EOFError, OSError):
        while True:
            msg = conn.recv()
            if msg[0] == "start":
                loop.call_soon_threadsafe(resolve, msg[1])
            elif msg[0] == "stop":
                loop.call_soon_threadsafe(resolve, None)
                loop.call_soon_threadsafe(ctx._stop, msg[1], msg[2])
                ctx.stopping_now()
                if msg[2]:
                    unblocker.keep_breaking()
    # The parent is gone: stop rather than run unsupervised.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(resolve, None)
        loop.call_soon_threadsafe(ctx._stop, "parent process exited")


# --- the parent --------------------------------------------------------------------------
class WorkerPool:
    """Runs one test as `workers` shard processes; see the module docstring.

    Other pools (engine/ray_pool.py) subclass it: they feed the same messages to
    `_await_ready` and `_collect`, and replace `run`, `_broadcast`, `_reap` and `_death`."""

    unit = "worker"  # how a shard's runner is named in the lines about it

    def __init__(
        self,
        shard_fn: ShardFunction,
        payload: Any,
        workers: int,
        registry: Registry,
        *,
        snapshot_interval: float = 1.0,
        merge: bool = True,
        error_stream: TextIO | None = None,
        silence_limit: float = SILENCE_LIMIT,
    ) -> None:
        """`merge=False`: leave the final states in `final_states` for the caller to
        merge (e.g. after a teardown that must not overwrite merged gauges).
        `error_stream`: where a worker's death is reported as it happens.
        `silence_limit`: a worker that sends nothing this long is lost (shard_health)."""
        self.silence_limit = silence_limit
        self.merge = merge
        self.error_stream = error_stream
        self._started_at = 0.0  # time.monotonic() of the common start
        self.final_states: list[list[dict[str, Any]]] = []
        self.shard_fn = shard_fn
        self.payload = payload
        self.shards = make_shards(workers)
        self.registry = registry
        self.snapshot_interval = snapshot_interval
        self._states: list[list[dict[str, Any]] | None] = [None] * workers
        # Per worker: the load-clock instant its latest snapshot holds its share up to.
        self._as_of: list[float] = [0.0] * workers
        self._conns: list[Connection] = []
        self._stop_reason: str | None = None
        self._running = 0
        self._send_lock = threading.Lock()
        self.rates = RequestRates()

    def stop(self, reason: str = "stopped", *, hard: bool = False) -> None:
        """Stop every worker: gracefully, or with `hard` at once (thread-safe)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._broadcast(("stop", reason, hard))

    def live_registry(self) -> Registry:
        """The parent's registry merged with every worker's latest snapshot, and with the
        final states of workers that ended when the caller merges those later (a copy)."""
        live = Registry()
        live.merge_state(self.registry.state())
        for st in [*self._states, *([] if self.merge else self.final_states)]:
            if st is not None:
                live.merge_state(st)
        return live

    def load_seconds(self) -> float:
        """Seconds since the common start on this process's clock (0 before it)."""
        return max(0.0, time.monotonic() - self._started_at) if self._started_at else 0.0

    def live_as_of(self) -> float | None:
        """The load-clock instant `live_registry()` holds every running shard's share up
        to: the oldest of their latest snapshots (shards that ended are there in full);
        None before any running shard has sent one."""
        times = [at for at, st in zip(self._as_of, self._states, strict=True) if st is not None]
        return min(times) if times else None

    def totals(self) -> dict[str, float]:
        """Live totals across all workers' latest snapshots or final states (see
        `state_totals`): the progress line keeps counting a worker that has ended."""
        totals: dict[str, float] = {}
        for st in [*self._states, *self.final_states]:
            for name, value in state_totals(st or []).items():
                totals[name] = totals.get(name, 0.0) + value
        return totals

    async def run(self) -> WorkersResult:
        _check_picklable(self.shard_fn, self.payload)
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        mp = multiprocessing.get_context("spawn")
        procs = []
        for shard in self.shards:
            parent_end, child_end = mp.Pipe()
            proc = mp.Process(
                target=_worker_main, name=f"indigo-loadtest-worker-{shard.index}",
                args=(child_end, shard, self.shard_fn, self.payload, self.snapshot_interval),
                daemon=True,
            )
            proc.start()
            child_end.close()
            procs.append(proc)
            self._conns.append(parent_end)
            threading.Thread(target=_read_worker, args=(shard.index, parent_end, loop, inbox),
                             daemon=True).start()
        result = WorkersResult(results=[None] * len(self.shards))
        try:
            if await self._await_ready(inbox, result):
                self._running = len(procs)
                self._started_at = time.monotonic() + START_DELAY
                self._broadcast(("start", self._started_at))
                await self._collect(inbox, procs, result)
        finally:
            self._reap(procs)
            self._keep_unfinished()
        result.stop_reason = self._stop_reason
        return result

    def _keep_unfinished(self) -> None:
        """Workers whose final state never came in (the run was cancelled, e.g. by a
        third Ctrl-C): their last snapshots are their shares, as for a dead worker, so
        the run's metrics keep what the live view already showed (it never goes back)."""
        for i, state in enumerate(self._states):
            if state is not None:
                self._keep_final(retired(state))
                self._states[i] = None

    async def _await_ready(self, inbox: asyncio.Queue, result: WorkersResult) -> bool:
        waiting = set(range(len(self.shards)))
        deadline = time.monotonic() + READY_TIMEOUT
        while waiting:
            try:
                i, msg = await asyncio.wait_for(inbox.get(), deadline - time.monotonic())
            except TimeoutError:
                result.errors.append(f"workers {sorted(waiting)} did not start in time")
                break
            if msg is not None and msg[0] == "ready":
                waiting.discard(i)
            else:
                result.errors.append(describe_failure(i, msg))
                result.lost.append(f"{self.unit} {i} {how_it_failed(msg)} before the "
                                   "test started")
                break
        if result.errors and not result.lost:
            result.lost.append(f"{result.errors[0]}: the test did not start")
        if result.errors:
            self.stop("a worker failed to start")
            return False
        return True

    async def _collect(self, inbox: asyncio.Queue, procs: list[Any],
                       result: WorkersResult) -> None:
        watch = SilenceWatch(len(self.shards), self.silence_limit)
        while self._running:
            for i in watch.silent():
                self._keep_final(retired(self._states[i] or []))
                self._lose(i, procs[i], self._silenced(i, procs[i]), result,
                           at=watch.forget(i))
                self._ended(i)
            try:
                i, msg = await asyncio.wait_for(inbox.get(), CHECK_EVERY)
            except TimeoutError:
                continue
            if watch.heard(i):  # else: a runner already lost, its pipe closing
                self._receive(i, msg, procs[i], result, watch)

    def _receive(self, i: int, msg: Any, proc: Any, result: WorkersResult,
                 watch: SilenceWatch) -> None:
        if msg is not None and msg[0] in ("state", "alive"):  # alive: no snapshot yet
            if msg[0] == "state":
                self._states[i] = msg[1]
                self._as_of[i] = msg[2]
                self.rates.observe(i, msg[1], msg[2])
            return
        watch.forget(i)
        if msg is not None and msg[0] == "done":
            result.results[i] = msg[1]
            self._keep_final(msg[2])
            # The worker itself was sent a signal: its share ended early, unless
            # the whole run was stopping anyway (a SIGTERM to the process group).
            if len(msg) > 3 and msg[3] and self._stop_reason is None:
                self._lose(i, proc, f"stopped early on {msg[3]}", result)
        elif msg is None:  # died: the others go on; its last snapshot is its share
            proc.join(timeout=5)
            self._keep_final(retired(self._states[i] or []))
            self._lose(i, proc, self._death(proc), result)
        else:  # an exception in the engine itself: it would likely hit every shard
            proc.join(timeout=5)
            self._keep_final(retired(self._states[i] or []))
            result.errors.append(describe_failure(i, msg, proc))
            self._report(result.errors[-1])
            self._lose(i, proc, how_it_failed(msg), result, going_on=False)
            self.stop(f"worker {i} failed")
        self._ended(i)

    def _ended(self, i: int) -> None:
        self.rates.forget(i)
        self._states[i] = None
        self._running -= 1

    def _silenced(self, i: int, proc: Any) -> str:
        """Runner `i` sent nothing for the bound (see shard_health): killed, so that if
        it resumes it sends no load that no longer counts (SIGKILL ends a stopped
        process too). Returns how it ended, for the line about it."""
        with contextlib.suppress(OSError, ValueError):
            proc.kill()
        return how_it_went_silent(self.silence_limit)

    def _death(self, proc: Any) -> str:
        """How a shard's runner that ended without its final state died."""
        return how_it_died(proc)

    def _keep_final(self, state: list[dict[str, Any]]) -> None:
        self.final_states.append(state)
        if self.merge:
            self.registry.merge_state(state)

    def _lose(self, i: int, proc: Any, how: str, result: WorkersResult, *,
              going_on: bool = True, at: float | None = None) -> None:
        """Record (and report now) that worker `i` did not run its share to the end
        (from `at`, a time.monotonic() instant: by default now)."""
        at = max(0.0, (time.monotonic() if at is None else at) - self._started_at)
        line = (f"{self.unit} {i} of {len(self.shards)} (pid {proc.pid}) {how} {at:.1f}s into "
                "the test; its share of the test was not run from then on")
        result.lost.append(line)
        others = self._running > 1 and self._stop_reason is None
        if going_on and others:
            line += ", the other workers go on to the planned end"
        self._report(f"warning: {line}")

    def _report(self, text: str) -> None:
        if self.error_stream is not None:
            with contextlib.suppress(OSError, ValueError):
                self.error_stream.write(f"{text.rstrip()}\n")
                self.error_stream.flush()

    def _broadcast(self, msg: tuple) -> None:
        with self._send_lock:
            for conn in self._conns:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(msg)

    def _reap(self, procs: list[Any]) -> None:
        # One 5 s grace for all: a worker stuck in code that never yields (no break signal
        # on Windows) must not hold the exit for 5 s each.
        deadline = time.monotonic() + 5
        for proc in procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        with self._send_lock:
            for conn in self._conns:
                conn.close()


def _read_worker(i: int, conn: Connection, loop: asyncio.AbstractEventLoop,
                 inbox: asyncio.Queue) -> None:
    """Parent side: one thread per worker forwards its messages to the event loop;
    None marks the end of the pipe (the worker exited)."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            msg = None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            loop.call_soon_threadsafe(inbox.put_nowait, (i, msg))
        if msg is None or msg[0] in ("done", "error"):
            return


class WorkerStartError(ScenarioError):
    """The work cannot be handed to worker processes (setup() data that cannot be
    pickled, such as a lock or a socket): a mistake in the scenario, shown in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.SCRIPT_EXCEPTION)


def _check_picklable(shard_fn: ShardFunction, payload: Any) -> None:
    """Fail before any process starts, with a message a user can act on."""
    try:
        pickle.dumps((shard_fn, payload))
    except Exception as exc:
        raise WorkerStartError(
            "--workers: the test cannot be sent to worker processes (setup() data and "
            f"options must be picklable, e.g. plain dicts, lists, str, numbers): {exc}"
        ) from None


# --- a whole test as shards: the drop-in for Execution ----------------------------------
@dataclass
class ShardJob:
    """Everything a worker needs to run its shard of a scenario (picklable)."""

    scenario_path: str
    plan: TestPlan
    env: dict[str, str]
    client_config: Any  # http.config.ClientConfig; every VU gets Client(registry, it)
    setup_data: Any = None


def load_shard_scenario(job: ShardJob, ctx: ShardContext) -> Any:
    """Activate the job's env and import its scenario into the shard's registry."""
    from ..scenario import config as config_mod
    from ..scenario.loader import load_module

    config_mod.activate(config_mod.Env(job.env))
    return load_module(Path(job.scenario_path), ctx.registry)


def prepare_shard(ctx: ShardContext) -> None:
    """Before a shard reports ready: a scenario job's module is imported, so that loading
    it takes nothing from the shard's time after the common start."""
    if isinstance(ctx.payload, ShardJob):
        ctx.preloaded = load_shard_scenario(ctx.payload, ctx)


async def run_scenario_shard(ctx: ShardContext) -> ExecutionResult:
    """The shard function for scenario files: load the scenario into this worker's
    registry, then run the plan's scenarios for this worker's execution segment."""
    from ..http.client import Client

    job: ShardJob = ctx.payload
    module = ctx.preloaded if ctx.preloaded is not None else load_shard_scenario(job, ctx)
    # setup() ran once, in the parent; teardown runs there too, after every shard.
    plan = replace(job.plan, no_setup=True, no_teardown=True)
    registry, client_config = ctx.registry, job.client_config
    execution = Execution(
        plan, module, registry, lambda: Client(registry, client_config), env=job.env,
        segment=ctx.shard.execution_tuple, start_at=ctx.start_at, setup_data=job.setup_data,
    )
    execution.warn_held_loop = False  # the main process says it once (WorkersExecution)
    ctx.on_stop(lambda reason, hard: execution.stop(reason, hard=hard))
    ctx.stopping_hooks.append(execution.stopping_now)
    result = await execution.run()
    result.setup_data = None  # the parent has it; no need to send it back
    return result


@dataclass
class WorkersExecutionResult(ExecutionResult):
    """`ExecutionResult` of a run in worker processes."""

    # One line per worker that did not run its share to the end (WorkersResult.lost):
    # the run is degraded; the runner reports each and exits WORKER_DIED.
    lost_workers: list[str] = field(default_factory=list)


class WorkersExecution:
    """`Execution`'s interface (`backend.ExecutionBackend`) for a test run as
    `workers` processes: setup() and teardown() run once, here in the parent; each
    worker runs its execution segment of every scenario; the workers' metrics are
    merged into `registry` when they finish (before that, `live_registry()` is the
    merged view: use it for live progress and abortOnFail thresholds).

        execution = WorkersExecution(plan, module, registry, client_factory,
                                     workers=2, scenario_path=path,
                                     client_config=config, env=env)
        result = await execution.run()
    """

    def __init__(
        self,
        plan: TestPlan,
        module: Any,
        registry: Registry,
        client_factory: ClientFactory,
        *,
        workers: int,
        scenario_path: str | Path,
        client_config: Any,
        env: Mapping[str, str] | None = None,
        error_stream: TextIO | None = None,
        snapshot_interval: float = 1.0,
        pool_factory: Callable[..., WorkerPool] | None = None,
    ) -> None:
        """`pool_factory`: makes the shard pool, called as `WorkerPool` is (default);
        e.g. `functools.partial(RayPool, cluster=...)` runs the shards on Ray."""
        self.pool_factory = pool_factory or WorkerPool
        self.plan = plan
        self.module = module
        self.registry = registry
        self.client_factory = client_factory
        self.workers = workers
        self.scenario_path = str(Path(scenario_path).resolve())
        self.client_config = client_config
        self.env = dict(env if env is not None else plan.extra.get("env", {}))
        self.error_stream = error_stream
        self.snapshot_interval = snapshot_interval
        self.stage = "init"
        self.stop_reason: str | None = None
        self._hard = False
        self._hook: Execution | None = None  # the parent's setup/teardown Execution
        self._pool: WorkerPool | None = None
        self._load_elapsed: float | None = None  # the load clock, frozen at the load's end
        self._merged = False

    def stop(self, reason: str = "stopped", *, hard: bool = False) -> None:
        """End the test in every worker (see `Execution.stop`). Idempotent."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._hard = self._hard or hard
        if self._hook is not None:
            self._hook.stop(reason, hard=hard)
        if self._pool is not None:
            self._pool.stop(self.stop_reason, hard=self._hard)

    @property
    def elapsed(self) -> float:
        """The load clock (see `Execution.elapsed`): from the shards' common start, after
        every one is ready (their start-up is not on it), to the end of the last one's
        scenarios."""
        if self._load_elapsed is not None:
            return self._load_elapsed
        return self._pool.load_seconds() if self._pool is not None else 0.0

    def live_as_of(self) -> float | None:
        """See `Execution.live_as_of`: the shards' latest snapshots' instant."""
        if self._pool is None or self._load_elapsed is not None:
            return None
        return self._pool.live_as_of()

    def live_registry(self) -> Registry:
        """The run's metrics so far, all workers included (a merged copy). Once the final
        states are merged into the run's registry, that registry: the pool's copy would
        count them twice."""
        if self._pool is None or self._merged:
            return self.registry
        return self._pool.live_registry()

    def request_rate(self) -> float | None:
        """The workers' summed request rate (see RequestRates); until each has sent twice,
        the average so far (a rate taken from the merged totals would jump)."""
        rate = self._pool.rates.total() if self._pool is not None else None
        if rate is None:
            http_reqs = self.live_registry().builtin.http_reqs  # type: ignore[union-attr]
            at = self.live_as_of() or self.elapsed  # the instant those counts run up to
            rate = http_reqs.aggregate().value / at if at > 0 else 0.0
        return rate

    def progress(self) -> Progress:
        t = self._pool.totals() if self._pool is not None else {}
        return Progress(
            elapsed=self.elapsed, vus=int(t.get("vus", 0)), vus_max=int(t.get("vus_max", 0)),
            iterations=int(t.get("iterations", 0)),
            dropped=int(t.get("dropped_iterations", 0)), stage=self.stage, scenarios=[],
        )

    async def run(self) -> ExecutionResult:
        self.stage = "setup"
        setup = await self._hook_run(replace(self.plan, scenarios=[], no_teardown=True))
        outcome = WorkersResult()
        teardown_error = None
        try:
            if setup.setup_error is None and self.stop_reason is None:
                self.stage = "running"
                job = ShardJob(self.scenario_path, self.plan, self.env, self.client_config,
                               setup.setup_data)
                self._pool = self.pool_factory(
                    run_scenario_shard, job, self.workers, self.registry,
                    snapshot_interval=self.snapshot_interval, merge=False,
                    error_stream=self.error_stream)
                if self.stop_reason is not None:  # stopped while the pool was being made
                    self._pool.stop(self.stop_reason, hard=self._hard)
                outcome = await self._pool.run()
        finally:  # teardown(data) runs however the scenarios ended, as in one process
            self._load_elapsed = self._load_end(outcome)
            try:
                if setup.setup_error is None:
                    self.stage = "teardown"
                    teardown = await self._hook_run(
                        replace(self.plan, scenarios=[], no_setup=True),
                        setup_data=setup.setup_data)
                    teardown_error = teardown.teardown_error
            finally:  # also when cancelled: the summary keeps what was measured
                self._merge_final_states()
        self.stage = "done"
        self._warn_held_loop(outcome)
        return self._combine(setup, outcome, teardown_error)

    def _load_end(self, outcome: WorkersResult) -> float:
        """The load clock at the end of the last shard's scenarios, as that shard measured
        it from the common start (no pipe, poll or clock skew in it); the main process's
        own reading when no shard sent its result (all died, or the run was cancelled)."""
        shards = [r.elapsed for r in outcome.results if isinstance(r, ExecutionResult)]
        if shards:
            return max(shards)
        return self._pool.load_seconds() if self._pool is not None else 0.0

    def _warn_held_loop(self, outcome: WorkersResult) -> None:
        """One line for the run, however many shards broke CPU-bound code at the end
        (each worker's own would repeat it once per worker)."""
        held = sum(isinstance(r, ExecutionResult) and r.held_loop for r in outcome.results)
        if held:
            unit = self._pool.unit if self._pool is not None else "worker"
            ErrorReporter(self.error_stream).say(
                held_loop_warning(f" in {held} of {self.workers} {unit}s"))

    def _merge_final_states(self) -> None:
        # Merged after teardown: the parent's own vus/vus_max samples (0, it runs no
        # VUs) are recorded as writes, which would replace the workers' summed values;
        # merged afterwards, they add up instead (see SHARD_SUMMED_GAUGES). No await
        # until `_merged` is set: a live reading sees either the pool's copy or this.
        final_states = self._pool.final_states if self._pool is not None else []
        for state in final_states:
            self.registry.merge_state(state)
        self._merged = True  # the registry holds everything now (see live_registry)

    async def _hook_run(self, plan: TestPlan, **kwargs: Any) -> ExecutionResult:
        self._hook = Execution(plan, self.module, self.registry, self.client_factory,
                               env=self.env, error_stream=self.error_stream, **kwargs)
        if self.stop_reason is not None:
            self._hook.stop(self.stop_reason, hard=self._hard)
        try:
            return await self._hook.run()
        finally:
            self._hook = None

    def _combine(self, setup: ExecutionResult, outcome: WorkersResult,
                 teardown_error: str | None) -> WorkersExecutionResult:
        shards = [r for r in outcome.results if isinstance(r, ExecutionResult)]
        per_scenario: dict[str, int] = {}
        errors: dict[str, int] = dict(setup.iteration_errors)
        for r in shards:
            for name, n in r.scenario_iterations.items():
                per_scenario[name] = per_scenario.get(name, 0) + n
            for kind, n in r.iteration_errors.items():
                errors[kind] = errors.get(kind, 0) + n
        for message in outcome.errors:
            errors[message.splitlines()[0]] = 1
        reason = self.stop_reason or setup.stop_reason
        if reason is None and outcome.errors:
            reason = outcome.errors[0].splitlines()[0]
        return WorkersExecutionResult(
            iterations=sum(r.iterations for r in shards),
            interrupted=reason is not None,
            stop_reason=reason,
            scenario_iterations=per_scenario,
            dropped_iterations=sum(r.dropped_iterations for r in shards),
            elapsed=self.elapsed,
            setup_data=setup.setup_data,
            setup_error=setup.setup_error,
            teardown_error=teardown_error,
            iteration_errors=errors,
            held_loop=any(r.held_loop for r in shards),
            lost_workers=list(outcome.lost),
        )

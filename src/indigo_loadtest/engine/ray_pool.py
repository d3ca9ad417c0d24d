"""`--ray`: the shards of one test as long-lived Ray actors, one per shard.

The same contract as `WorkerPool` (engine/workers.py), whose bookkeeping it reuses: the
driver (this process) feeds `_await_ready`/`_collect` the messages a worker process
would send ("ready", "state", "done", "error", None for a death), so live merging,
request rates, lost shards and their last snapshots behave exactly as with `--workers`.

- One actor per shard, placed by a placement group with the SPREAD strategy (all
  actors get room, or none start), each running its shard for the whole test: the
  driver never makes a remote call per request or per iteration.
- Each actor runs the shard on an event loop of its own (`event_loop.run`, uvloop where
  installed) in a thread, beside Ray's loop that serves the driver's calls: the engine
  is never slowed by, or slows, the control calls.
- Ready means the actor has imported the scenario (in its own registry). The driver then
  broadcasts a wall-clock start instant; each actor converts it to its own monotonic
  clock once. Only that instant crosses machines: clock skew shifts when a shard starts,
  never a measured duration.
- About once a second the driver takes each actor's latest `Registry.state()` (made on
  the shard's loop, so consistent) for progress, abortOnFail and Prometheus.
- The scenario's folder (the file, helper modules, data files) reaches the actors as
  the job's Ray `working_dir`. The run's environment values (`.env`, `--env`, secrets
  included) travel inside the actors' creation arguments, as they reach a `--workers`
  process: not as `runtime_env` `env_vars`, which Ray's runtime-env agent writes
  verbatim into its log file on every node.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

from ..metrics.registry import Registry, set_active_registry
from .shard_health import SILENCE_LIMIT
from .snapshots import snapshot_times
from .workers import ShardContext, ShardJob, WorkerPool, WorkersResult, prepare_shard

# After the last actor is ready, they all start this much later: enough for the start
# call to reach every actor of a cluster, even across a slow network.
START_DELAY = 0.5
# Upper bound on creating the actors (the placement group) and loading the scenario.
READY_TIMEOUT = 120.0
# An actor that answers no snapshot call for this long is declared lost (and killed), by
# the rule every pool shares (shard_health.SilenceWatch): a node that went silent (power,
# network) closes no connection, and Ray itself marks it dead only after its health
# checks fail, about a minute later. A live actor answers within milliseconds: the calls
# are served by Ray's loop, beside the shard's own.
NO_ANSWER_LIMIT = SILENCE_LIMIT
# How long after the actors' common snapshot instants (`snapshot_times`) the driver polls.
POLL_DELAY = 0.1


@dataclass
class RayCluster:
    """Where and how the actors run (the driver is already connected)."""

    # The scenario's folder, shipped to every actor as the job's working_dir (the actors
    # run in their copy of it); the scenario path is given relative to it.
    working_dir: str | None = None
    cpus_per_actor: float = 1.0


@dataclass
class ActorInfo:
    """Where one shard's actor runs: stands in for a worker's Process in the lines
    `WorkerPool` writes about it (`pid`), `join` is a no-op."""

    pid: str = "?"
    how: str = "died"
    exitcode: int | None = None

    def join(self, timeout: float | None = None) -> None:
        return None


# --- the actor ----------------------------------------------------------------------------
class ShardActor:
    """One shard, run on a loop of its own; its methods are called by the driver (made a
    Ray actor class by `_actor_class`)."""

    def __init__(self, shard: Any, shard_fn: Any, payload: Any, snapshot_interval: float):
        self.shard = shard
        self.shard_fn = shard_fn
        self.payload = payload
        self.snapshot_interval = snapshot_interval
        self.latest: tuple[list[dict[str, Any]], float] | None = None
        self.began: float | None = None  # time.time() at which this shard started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: ShardContext | None = None
        self._started: asyncio.Future[float | None] | None = None
        self._pending_stop: tuple[str, bool] | None = None
        self._loaded: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self._outcome: concurrent.futures.Future[tuple] = concurrent.futures.Future()

    async def ready(self) -> dict[str, Any]:
        """Load the scenario; returns where this actor runs."""
        threading.Thread(target=self._main, name="indigo-shard", daemon=True).start()
        return await asyncio.wrap_future(self._loaded)

    async def start(self, start_wall: float) -> None:
        start_at = time.monotonic() + (start_wall - time.time())
        self._call(self._resolve, start_at)

    async def stop(self, reason: str, hard: bool) -> None:
        if self._loop is None or self._ctx is None:
            self._pending_stop = (reason, hard)
            return
        self._call(self._resolve, None)
        self._call(self._ctx._stop, reason, hard)

    async def snapshot(self) -> tuple[list[dict[str, Any]], float] | None:
        return self.latest

    async def result(self) -> tuple:
        """("done", result, final state, None, start wall time) or ("error", traceback)."""
        return await asyncio.wrap_future(self._outcome)

    def _call(self, fn: Any, *args: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the shard's loop has ended
                self._loop.call_soon_threadsafe(fn, *args)

    def _resolve(self, start_at: float | None) -> None:
        if self._started is not None and not self._started.done():
            self._started.set_result(start_at)

    def _main(self) -> None:
        from ..event_loop import run as run_loop

        try:
            self._outcome.set_result(run_loop(self._run()))
        except BaseException:
            failure = ("error", traceback.format_exc())
            if not self._loaded.done():  # failed to load: ready() says so
                self._loaded.set_result({"error": failure[1]})
            self._outcome.set_result(failure)

    async def _run(self) -> tuple:
        registry = Registry()
        set_active_registry(registry)
        ctx = ShardContext(self.shard, self.payload, registry, 0.0)
        prepare_shard(ctx)
        self._started = asyncio.get_running_loop().create_future()
        self._loop, self._ctx = asyncio.get_running_loop(), ctx
        if self._pending_stop is not None:
            self._resolve(None)
            ctx._stop(*self._pending_stop)
        self._loaded.set_result(where_am_i())
        start_at = await self._started
        if start_at is None:  # stopped before the start
            return ("done", None, registry.state(), None, None)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        self.began = time.time()
        ctx.start_at = start_at
        snapshots = asyncio.ensure_future(self._keep_snapshots(registry, start_at))
        try:
            result = await self.shard_fn(ctx)
        finally:
            snapshots.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await snapshots
        return ("done", result, registry.state(), None, self.began)

    async def _keep_snapshots(self, registry: Registry, start_at: float) -> None:
        # Made on the shard's loop (the registry is not thread-safe), at the instants
        # every shard takes its own (`snapshot_times`), each with the load-clock instant
        # it holds the shard's share up to (see RequestRates); the driver's poll takes
        # the latest.
        for at in snapshot_times(self.snapshot_interval, start_at):
            await asyncio.sleep(max(0.0, start_at + at - time.monotonic()))
            self.latest = (registry.state(), time.monotonic() - start_at)


def where_am_i() -> dict[str, Any]:
    import ray

    return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}


def _actor_class() -> Any:
    import ray

    # max_concurrency: result() waits for the whole test while snapshot()/stop() are served.
    return ray.remote(max_restarts=0, max_concurrency=16)(ShardActor)


# --- the driver ---------------------------------------------------------------------------
class RayPool(WorkerPool):
    """Runs one test as one Ray actor per shard; see the module docstring. Constructed as
    `WorkerPool` is, plus `cluster`."""

    unit = "Ray actor"

    def __init__(self, *args: Any, cluster: RayCluster, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        self._actors: list[Any] = []
        self._infos = [ActorInfo() for _ in self.shards]
        self._group: Any = None
        self.start_walls: list[float] = []  # each actor's actual start (time.time())
        self.nodes: set[str] = set()  # the nodes' addresses

    @property
    def start_skew(self) -> float | None:
        """Seconds between the first and the last actor's start (one clock: one machine)."""
        return max(self.start_walls) - min(self.start_walls) if self.start_walls else None

    async def run(self) -> WorkersResult:
        inbox: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        result = WorkersResult(results=[None] * len(self.shards))
        followers: list[asyncio.Future] = []
        try:
            self._spawn()
            if self._stop_reason is not None:
                self._broadcast(("stop", self._stop_reason, False))
            for i, actor in enumerate(self._actors):
                followers.append(asyncio.ensure_future(self._ready(i, actor, inbox)))
            if await self._await_ready(inbox, result):
                self._running = len(self._actors)
                self._started_at = time.monotonic() + START_DELAY
                start_wall = time.time() + START_DELAY
                for actor in self._actors:
                    actor.start.remote(start_wall)
                followers = [asyncio.ensure_future(self._follow(i, actor, inbox))
                             for i, actor in enumerate(self._actors)]
                await self._collect(inbox, self._infos, result)
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
            self._reap(self._infos)
        result.stop_reason = self._stop_reason
        self._tell_placement()
        return result

    def _tell_placement(self) -> None:
        """One line: where the actors ran and how close together they started."""
        if not self.nodes:
            return
        skew = self.start_skew
        started = (f"; start skew {skew * 1000:.2f} ms (first to last actor)"
                   if skew is not None and len(self.start_walls) > 1 else "")
        self._report(f"ray: {len(self.shards)} actors on {len(self.nodes)} node(s) "
                     f"({', '.join(sorted(self.nodes))}){started}")

    def _spawn(self) -> None:
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        cpus = self.cluster.cpus_per_actor
        self._group = placement_group([{"CPU": cpus}] * len(self.shards), strategy="SPREAD")
        payload = self.payload
        if isinstance(payload, ShardJob) and self.cluster.working_dir is not None:
            # The actors run in their copy of the working dir.
            payload = replace(payload, scenario_path=os.path.relpath(
                payload.scenario_path, self.cluster.working_dir))
        actor_class = _actor_class()
        for shard in self.shards:
            strategy = PlacementGroupSchedulingStrategy(
                self._group, placement_group_bundle_index=shard.index)
            self._actors.append(actor_class.options(
                num_cpus=cpus, scheduling_strategy=strategy,
            ).remote(shard, self.shard_fn, payload, self.snapshot_interval))

    async def _ready(self, i: int, actor: Any, inbox: asyncio.Queue) -> None:
        try:
            info = await asyncio.wait_for(_wait(actor.ready.remote()), READY_TIMEOUT)
        except TimeoutError:
            msg: Any = ("error", f"not ready after {READY_TIMEOUT:.0f}s (the cluster has no "
                        f"room for {len(self.shards)} actors of {self.cluster.cpus_per_actor:g} "
                        "CPU, or the scenario takes that long to load)")
        except Exception as exc:
            msg = ("error", _ray_error_text(exc))
        else:
            if "error" in info:
                msg = ("error", info["error"])
            else:
                node = _node_address(info["node"])
                self._infos[i].pid = f"{info['pid']} on node {node}"
                self.nodes.add(node)
                msg = ("ready",)
        inbox.put_nowait((i, msg))

    async def _follow(self, i: int, actor: Any, inbox: asyncio.Queue) -> None:
        """Poll actor `i`'s snapshots until its result comes; then report the result, or
        its death (None) as a dead worker process's would be. Each answer is a sign of
        life for the pool's silence rule; a call that hangs (a node cut off) is none."""
        outcome = asyncio.ensure_future(_wait(actor.result.remote()))
        # Just after the instants every actor snapshots at: each poll takes the same
        # instant's snapshot from every actor, so the merged live view is one instant's.
        polls = snapshot_times(self.snapshot_interval, self._started_at)
        while not outcome.done():
            poll_at = self._started_at + next(polls) + POLL_DELAY
            await asyncio.wait([outcome], timeout=max(0.0, poll_at - time.monotonic()))
            if outcome.done():
                break
            with contextlib.suppress(Exception):  # a dead actor: its result tells
                snap = await asyncio.wait_for(_wait(actor.snapshot.remote()),
                                              self.silence_limit)
                inbox.put_nowait((i, ("alive",) if snap is None
                                  else ("state", snap[0], snap[1])))
        try:
            msg = outcome.result()
        except Exception as exc:
            self._infos[i].how = f"died ({_ray_error_text(exc)})"
            msg = None
        else:
            if msg[0] == "done" and msg[4] is not None:
                self.start_walls.append(msg[4])
        inbox.put_nowait((i, msg))

    def _silenced(self, i: int, proc: Any) -> str:
        """Actor `i` stopped answering: its node is lost or cut off. Killed, so that if it
        still runs it stops sending load that no longer counts."""
        import ray

        with contextlib.suppress(Exception):
            ray.kill(self._actors[i])
        return (f"died (no answer for {self.silence_limit:g}s: its node is lost or "
                "unreachable)")

    def _death(self, proc: Any) -> str:
        return proc.how

    def _broadcast(self, msg: tuple) -> None:
        if msg[0] != "stop":
            return
        for actor in self._actors:
            with contextlib.suppress(Exception):
                actor.stop.remote(msg[1], msg[2])

    def _reap(self, procs: list[Any]) -> None:
        from ray.util.placement_group import remove_placement_group

        import ray

        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        if self._group is not None:
            with contextlib.suppress(Exception):
                remove_placement_group(self._group)


def _node_address(node_id: str) -> str:
    """A node's address and the start of its id (several nodes may share an address)."""
    import ray

    with contextlib.suppress(Exception):
        for node in ray.nodes():
            if node.get("NodeID") == node_id:
                return f"{node.get('NodeManagerAddress')} {node_id[:8]}"
    return node_id[:8]


async def _wait(ref: Any) -> Any:
    """A Ray ObjectRef awaited on any asyncio loop (uvloop included)."""
    return await asyncio.wrap_future(ref.future())


def _ray_error_text(exc: BaseException) -> str:
    """One line about a Ray failure: its kind and the first line Ray gives."""
    text = str(exc).strip().splitlines()
    first = next((line.strip() for line in text if line.strip()), "")
    return f"{type(exc).__name__}: {first}"[:300]


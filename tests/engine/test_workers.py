"""`--workers N`: real worker processes, real scenario files, a real HTTP server.

Every test compares what N shard processes did, merged, with the exact figures of
the whole test (or of the same test run in one process)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import ThreadedServer
from hypothesis import given
from hypothesis import strategies as st

from indigo_loadtest.engine.execution import Execution, ExecutionResult
from indigo_loadtest.engine.workers import (
    WorkerPool,
    WorkersExecution,
    WorkerStartError,
    make_shards,
)
from indigo_loadtest.http.client import Client
from indigo_loadtest.http.config import ClientConfig
from indigo_loadtest.metrics.registry import Registry
from indigo_loadtest.scenario import config as config_mod
from indigo_loadtest.scenario.loader import load_module
from indigo_loadtest.scenario.options import parse_options

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


# A scenario that touches every kind of merged figure: the built-in iteration and
# HTTP metrics, a custom counter, checks, setup data handed to every worker, and a
# teardown that must run exactly once.
COUNTING_SCENARIO = '''
"""Counts what it does."""
from indigo_loadtest import Counter, check, env

done = Counter("done_by_vus")
hooks = Counter("hook_runs")
options = {OPTIONS}


def setup():
    hooks.add(1, tags={"hook": "setup"})
    return {"token": "from-setup"}


async def default(vu):
    done.add(1)
    check(vu.data, {"setup data arrived": lambda d: d["token"] == "from-setup"})
    if env.get("URL"):
        await vu.http.get(env["URL"])


def teardown(data):
    hooks.add(1, tags={"hook": "teardown"})
'''


def write_scenario(tmp_path: Path, options: dict[str, Any]) -> Path:
    path = tmp_path / "counting.py"
    path.write_text(textwrap.dedent(COUNTING_SCENARIO).replace("{OPTIONS}", repr(options)))
    return path


def run_scenario(path: Path, workers: int, env: dict[str, str],
                 during: Any = None) -> tuple[ExecutionResult, Registry]:
    """Run a scenario file as the runner does: in-process, or with N workers."""
    config_mod.activate(config_mod.Env(env))
    registry = Registry()
    module = load_module(path, registry)
    plan = parse_options(module.options).plan
    client_config = ClientConfig()

    def factory() -> Client:
        return Client(registry, client_config)

    if workers == 1:
        execution: Any = Execution(plan, module, registry, factory, env=env,
                                   error_stream=io.StringIO())
    else:
        execution = WorkersExecution(plan, module, registry, factory, workers=workers,
                                     scenario_path=path, client_config=client_config,
                                     env=env, error_stream=io.StringIO(),
                                     snapshot_interval=0.2)

    async def main() -> ExecutionResult:
        side = asyncio.ensure_future(during(execution)) if during else None
        try:
            return await execution.run()
        finally:
            if side is not None:
                await side

    return asyncio.run(main()), registry


def totals(reg: Registry) -> dict[str, float]:
    def value(name: str, **flt: str) -> float:
        m = reg.get(name)
        return 0.0 if m is None else m.aggregate(flt or None).value  # type: ignore[union-attr]

    checks = reg.get("checks").aggregate()  # type: ignore[union-attr]
    return {
        "iterations": value("iterations"),
        "done_by_vus": value("done_by_vus"),
        "http_reqs": value("http_reqs"),
        "setup runs": value("hook_runs", hook="setup"),
        "teardown runs": value("hook_runs", hook="teardown"),
        "checks passed": checks.trues,  # type: ignore[union-attr]
        "checks total": checks.total,  # type: ignore[union-attr]
        "iteration_duration count": reg.get("iteration_duration").aggregate().count,  # type: ignore
    }


@pytest.mark.parametrize("options", [
    {"scenarios": {"shared": {"executor": "shared-iterations", "vus": 3, "iterations": 41}}},
    {"scenarios": {"per_vu": {"executor": "per-vu-iterations", "vus": 5, "iterations": 7}}},
    {"scenarios": {
        "shared": {"executor": "shared-iterations", "vus": 1, "iterations": 9},
        "per_vu": {"executor": "per-vu-iterations", "vus": 3, "iterations": 4},
    }},
], ids=["shared-iterations", "per-vu-iterations", "both"])
def test_two_workers_merge_to_the_one_process_counts(tmp_path: Path, options: dict) -> None:
    with ThreadedServer() as srv:
        path = write_scenario(tmp_path, options)
        env = {"URL": srv.url}
        one_result, one = run_scenario(path, 1, env)
        two_result, two = run_scenario(path, 2, env)

    assert totals(two) == totals(one)
    assert totals(one)["setup runs"] == 1 and totals(one)["teardown runs"] == 1
    assert totals(one)["checks passed"] == totals(one)["checks total"] > 0
    assert two_result.iterations == one_result.iterations
    assert two_result.scenario_iterations == one_result.scenario_iterations
    assert not two_result.interrupted and not two_result.iteration_errors
    # The server saw every request of both runs: the shards lost none on the way.
    assert len(srv.requests) == 2 * one_result.iterations


def test_vus_split_exactly_between_workers(tmp_path: Path) -> None:
    # 5 VUs over 2 workers: 3 + 2, as k6 stripes them; vus_max adds up to 5.
    path = write_scenario(tmp_path, {"scenarios": {"s": {
        "executor": "per-vu-iterations", "vus": 5, "iterations": 2}}})
    result, reg = run_scenario(path, 2, {})
    assert result.iterations == 10
    vus_max = reg.builtin.vus_max.aggregate()
    assert vus_max.value == 5  # type: ignore[union-attr]
    # The shards' peaks add up too (3 + 2 side by side), as in one process.
    assert vus_max.max == 5  # type: ignore[union-attr]


@pytest.mark.parametrize(("scenario", "scheduled"), [
    # 60/s for 1 s: starts at 0, 1/60, ..., 59/60.
    ({"executor": "constant-arrival-rate", "rate": 60, "timeUnit": "1s", "duration": "1s",
      "preAllocatedVUs": 4}, 60),
    # From 21/s to 80/s over 1 s: the whole starts under the area, (21 + 80) / 2 = 50.5.
    ({"executor": "ramping-arrival-rate", "startRate": 21, "timeUnit": "1s",
      "preAllocatedVUs": 4, "stages": [{"duration": "1s", "target": 80}]}, 50),
], ids=["constant", "ramping"])
def test_arrival_rate_shards_sum_to_the_whole(tmp_path: Path, scenario: dict,
                                              scheduled: int) -> None:
    path = write_scenario(tmp_path, {"scenarios": {"open": scenario}})
    one_result, _ = run_scenario(path, 1, {})
    three_result, three = run_scenario(path, 3, {})
    # Every scheduled start is either run or dropped, in exactly one shard.
    whole = one_result.iterations + one_result.dropped_iterations
    assert whole == scheduled
    assert three_result.iterations + three_result.dropped_iterations == whole
    assert (three.builtin.iterations.aggregate().value  # type: ignore[union-attr]
            + three.builtin.dropped_iterations.aggregate().value) == whole  # type: ignore


@given(workers=st.integers(1, 7), value=st.integers(0, 10_000))
def test_shards_split_any_count_exactly(workers: int, value: int) -> None:
    parts = [shard.scale(value) for shard in make_shards(workers)]
    assert sum(parts) == value
    assert max(parts) - min(parts) <= 1


def test_stop_reaches_every_worker_and_keeps_their_metrics(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, {"vus": 4, "duration": "60s"})
    seen: list[int] = []

    async def stop_soon(execution: WorkersExecution) -> None:
        deadline = time.monotonic() + 30
        while execution.progress().iterations == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # live progress comes from the workers' snapshots
        seen.append(execution.progress().iterations)
        execution.stop("stopped by the test")

    started = time.monotonic()
    result, reg = run_scenario(path, 2, {}, during=stop_soon)
    assert time.monotonic() - started < 30  # not the 60 s the plan asked for
    assert seen and seen[0] > 0
    assert result.interrupted and result.stop_reason == "stopped by the test"
    assert reg.builtin.iterations.aggregate().value == result.iterations > 0  # type: ignore
    assert totals(reg)["teardown runs"] == 1


async def failing_shard(ctx: Any) -> str | None:
    if ctx.shard.index == 1:
        raise RuntimeError("shard 1 cannot run")
    stopped = asyncio.Event()
    ctx.on_stop(lambda reason, hard: stopped.set())
    # Runs until the parent stops it because the other shard failed.
    await asyncio.wait_for(stopped.wait(), 30)
    return ctx.stop_reason


async def counting_shard(ctx: Any) -> int:
    await ctx.wait_start()
    n = ctx.shard.scale(ctx.payload)
    for _ in range(n):
        ctx.registry.builtin.iterations.add(1)
    return n


def test_a_failing_worker_is_reported_and_stops_the_others() -> None:
    async def main() -> Any:
        pool = WorkerPool(failing_shard, None, 2, Registry(), snapshot_interval=0.2)
        return await asyncio.wait_for(pool.run(), 60)

    started = time.monotonic()
    result = asyncio.run(main())
    assert time.monotonic() - started < 25
    assert not result.ok
    assert any("shard 1 cannot run" in e for e in result.errors)
    assert result.stop_reason == "worker 1 failed"
    assert result.results[0] == "worker 1 failed"  # shard 0 heard why it was stopped


async def dying_shard(ctx: Any) -> str | None:
    """Shard 1 counts 5 iterations, waits for its snapshot to go out, then exits hard."""
    await ctx.wait_start()
    if ctx.shard.index == 1:
        ctx.registry.builtin.iterations.add(5)
        await asyncio.sleep(0.5)  # two snapshots (every 0.2 s) carry the 5
        os._exit(3)
    ctx.registry.builtin.iterations.add(1)
    stopped = asyncio.Event()
    ctx.on_stop(lambda reason, hard: stopped.set())
    with contextlib.suppress(TimeoutError):  # not stopped: runs its whole 1.5 s
        await asyncio.wait_for(stopped.wait(), 1.5)
    ctx.registry.builtin.iterations.add(1)
    return ctx.stop_reason


def test_a_dead_worker_is_reported_its_snapshot_kept_and_the_others_go_on() -> None:
    registry = Registry()
    errors = io.StringIO()
    pool = WorkerPool(dying_shard, None, 2, registry, snapshot_interval=0.2,
                      error_stream=errors)
    result = asyncio.run(asyncio.wait_for(pool.run(), 60))
    assert result.results[0] is None  # shard 0 was not stopped: it ran to its end
    assert result.stop_reason is None and not result.errors
    assert len(result.lost) == 1
    assert re.fullmatch(r"worker 1 of 2 \(pid \d+\) exited with code 3 \d+\.\ds into the "
                        r"test; its share of the test was not run from then on",
                        result.lost[0])
    assert "the other workers go on to the planned end" in errors.getvalue()
    # Shard 0's 2 iterations and the 5 of shard 1's last snapshot.
    assert registry.builtin.iterations.aggregate().value == 7  # type: ignore[union-attr]


def _fail_in_a_worker(parent_pid: int) -> LoadsOnlyInTheParent:
    if os.getpid() != parent_pid:
        raise RuntimeError("this payload cannot be loaded in a worker")
    return LoadsOnlyInTheParent(parent_pid)


class LoadsOnlyInTheParent:
    """Pickles fine (the check before the start passes) but fails to load in a worker."""

    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return _fail_in_a_worker, (self.parent_pid,)


def test_a_worker_that_fails_to_start_loses_the_run() -> None:
    pool = WorkerPool(counting_shard, LoadsOnlyInTheParent(os.getpid()), 2, Registry())
    result = asyncio.run(asyncio.wait_for(pool.run(), 60))
    assert not result.ok
    assert result.lost and "before the test started" in result.lost[0]
    assert result.results == [None, None]  # no shard ran


def test_a_worker_pool_merges_every_shard_into_the_registry() -> None:
    registry = Registry()
    result = asyncio.run(WorkerPool(counting_shard, 1001, 4, registry).run())
    assert result.ok
    assert result.results == [251, 250, 250, 250]
    assert registry.builtin.iterations.aggregate().value == 1001  # type: ignore[union-attr]


def test_setup_data_that_cannot_reach_the_workers_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "unpicklable.py"
    path.write_text(textwrap.dedent('''
        """setup() returns something that cannot cross a process boundary."""
        import threading

        options = {"vus": 2, "iterations": 2}


        def setup():
            return {"lock": threading.Lock()}


        async def default(vu):
            pass
    '''))
    started = time.monotonic()
    with pytest.raises(WorkerStartError, match="setup\\(\\) data and options must be picklable"):
        run_scenario(path, 2, {})
    assert time.monotonic() - started < 20  # no worker was left waiting


def test_live_metrics_after_the_merge_count_each_sample_once(tmp_path: Path) -> None:
    """Once the workers' final states are merged into the run's registry, the live view
    (progress line, time series) is that registry, not a copy that adds them again."""
    seen: list[Any] = []

    async def keep(execution: Any) -> None:
        seen.append(execution)

    options = {"scenarios": {"shared": {"executor": "shared-iterations", "vus": 2,
                                        "iterations": 6}}}
    with ThreadedServer() as srv:
        _, registry = run_scenario(write_scenario(tmp_path, options), 2, {"URL": srv.url},
                                   during=keep)
    assert totals(seen[0].live_registry()) == totals(registry)
    assert totals(registry)["iterations"] == 6

"""`--workers N`: the live merged view never goes backwards.

The progress line, abortOnFail thresholds, Prometheus remote write and the run record's
time series all read `live_registry()` while the workers run, finish, die or are
cancelled; a reading with fewer counts than an earlier one would reset Prometheus
counters and make a recorded series add up to more than the run's total. These tests
poll the view from the parent as fast as its event loop allows while real worker
processes send snapshots, finish one by one, and one of them dies."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import ThreadedServer
from test_workers import run_scenario, write_scenario

from indigo_loadtest.engine.workers import WorkerPool, WorkersExecution
from indigo_loadtest.http.client import Client
from indigo_loadtest.http.config import ClientConfig
from indigo_loadtest.metrics.registry import Registry
from indigo_loadtest.scenario import config as config_mod
from indigo_loadtest.scenario.loader import load_module
from indigo_loadtest.scenario.options import parse_options


def reading(reg: Registry) -> tuple[float, int, float]:
    """A counter's sum, a trend's count and a rate's total: every kind that only grows."""
    b = reg.builtin
    return (b.iterations.aggregate().value,  # type: ignore[union-attr]
            b.iteration_duration.aggregate().count,  # type: ignore[union-attr]
            b.checks.aggregate().total)  # type: ignore[union-attr]


def assert_never_lower(readings: list[tuple]) -> None:
    for before, after in itertools.pairwise(readings):
        assert all(a >= b for a, b in zip(after, before, strict=True)), (before, after)


async def staggered_shard(ctx: Any) -> int:
    """Counts steadily; shard 0 ends first, shard 1 last, shard 2 dies in between."""
    await ctx.wait_start()
    b = ctx.registry.builtin
    ends = {0: 0.5, 1: 1.1, 2: 0.8}[ctx.shard.index]
    started, n = time.monotonic(), 0
    while time.monotonic() - started < ends:
        b.iterations.add(1)
        b.iteration_duration.add(1.0 + n % 7)
        b.checks.add(n % 3 != 0)
        n += 1
        await asyncio.sleep(0.001)
    if ctx.shard.index == 2:
        await asyncio.sleep(0.15)  # its last snapshot (every 0.05 s) carries every count
        os._exit(3)
    return n


async def poll_until(done: asyncio.Future[Any], pool: WorkerPool) -> list[tuple]:
    """The merged view, and the progress line's totals (`totals()`), as often as can be."""
    def both() -> tuple:
        return (*reading(pool.live_registry()), pool.totals().get("iterations", 0.0))

    readings = []
    while not done.done():
        readings.append(both())
        await asyncio.sleep(0)
    readings.append(both())
    return readings


@pytest.mark.parametrize("merge", [True, False], ids=["merged-by-the-pool", "by-the-caller"])
def test_the_pool_live_view_never_loses_a_workers_share(merge: bool) -> None:
    registry = Registry()
    pool = WorkerPool(staggered_shard, None, 3, registry, snapshot_interval=0.05,
                      merge=merge, error_stream=io.StringIO())

    async def main() -> tuple[Any, list[tuple]]:
        run = asyncio.ensure_future(asyncio.wait_for(pool.run(), 60))
        readings = await poll_until(run, pool)
        return run.result(), readings

    result, readings = asyncio.run(main())
    assert len(result.lost) == 1  # shard 2 died: its last snapshot is its share
    assert len(readings) > 100 and readings[-1][0] > 0
    assert_never_lower(readings)
    final = registry
    if not merge:
        final = Registry()
        for state in pool.final_states:
            final.merge_state(state)
    assert (*reading(final), reading(final)[0]) == readings[-1]


def test_the_runs_live_view_never_goes_back_when_the_final_states_are_merged(
        tmp_path: Path) -> None:
    """Across the switch from the pool's merged copy to the run's registry (`_merged`)."""
    readings: list[tuple] = []

    async def poll(execution: Any) -> None:
        while execution.stage != "done":
            readings.append(reading(execution.live_registry()))
            await asyncio.sleep(0)
        readings.append(reading(execution.live_registry()))

    options = {"scenarios": {"shared": {"executor": "shared-iterations", "vus": 4,
                                        "iterations": 60}}}
    with ThreadedServer() as srv:
        _, registry = run_scenario(write_scenario(tmp_path, options), 3, {"URL": srv.url},
                                   during=poll)
    assert_never_lower(readings)
    assert readings[-1] == reading(registry) and readings[-1][0] == 60


LONG_SCENARIO = '''
import asyncio
options = {"scenarios": {"long": {"executor": "constant-vus", "vus": 2, "duration": "30s"}}}

async def default(vu):
    await asyncio.sleep(0.01)
'''


def test_a_cancelled_run_keeps_what_the_live_view_showed(tmp_path: Path) -> None:
    """A third Ctrl-C cancels the run: the workers' shares seen live stay in the run's
    registry (their last snapshots), rather than vanishing from the summary and the
    last point of the time series."""
    path = tmp_path / "long.py"
    path.write_text(LONG_SCENARIO)
    config_mod.activate(config_mod.Env({}))
    registry = Registry()
    module = load_module(path, registry)
    plan = parse_options(module.options).plan
    config = ClientConfig()
    execution = WorkersExecution(plan, module, registry, lambda: Client(registry, config),
                                 workers=2, scenario_path=path, client_config=config,
                                 env={}, error_stream=io.StringIO(), snapshot_interval=0.05)

    async def main() -> tuple:
        run = asyncio.ensure_future(execution.run())
        while reading(execution.live_registry())[0] < 20:
            await asyncio.sleep(0.02)
        seen = reading(execution.live_registry())
        execution.stop("interrupted by SIGINT", hard=True)  # the second Ctrl-C
        run.cancel()  # the third, before any worker's final state came in
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(run, 30)
        return seen

    started = time.monotonic()
    seen = asyncio.run(main())
    assert time.monotonic() - started < 20  # not the 30 s planned
    after = reading(registry)
    assert all(a >= s for a, s in zip(after, seen, strict=True)), (seen, after)
    assert reading(execution.live_registry()) == after

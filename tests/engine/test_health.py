"""The generator-health sampler on a real event loop, and how its warnings are judged."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
import uvloop

from indigo_loadtest.engine.health import (
    CPU_WAIT,
    LOOP_LAG,
    SELECTOR_TIMER_RESOLUTION,
    TIMER_RESOLUTION,
    HealthSampler,
    health_warnings,
    robust_percentile,
    timer_resolution,
)
from indigo_loadtest.metrics.registry import Registry
from indigo_loadtest.metrics.sinks import TrendSink
from indigo_loadtest.metrics.tags import tagset


def busy_cpu(seconds: float) -> None:
    t = time.process_time()
    while time.process_time() - t < seconds:
        pass


def lag_samples(registry: Registry) -> TrendSink:
    return registry.metrics[LOOP_LAG].aggregate()  # type: ignore[return-value]


def test_a_block_longer_than_a_slot_gives_a_sample_for_every_slot_it_covered() -> None:
    registry = Registry()
    walls: list[float] = []

    async def main() -> None:
        sampler = HealthSampler(registry, tagset({"testid": "t"}), worker=3)
        t0 = time.perf_counter()
        sampler.start()
        await asyncio.sleep(0.25)
        busy_cpu(0.35)  # the loop is held for 350 ms of CPU (more wall time if shared)
        await asyncio.sleep(0.15)
        sampler.stop()
        walls.append(time.perf_counter() - t0)

    uvloop.run(main())
    metric = registry.metrics[LOOP_LAG]
    (tags,) = metric.sinks
    assert tags.as_dict() == {"testid": "t", "worker": "3"}
    lag = lag_samples(registry)
    # One sample per 100 ms slot, whether its timer fired or the loop was held.
    slots = walls[0] / 0.1
    assert slots - 2 <= lag.count <= slots + 1, (lag.count, walls)
    # The slots the block covered were late by about 350, 250, 150 and 50 ms of its work
    # (the time the OS ran other processes meanwhile is generator_cpu_wait): the two
    # highest samples are over 100 ms, the highest over 200 ms.
    assert lag.max >= 200
    assert lag.percentile(100 * (lag.count - 2) / (lag.count - 1)) >= 100
    assert registry.metrics["generator_cpu_percent"].aggregate().count >= 1


@pytest.mark.needs_idle_core  # timer precision: a busy machine's late wake-ups are lag
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_quiet_loop_has_no_lag_of_its_own(loop: str) -> None:
    """The standard loop's timers fire up to 1 ms late (epoll waits in whole
    milliseconds): that is its resolution, not lag, on either loop."""
    registry = Registry()

    async def main() -> None:
        sampler = HealthSampler(registry, tagset({}))
        sampler.start()
        await asyncio.sleep(1.0)
        sampler.stop()

    (uvloop.run if loop == "uvloop" else asyncio.run)(main())
    lag = lag_samples(registry)
    assert lag.count >= 8
    assert robust_percentile(lag, 99) < 1.0  # ms: far from a busy loop's tens of ms
    assert health_warnings(registry) == [] or all(
        "waiting for a CPU" in ln or "other processes" in ln for ln in health_warnings(registry))


def test_each_loop_has_its_own_timer_resolution() -> None:
    loops = {"uvloop": uvloop.new_event_loop(), "selector": asyncio.SelectorEventLoop()}
    try:
        assert timer_resolution(loops["uvloop"]) == TIMER_RESOLUTION == 0.0005
        assert timer_resolution(loops["selector"]) == SELECTOR_TIMER_RESOLUTION == 0.001
    finally:
        for each in loops.values():
            each.close()


def sink_of(values: list[float]) -> TrendSink:
    sink = TrendSink()
    for v in values:
        sink.add(v)
    return sink


def test_one_hiccup_is_not_judged_two_are() -> None:
    assert robust_percentile(sink_of([0.0] * 19 + [5.0]), 99) == 0.0
    assert robust_percentile(sink_of([0.0] * 18 + [5.0, 6.0]), 99) >= 4.99
    assert robust_percentile(sink_of([5.0]), 99) is None
    # With many samples it is the plain percentile.
    many = sink_of([0.0] * 990 + [5.0] * 10)
    assert robust_percentile(many, 99) == many.percentile(99)


def record(registry: Registry, name: str, worker: str, values: list[float]) -> None:
    metric = registry.metric(name, "trend", is_time=True)
    for v in values:
        registry.record(metric, v, tagset({"worker": worker}))


def test_warnings_name_the_workers_over_the_level_and_the_cure() -> None:
    registry = Registry()
    record(registry, LOOP_LAG, "0", [0.0] * 20)
    record(registry, LOOP_LAG, "1", [0.0] * 10 + [20.0] * 10)
    record(registry, CPU_WAIT, "0", [0.0] * 20)
    record(registry, CPU_WAIT, "1", [0.0] * 20)
    lines = health_warnings(registry)
    assert len(lines) == 2, lines
    assert re.match(r"generator: event-loop lag p\(99\)=(19\.9\d|20)ms in worker 1 \(level 1ms\)",
                    lines[0]), lines
    assert "more --workers" in lines[1]
    record(registry, CPU_WAIT, "0", [9.0] * 5)  # now the machine too, in worker 0
    lines = health_warnings(registry)
    assert any(re.match(r"generator: waiting for a CPU p\(99\)=[\d.]+ms in worker 0 \(", ln)
               for ln in lines), lines
    assert "cores to itself" in lines[-1]


def test_a_single_process_is_named_as_such() -> None:
    registry = Registry()
    record(registry, LOOP_LAG, "0", [30.0] * 5)
    assert "in the generator process (level 1ms)" in health_warnings(registry)[0]

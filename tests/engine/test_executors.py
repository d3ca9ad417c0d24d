"""Each executor's schedule: iteration counts, VU counts over time, arrival timing,
dropped iterations, startTime, gracefulStop and stop()."""

from __future__ import annotations

import asyncio
from time import perf_counter

import pytest
from engine_helpers import count, module, run, scenario

from indigo_loadtest import sleep
from indigo_loadtest.engine.execution import Execution


def recorder(delay: float = 0.0):
    """A scenario function recording (vu id, iteration, start time) of each call."""
    calls: list[tuple[int, int, float]] = []

    async def default(vu):
        calls.append((vu.id, vu.iteration, perf_counter()))
        if delay:
            await sleep(delay)

    return calls, default


def test_shared_iterations_runs_exactly_the_iterations_over_all_vus():
    calls, fn = recorder(0.002)
    result, reg, _ = run(scenario("shared-iterations", vus=4, iterations=37), module(default=fn))
    assert result.iterations == 37 == len(calls)
    assert count(reg, "iterations", scenario="default") == 37
    assert {vu for vu, _, _ in calls} == {1, 2, 3, 4}
    assert not result.interrupted


def test_shared_iterations_never_uses_more_vus_than_iterations():
    calls, fn = recorder(0.01)
    result, _, _ = run(scenario("shared-iterations", vus=10, iterations=3), module(default=fn))
    assert result.iterations == 3
    assert len({vu for vu, _, _ in calls}) == 3


def test_per_vu_iterations_gives_each_vu_its_iterations():
    calls, fn = recorder(0.001)
    result, _, _ = run(scenario("per-vu-iterations", vus=3, iterations=5), module(default=fn))
    assert result.iterations == 15
    for vu in (1, 2, 3):
        assert sorted(i for v, i, _ in calls if v == vu) == [0, 1, 2, 3, 4]


def test_max_duration_ends_iteration_executors_and_graceful_stop_cancels():
    calls, fn = recorder(10.0)  # every iteration outlives maxDuration + gracefulStop
    t0 = perf_counter()
    result, reg, _ = run(
        scenario("shared-iterations", vus=2, iterations=100, max_duration=0.2, graceful_stop=0.1),
        module(default=fn))
    assert perf_counter() - t0 < 2.0
    assert len(calls) == 2  # one started per VU
    assert result.iterations == 0  # cancelled iterations are not counted (k6)
    assert count(reg, "iterations") == 0


def test_graceful_stop_lets_in_flight_iterations_finish():
    calls, fn = recorder(0.15)
    result, _, _ = run(scenario("constant-vus", vus=2, duration=0.1, graceful_stop=1.0),
                       module(default=fn))
    # each VU started once before the end, and was allowed to finish
    assert len(calls) == 2
    assert result.iterations == 2


def test_constant_vus_keeps_the_vus_busy_for_the_duration():
    calls, fn = recorder(0.02)
    samples = []

    async def watch(ex: Execution):
        for _ in range(6):
            await asyncio.sleep(0.05)
            samples.append(ex.progress().vus)

    t0 = perf_counter()
    result, reg, _ = run(scenario("constant-vus", vus=5, duration=0.3), module(default=fn),
                         during=watch)
    elapsed = perf_counter() - t0
    assert 0.3 <= elapsed < 1.0
    assert {vu for vu, _, _ in calls} == {1, 2, 3, 4, 5}
    assert all(t - calls[0][2] < 0.3 for _, _, t in calls)  # no start after the duration
    assert 5 * 0.3 / 0.02 * 0.6 <= result.iterations <= 5 * 0.3 / 0.02 + 5
    assert samples[0] == 5
    assert reg.get("vus_max").aggregate().max == 5


def test_vus_are_reused_across_iterations_with_one_client_each():
    clients: dict[int, set[int]] = {}

    async def default(vu):
        clients.setdefault(vu.id, set()).add(id(vu.http))

    run(scenario("per-vu-iterations", vus=3, iterations=4), module(default=default))
    assert sorted(clients) == [1, 2, 3]
    assert all(len(ids) == 1 for ids in clients.values())


def test_ramping_vus_follows_the_stages():
    calls, fn = recorder(0.01)
    seen: list[tuple[float, int]] = []

    async def watch(ex: Execution):
        t0 = perf_counter()
        while ex.stage != "done" and perf_counter() - t0 < 3:
            seen.append((perf_counter() - t0, ex.progress().vus))
            await asyncio.sleep(0.02)

    result, _, _ = run(
        scenario("ramping-vus", start_vus=0, stages=[(0.4, 4), (0.2, 4), (0.4, 0)],
                 graceful_ramp_down=0.05),
        module(default=fn), during=watch)
    # the ramp up reaches 1 VU at 0.1 s, 4 VUs at 0.4 s; all four hold until 0.6 s
    assert max(v for t, v in seen if t < 0.07) == 0
    assert max(v for t, v in seen if 0.45 < t < 0.55) == 4
    assert min(v for t, v in seen if 0.45 < t < 0.55) == 4
    # ramping down 4 → 0 over 0.6..1.0 s: at most one VU left after 0.92 s
    assert max(v for t, v in seen if 0.92 < t < 0.98) <= 1
    assert len({vu for vu, _, _ in calls}) == 4
    assert result.iterations > 0


def test_ramping_vus_ending_above_zero_reports_no_vus_after_the_end():
    _, fn = recorder(0.01)
    _, reg, _ = run(scenario("ramping-vus", start_vus=2, stages=[(0.2, 3)]), module(default=fn))
    vus = reg.get("vus").aggregate()
    assert vus.count >= 2 and vus.value == 0  # VUs are stopped at the end


def test_ramping_vus_interrupts_a_ramped_down_vu_after_graceful_ramp_down():
    starts: list[float] = []

    async def default(vu):
        starts.append(perf_counter())
        await sleep(5.0)

    t0 = perf_counter()
    result, _, _ = run(
        scenario("ramping-vus", start_vus=2, stages=[(0.0, 2), (0.1, 2), (0.0, 0), (0.5, 0)],
                 graceful_ramp_down=0.1, graceful_stop=5.0),
        module(default=default))
    # both VUs were ramped down at 0.1 s and interrupted 0.1 s later; they never
    # start again (target stays 0), so the executor ends at its regular end (0.6 s)
    assert len(starts) == 2
    assert result.iterations == 0
    assert perf_counter() - t0 < 2.0


@pytest.mark.needs_idle_core  # starts within ms of a 20 ms grid: scheduling precision
@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_constant_arrival_rate_starts_on_schedule(use_uvloop):
    calls, fn = recorder(0.0)
    result, reg, _ = run(
        scenario("constant-arrival-rate", rate=50, time_unit=1.0, duration=0.4,
                 pre_allocated_vus=2), module(default=fn), use_uvloop=use_uvloop)
    assert result.iterations == 20
    starts = sorted(t for _, _, t in calls)
    # Each start against its slot on the 20 ms grid: never early, no drift (the median
    # lateness stays small), and one late start (the OS ran something else: this machine
    # is shared) does not shift those after it.
    lateness = sorted((t - starts[0]) - i * 0.02 for i, t in enumerate(starts))
    assert lateness[0] > -0.005
    assert lateness[len(lateness) // 2] < 0.008
    assert lateness[-1] < 0.06
    assert count(reg, "dropped_iterations") == 0


def test_arrival_rate_is_open_loop_with_slow_iterations():
    calls, fn = recorder(0.2)  # each iteration lasts 10 periods
    result, _reg, _ = run(
        scenario("constant-arrival-rate", rate=50, duration=0.3, pre_allocated_vus=1,
                 max_vus=20), module(default=fn))
    assert result.iterations == 15
    assert result.dropped_iterations == 0
    assert len({vu for vu, _, _ in calls}) >= 10  # VUs were added to keep the rate
    starts = sorted(t for _, _, t in calls)
    assert starts[-1] - starts[0] < 0.3


def test_arrival_rate_drops_iterations_when_max_vus_are_busy():
    calls, fn = recorder(1.0)
    result, reg, _ = run(
        scenario("constant-arrival-rate", rate=100, duration=0.2, pre_allocated_vus=2,
                 max_vus=3, graceful_stop=2.0), module(default=fn))
    assert len(calls) == 3  # three VUs, each busy for the whole test
    assert result.dropped_iterations == 17
    assert count(reg, "dropped_iterations", scenario="default") == 17
    assert result.iterations == 3


def test_time_unit_scales_the_rate():
    _calls, fn = recorder()
    result, _, _ = run(
        scenario("constant-arrival-rate", rate=3, time_unit=0.1, duration=0.3,
                 pre_allocated_vus=1), module(default=fn))
    assert result.iterations == 9


def test_ramping_arrival_rate_integrates_the_rate():
    calls, fn = recorder()
    # 0 → 100/s over 0.4 s (area 20), 100/s for 0.2 s (area 20)
    result, _, _ = run(
        scenario("ramping-arrival-rate", start_rate=0, stages=[(0.4, 100), (0.2, 100)],
                 pre_allocated_vus=3), module(default=fn))
    assert result.iterations in (39, 40)
    starts = sorted(t for _, _, t in calls)
    # in the ramp, the k-th start is at sqrt(2k/250) s (rate 250 t per s)
    base = starts[0] - (2 * 1 / 250) ** 0.5
    for k in (5, 10, 20):
        assert abs(starts[k - 1] - base - (2 * k / 250) ** 0.5) < 0.015


def test_start_time_delays_a_scenario():
    calls_a, fa = recorder()
    calls_b, fb = recorder()
    result, _, _ = run(
        [scenario("per-vu-iterations", name="a", vus=1, iterations=1, exec_name="fa"),
         scenario("per-vu-iterations", name="b", vus=1, iterations=1, exec_name="fb",
                  start_time=0.2)],
        module(fa=fa, fb=fb))
    assert result.scenario_iterations == {"a": 1, "b": 1}
    assert 0.18 <= calls_b[0][2] - calls_a[0][2] < 0.5


def test_stop_ends_the_test_gracefully_and_runs_teardown():
    calls, fn = recorder(0.05)
    torn = []

    async def stopper(ex: Execution):
        await asyncio.sleep(0.2)
        ex.stop("test ended by the user")

    t0 = perf_counter()
    result, _, _ = run(scenario("constant-vus", vus=3, duration=30),
                       module(default=fn, teardown=lambda data: torn.append(data)),
                       during=stopper)
    assert perf_counter() - t0 < 2
    assert result.interrupted
    assert result.stop_reason == "test ended by the user"
    assert torn == [None]
    assert result.iterations == len(calls)  # in-flight iterations finished gracefully


def test_stop_with_long_graceful_stop_waits_then_cancels():
    async def default(vu):
        await sleep(30)

    async def stopper(ex: Execution):
        await asyncio.sleep(0.1)
        ex.stop("abort")

    t0 = perf_counter()
    result, _, _ = run(scenario("constant-vus", vus=2, duration=30, graceful_stop=0.2),
                       module(default=default), during=stopper)
    assert 0.25 <= perf_counter() - t0 < 2
    assert result.iterations == 0


def test_stop_before_a_delayed_scenario_starts_skips_it():
    calls, fn = recorder()

    async def stopper(ex: Execution):
        await asyncio.sleep(0.05)
        ex.stop("early")

    result, _, _ = run(scenario("per-vu-iterations", vus=1, iterations=1, start_time=10),
                       module(default=fn), during=stopper)
    assert calls == []
    assert result.interrupted


def test_vus_across_sequential_scenarios_are_reused():
    ids: dict[str, set[int]] = {"a": set(), "b": set()}

    async def default(vu):
        ids[vu.scenario].add(vu.id)
        await sleep(0.01)

    _result, reg, _ = run(
        [scenario("per-vu-iterations", name="a", vus=3, iterations=1),
         scenario("per-vu-iterations", name="b", vus=3, iterations=1, start_time=0.2)],
        module(default=default))
    assert ids["a"] == ids["b"] == {1, 2, 3}
    assert reg.get("vus_max").aggregate().max == 3


@pytest.mark.parametrize("executor,kwargs", [
    ("shared-iterations", {"vus": 2, "iterations": 4}),
    ("constant-arrival-rate", {"rate": 40, "duration": 0.1, "pre_allocated_vus": 1}),
])
def test_iterations_are_tagged_with_scenario_and_test_tags(executor, kwargs):
    _, fn = recorder()
    result, reg, _ = run(scenario(executor, name="tagged", tags={"team": "x"}, **kwargs),
                         module(default=fn), plan_kwargs={"tags": {"testid": "t1"}})
    flt = {"scenario": "tagged", "team": "x", "testid": "t1"}
    assert count(reg, "iterations", **flt) == result.iterations > 0
    assert reg.get("iteration_duration").aggregate(flt).count == result.iterations


def test_vus_that_never_await_still_take_turns():
    seen = []

    def default(vu):  # a sync function: never suspends by itself
        seen.append(vu.id)

    result, _, _ = run(scenario("shared-iterations", vus=4, iterations=40), module(default=default))
    assert result.iterations == 40
    assert set(seen) == {1, 2, 3, 4}


def test_stop_reaches_vus_that_never_await():
    async def default(vu):
        pass  # completes without suspending

    async def stopper(ex: Execution):
        await asyncio.sleep(0.1)
        ex.stop("user")

    t0 = perf_counter()
    result, _, _ = run(scenario("constant-vus", vus=2, duration=30), module(default=default),
                       during=stopper)
    assert perf_counter() - t0 < 2
    assert result.interrupted and result.iterations > 0


def test_vus_and_vus_max_gauges_are_sampled():
    async def default(vu):
        await sleep(0.05)

    _, reg, _ = run(scenario("constant-vus", vus=3, duration=1.2), module(default=default),
                    plan_kwargs={"tags": {"testid": "g"}})
    vus = reg.get("vus").aggregate({"testid": "g"})
    assert vus.count >= 2  # at the start, about once a second, and at the end
    assert vus.max == 3 and vus.value == 0  # the last sample is taken after the end
    assert reg.get("vus_max").aggregate().value == 3


def test_progress_reports_each_scenario():
    snapshots = []

    async def default(vu):
        await sleep(0.02)

    async def watch(ex: Execution):
        await asyncio.sleep(0.15)
        snapshots.append(ex.progress())

    run([scenario("constant-vus", name="a", vus=2, duration=0.3),
         scenario("per-vu-iterations", name="b", vus=1, iterations=1, start_time=0.4)],
        module(default=default), during=watch)
    (p,) = snapshots
    assert p.stage == "running" and p.vus == 2 and p.vus_max == 2 and p.iterations > 0
    a, b = p.scenarios
    assert (a.name, a.state, a.vus) == ("a", "running", 2)
    assert 0.3 < a.fraction < 0.8
    assert (b.name, b.state, b.iterations) == ("b", "waiting", 0)

"""Arrival-rate starts overdue by more than `MAX_START_LATENESS` are dropped, not run late
(issue 22 §2): here the process's loop is held by the scenario's first iteration (a
frozen process is the same to the scheduler; tests/cli/test_frozen_worker.py freezes a
real worker with SIGSTOP)."""

from __future__ import annotations

import time
from time import perf_counter

from engine_helpers import count, module, run, scenario

from indigo_loadtest.engine.arrival_rate import MAX_START_LATENESS, scheduled_start

RATE = 20  # per second
HOLD = MAX_START_LATENESS + 1.5  # the first iteration holds the loop this long
DURATION = HOLD + 1.0


def test_starts_overslept_by_more_than_the_bound_are_dropped_and_the_rest_run():
    lateness: list[float] = []

    async def default(vu):
        lateness.append(perf_counter() - scheduled_start.get())
        if len(lateness) == 1:
            time.sleep(HOLD)  # no await: every start due meanwhile is overslept

    # maxVUs enough for the starts made back to back once the loop is back: none is
    # dropped for want of a VU, only for being overdue.
    result, reg, _ = run(
        scenario("constant-arrival-rate", rate=RATE, time_unit=1.0, duration=DURATION,
                 pre_allocated_vus=4, max_vus=40), module(default=default))

    # No start ran later than the bound (plus the scheduler's own pass on a busy machine).
    assert max(lateness) < MAX_START_LATENESS + 0.25, sorted(lateness)[-3:]
    # Those due more than the bound before the loop came back are dropped: about
    # (HOLD - bound) seconds of starts; the ones within the bound still run.
    planned = int(RATE * DURATION)
    overslept = (HOLD - MAX_START_LATENESS) * RATE
    assert overslept - 3 <= result.dropped_iterations <= overslept + 3
    assert count(reg, "dropped_iterations") == result.dropped_iterations
    # Every planned start is run or dropped, exactly once.
    assert result.iterations + result.dropped_iterations == planned == len(lateness) + \
        result.dropped_iterations

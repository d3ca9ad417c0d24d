"""When things happen: k6's VU steps and iteration start times, as pure functions.

Times are seconds from the executor's start. Each function takes the execution
tuple, so a shard yields exactly its striped part of the whole test's schedule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from .plan import Stage
from .segment import FULL, ExecutionTuple


def constant_arrivals(rate: float, time_unit: float, duration: float,
                      et: ExecutionTuple = FULL) -> Iterator[float]:
    """Start times of constant-arrival-rate: global iteration i starts at i*period,
    for every start before `duration` (the first at 0, as in k6)."""
    if rate <= 0 or time_unit <= 0:
        return
    for i in et.indices():
        # i * time_unit / rate, not i * (time_unit / rate): the rounded period would put
        # start 1 800 000 of 900 000/s at 1.9999999999999998 s, inside a 2 s test.
        t = i * time_unit / rate
        if t >= duration:
            return
        yield t


def gamma_arrivals(rate: float, time_unit: float, duration: float, et: ExecutionTuple = FULL,
                   burstiness: float = 1.0, seed: int = 0) -> Iterator[float]:
    """Random arrivals at a mean of `rate` per `time_unit` (vLLM's --burstiness): gaps
    drawn from a gamma distribution of shape `burstiness` and mean 1/rate; 1 is a Poisson
    process, lower is burstier, higher more regular. The first start is at 0. The whole
    test's timeline is drawn from `seed`, so every shard takes its striped part of the
    same timeline and a run repeats exactly."""
    if rate <= 0 or time_unit <= 0 or burstiness <= 0:
        return
    rng = random.Random(seed)
    scale = time_unit / rate / burstiness
    t = 0.0
    wanted = et.indices()
    nxt = next(wanted)
    i = 0
    while t < duration:
        if i == nxt:
            yield t
            nxt = next(wanted)
        t += rng.gammavariate(burstiness, scale)
        i += 1


def ramping_arrivals(start_rate: float, time_unit: float, stages: Sequence[Stage],
                     et: ExecutionTuple = FULL) -> Iterator[float]:
    """Start times of ramping-arrival-rate (k6's formula): the rate moves linearly
    within each stage, and global iteration i (1-based) starts when the area under
    the rate curve reaches i."""
    indices = et.indices()
    i = next(indices) + 1.0  # the algorithm works on areas, which start at 1
    stage_start = done_so_far = end_count = 0.0
    rate_from = start_rate / time_unit
    for stage in stages:
        rate_to = stage.target / time_unit
        dur = stage.duration
        if rate_from != rate_to:
            end_count += dur * ((rate_to - rate_from) / 2 + rate_from)
            while i <= end_count:
                disc = dur * (rate_from * rate_from * dur + 2 * (i - done_so_far)
                              * (rate_to - rate_from))
                x = (rate_from * dur - math.sqrt(max(disc, 0.0))) / (rate_from - rate_to)
                yield stage_start + x
                i = next(indices) + 1.0
        else:
            end_count += dur * rate_to
            while i <= end_count:
                yield stage_start + (i - done_so_far) / rate_to
                i = next(indices) + 1.0
        done_so_far = end_count
        rate_from = rate_to
        stage_start += dur


def ramping_vu_steps(start_vus: int, stages: Sequence[Stage],
                     et: ExecutionTuple = FULL) -> list[tuple[float, int]]:
    """ramping-vus: (time, planned VUs of this segment) at every change (k6's raw
    execution steps). Going up, the k-th VU starts when the linear ramp reaches k;
    going down, the k-th VU stops when the ramp passes below k."""
    steps: list[tuple[float, int]] = [(0.0, et.scale(start_vus))]

    def add(t: float, vus: int) -> None:
        if steps[-1][1] != vus:
            steps.append((t, vus))

    t_end = 0.0
    vus_from = start_vus
    for stage in stages:
        target = int(stage.target)
        dur = stage.duration
        t_end += dur
        diff = target - vus_from
        if diff == 0:
            continue
        if dur == 0:
            add(t_end, et.scale(target))
        elif diff > 0:
            for k in range(vus_from + 1, target + 1):  # global VU number k (1-based)
                if et.owns(k - 1):
                    add(t_end - dur * (target - k) / diff, et.scale(k))
        else:
            for k in range(vus_from, target, -1):
                if et.owns(k - 1):
                    add(t_end - dur * (target - k + 1) / diff, et.scale(k - 1))
        vus_from = target
    return steps


def stages_duration(stages: Sequence[Stage]) -> float:
    return sum(s.duration for s in stages)

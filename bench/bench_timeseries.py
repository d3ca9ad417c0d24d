"""The run's time series costs the hot path nothing measurable.

Recording adds no listener to the registry (samples still go straight into their sinks);
a reader takes the registry's state once per interval. This script measures:

1. one reading (`Recorder.sample`) of a busy LLM run's registry: 6 endpoints x 3
   statuses x 2 scenarios, every HTTP and LLM trend, 200k samples already in the sketches
   and 2000 new samples per interval: milliseconds per reading, and that as a share of
   the 1 s interval;
2. the hot path itself: requests recorded per second by a loop calling
   `BuiltinMetrics.record_http` and the LLM trends on the event loop, into a copy of
   that busy registry, for 10 s at a time, with and without the reader on the same loop
   (order alternated: off, on, on, off, off, on; medians), and the reader's own share of
   the loop's time (the sum of its readings over the run's time). The reader's budget
   (READ_BUDGET, 1% of its interval) bounds that share.

    python bench/bench_timeseries.py
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

from indigo_loadtest.llm.stream_metrics import TIME_TRENDS
from indigo_loadtest.metrics.registry import Registry
from indigo_loadtest.metrics.tags import tagset
from indigo_loadtest.metrics.timeseries import Recorder
from indigo_loadtest.report.record import LiveRecording

ENDPOINTS = [f"/v1/endpoint/{i}" for i in range(6)]
STATUSES = ("200", "429", "503")
SCENARIOS = ("plain", "stream")
RND = random.Random(1)


def tag_sets() -> list:
    return [tagset({"name": n, "method": "POST", "status": s, "scenario": sc})
            for n in ENDPOINTS for s in STATUSES for sc in SCENARIOS]


def one_request(reg: Registry, tags, llm: list) -> None:
    ms = RND.lognormvariate(5, 0.7)
    reg.builtin.record_http(tags, 0.01, 0.0, 0.0, 0.05, ms * 0.9, ms * 0.1, False, 300, 2000)
    for metric in llm:
        reg.record(metric, RND.lognormvariate(3, 0.8), tags)


def busy_registry() -> tuple[Registry, list, list]:
    reg = Registry()
    llm = [reg.metric(name, "trend", True) for name in TIME_TRENDS]
    sets = tag_sets()
    for i in range(200_000):
        one_request(reg, sets[i % len(sets)], llm)
    return reg, llm, sets


def reading_cost() -> None:
    reg, llm, sets = busy_registry()
    rec = Recorder()
    rec.sample(reg, 0.0)
    times = []
    for tick in range(1, 41):
        for i in range(2000):
            one_request(reg, sets[i % len(sets)], llm)
        t0 = time.perf_counter()
        rec.sample(reg, float(tick))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times) * 1000
    buckets = sum(len(s.buckets) for m in reg for s in m.sinks.values() if m.type == "trend")
    print(f"1. one reading: median {med:.1f} ms, max {max(times) * 1000:.1f} ms "
          f"({len(rec.series.series)} series, {buckets} sketch buckets): "
          f"{med / 10:.2f}% of a 1 s interval")


async def hot_loop(reg: Registry, llm: list, sets: list, seconds: float,
                   record: bool) -> tuple[float, float]:
    recording = LiveRecording(lambda: reg, None) if record else None
    if recording is not None:
        recording.start()
    assert not reg.listeners  # the recorder reads sinks; nothing is added per sample
    n, started = 0, time.perf_counter()
    while time.perf_counter() < started + seconds:
        for i in range(200):
            one_request(reg, sets[i % len(sets)], llm)
        n += 200
        await asyncio.sleep(0)  # as VUs do between requests
    elapsed = time.perf_counter() - started
    share = 0.0
    if recording is not None:
        share = recording.recorder.read_seconds / elapsed
        await recording.finish(reg)
    return n / elapsed, share


def fresh_copy(state: list) -> Registry:
    reg = Registry()
    reg.merge_state(state)
    return reg


def hot_path() -> None:
    busy, _, sets = busy_registry()
    state = busy.state()
    results: dict[bool, list[float]] = {False: [], True: []}
    shares = []
    for record in (False, True, True, False, False, True):
        reg = fresh_copy(state)
        llm = [reg.metric(name, "trend", True) for name in TIME_TRENDS]
        rate, share = asyncio.run(hot_loop(reg, llm, sets, 10.0, record))
        results[record].append(rate)
        shares += [share] if record else []
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(f"2. hot path: {off:,.0f} requests/s recorded without the reader, {on:,.0f} with "
          f"it ({100 * (on - off) / off:+.1f}%); runs without "
          f"{[round(x) for x in results[False]]}, with {[round(x) for x in results[True]]}; "
          f"the reader's share of the loop's time: "
          f"{', '.join(f'{100 * x:.2f}%' for x in shares)}")


if __name__ == "__main__":
    reading_cost()
    hot_path()

"""Exact percentiles (metrics/exact.py): every value kept up to a cap, merged across real
worker processes, read as numpy.percentile's default (linear) reads them."""

from __future__ import annotations

import asyncio
import random
import statistics
from typing import Any

import pytest

from indigo_loadtest.engine.workers import WorkerPool
from indigo_loadtest.llm.bench_cli import point_figures
from indigo_loadtest.llm.bench_report import percentiles_line
from indigo_loadtest.llm.benchmark import BenchMetrics, BenchSpec
from indigo_loadtest.llm.stream_metrics import TTFT
from indigo_loadtest.metrics.exact import exact_values, keep_exact, percentile
from indigo_loadtest.metrics.registry import Registry
from indigo_loadtest.metrics.tags import tagset

NAME = "latency_ms"
PER_SHARD = 300


def reference(values: list[float], p: float) -> float:
    """numpy.percentile(values, p) without numpy: the 'inclusive' quantiles are its
    linear interpolation between closest ranks."""
    if p == 50:
        return statistics.median(values)
    return statistics.quantiles(values, n=100, method="inclusive")[round(p) - 1]


def shard_values(index: int) -> list[float]:
    rng = random.Random(index)
    return [rng.lognormvariate(4.0, 0.5) for _ in range(PER_SHARD)]


async def recording_shard(ctx: Any) -> int:
    """Records its known values: half one at a time, half as one stream's gaps, under two
    tag sets, into a metric kept exact with the cap the payload gives."""
    keep_exact(ctx.registry, NAME, cap=ctx.payload)
    metric = ctx.registry.metric(NAME, "trend", True)
    await ctx.wait_start()
    values = shard_values(ctx.shard.index)
    for v in values[: PER_SHARD // 2]:
        ctx.registry.record(metric, v, tagset((("ok", "true"),)))
    metric.sink(tagset((("ok", "false"),))).add_many(values[PER_SHARD // 2:])
    return len(values)


def run_pool(cap: int) -> Registry:
    registry = Registry()
    keep_exact(registry, NAME, cap=cap)
    result = asyncio.run(asyncio.wait_for(
        WorkerPool(recording_shard, cap, 2, registry).run(), 60))
    assert result.ok and result.results == [PER_SHARD, PER_SHARD]
    return registry


def test_two_workers_merge_to_the_exact_percentiles_of_every_value() -> None:
    registry = run_pool(cap=10_000)
    metric = registry.metrics[NAME]
    every = shard_values(0) + shard_values(1)
    ordered, why = exact_values(metric)
    assert why == "" and ordered == sorted(every)
    for p in (50, 90, 99):
        assert percentile(ordered, p) == pytest.approx(reference(every, p), rel=1e-12)
        assert metric.aggregate().percentile(p) != percentile(ordered, p)  # the sketch's
    # A sub-metric: one tag set of each worker.
    half, _ = exact_values(metric, {"ok": "true"})
    assert half == sorted(shard_values(0)[:150] + shard_values(1)[:150])


def test_the_cap_is_on_the_merged_whole_and_past_it_the_sketch_says_why() -> None:
    # Each worker keeps its 300 values (cap 500); the parent's 600 are past it.
    metric = run_pool(cap=500).metrics[NAME]
    assert exact_values(metric) == (None, "more than 500 values")
    assert metric.aggregate().count == 2 * PER_SHARD  # the sketch still has them all


def test_a_sink_made_before_keep_exact_is_not_read_as_exact() -> None:
    registry = Registry()
    metric = registry.metric(NAME, "trend", True)
    registry.record(metric, 1.0, tagset((("a", "1"),)))
    keep_exact(registry, NAME)
    registry.record(metric, 2.0, tagset((("a", "2"),)))
    assert exact_values(metric, {"a": "2"}) == ([2.0], "")
    assert exact_values(metric) == (None, "values not kept")


def test_a_point_past_the_cap_falls_back_to_the_sketch_and_says_so() -> None:
    registry = Registry()
    metrics = BenchMetrics(registry)
    keep_exact(registry, TTFT, cap=10)
    ok = tagset((("request_ok", "true"),))
    for i in range(20):
        registry.record(metrics.llm.trends[TTFT], 100.0 + i, ok)
        registry.record(metrics.failed, 0.0, ok)
    point = point_figures(BenchSpec(), registry, 1.0, [])
    ttft = point["ttft_ms"]
    assert ttft["exact"] is False and ttft["sketch"] == "more than 10 values"
    assert ttft["count"] == 20 and ttft["p50"] == pytest.approx(109.5, rel=1e-3)
    assert point["e2el_ms"]["exact"] is None  # no samples: neither
    line = percentiles_line([point])
    assert "from the 0.1% sketch for synchronous ttft_ms (more than 10 values)" in line

"""Arrival-rate precision: achieved rate and start-time jitter of constant-arrival-rate.

    .venv/bin/python bench/bench_arrival_rate.py [--rate 1000] [--duration 10] [--loop uvloop]

Each iteration notes when it started (perf_counter, first thing in the scenario
function). Iterations start in schedule order, so the k-th start is compared with
the k-th scheduled instant (executor start + k / rate). Prints the achieved rate,
its error, the start lag percentiles, and the generator's CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import types
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from indigo_loadtest.engine.execution import Execution
from indigo_loadtest.engine.plan import ScenarioConfig, TestPlan
from indigo_loadtest.metrics.registry import Registry


def percentile(sorted_values: list[float], p: float) -> float:
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def measure(rate: float, duration: float, work: float) -> dict[str, float]:
    starts: list[float] = []

    async def default(vu: object) -> None:
        starts.append(perf_counter())
        if work:
            await asyncio.sleep(work)

    mod = types.ModuleType("bench_scenario")
    mod.default = default  # type: ignore[attr-defined]
    sc = ScenarioConfig(name="bench", executor="constant-arrival-rate", rate=rate,
                        duration=duration, pre_allocated_vus=max(10, int(rate * work * 2)),
                        max_vus=max(100, int(rate * work * 4)), graceful_stop=1.0)
    ex = Execution(TestPlan(scenarios=[sc]), mod, Registry(), object)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    result = await ex.run()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = ex.executors[0].started_at
    period = 1.0 / rate
    lags = sorted((t - t0 - k * period) * 1e3 for k, t in enumerate(starts))
    span = starts[-1] - starts[0]
    achieved = (len(starts) - 1) / span if span > 0 else 0.0
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "iterations": float(result.iterations),
        "expected": float(round(rate * duration)),
        "achieved_rate": achieved,
        "rate_error_pct": abs(achieved - rate) / rate * 100,
        "lag_p50_ms": statistics.median(lags),
        "lag_p99_ms": percentile(lags, 99),
        "lag_abs_p99_ms": percentile(sorted(abs(x) for x in lags), 99),
        "lag_max_ms": lags[-1],
        "lag_min_ms": lags[0],
        "dropped": float(result.dropped_iterations),
        "cpu_pct": cpu / duration * 100,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--work", type=float, default=0.005,
                    help="seconds each iteration sleeps (keeps several VUs in flight)")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = ap.parse_args()
    if args.loop == "uvloop":
        import uvloop

        stats = uvloop.run(measure(args.rate, args.duration, args.work))
    else:
        stats = asyncio.run(measure(args.rate, args.duration, args.work))
    print(f"constant-arrival-rate {args.rate:g}/s for {args.duration:g}s on {args.loop}")
    for key, value in stats.items():
        print(f"  {key:16} {value:12.4f}")
    ok = stats["rate_error_pct"] < 1 and stats["lag_abs_p99_ms"] < 1
    print("  targets (rate within 1%, |jitter| p99 < 1 ms):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()

"""compare's noise test on a trend's tail (docs/guarantees.md, "Benchmarks and comparisons
(audit)"): judged on the whole run's percentiles, a p99 doubled in 2 of 30 intervals is
worse, where the per-interval test called it noise; the same distribution drawn twice is
still noise. The records are built from drawn samples as a run builds them."""

from __future__ import annotations

import random
import statistics

from indigo_loadtest.report.compare import compare_rows, intervals_within_noise, within_noise

N, PER = 30, 100  # intervals, samples per interval
KEY = "http_req_duration"


def pct(values: list[float], p: float) -> float:
    """numpy's linear percentile."""
    ordered = sorted(values)
    rank = p / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def record(intervals: list[list[float]]) -> dict:
    """A run record of one trend whose samples in each 1 s interval are `intervals`."""
    every = [v for values in intervals for v in values]
    cols = {"count": [len(v) for v in intervals], "avg": [statistics.fmean(v) for v in intervals],
            **{c: [pct(v, p) for v in intervals] for c, p in (("p50", 50), ("p95", 95),
                                                             ("p99", 99))}}
    for col in cols.values():
        col.append(col[-1])  # the last, partial interval: left out by the test
    total = {"type": "trend", "unit": "ms", "samples": len(every), "count": len(every),
             "avg": statistics.fmean(every), "min": min(every), "med": pct(every, 50),
             "p90": pct(every, 90), "p95": pct(every, 95), "p99": pct(every, 99),
             "max": max(every)}
    return {"totals": {KEY: total},
            "series": {"t": [float(i + 1) for i in range(len(intervals) + 1)],
                       "metrics": {KEY: {"type": "trend", "unit": "ms", "cols": cols}}},
            "thresholds": []}


def draw(rnd: random.Random, slow: set[int] = frozenset(), factor: float = 1.0) -> dict:
    """Latencies of 100 ms ± 10 %; in the `slow` intervals, a fifth of them `factor` times."""
    return record([[rnd.uniform(90, 110) * (factor if k in slow and i % 5 == 0 else 1.0)
                    for i in range(PER)] for k in range(N)])


def test_a_p99_doubled_in_two_of_thirty_intervals_is_worse_not_noise() -> None:
    rnd = random.Random(4)
    base, cand = draw(rnd), draw(rnd, slow={7, 19}, factor=2.0)
    assert cand["totals"][KEY]["p99"] > 1.5 * base["totals"][KEY]["p99"]
    assert intervals_within_noise(base, cand, KEY, "p99") is True  # what it said alone
    assert within_noise(base, cand, KEY, "p99") is False
    rows = {r.stat: r.verdict for r in compare_rows(base, cand)}
    assert rows["p99"] == "worse" and rows["med"] == "noise"


def test_the_same_distribution_drawn_twice_is_still_noise() -> None:
    """At 3 standard errors a draw is flagged now and then (the 0.3 % of a normal
    beyond them): at most 1 of these 200 (the median is the per-interval test's)."""
    flagged = []
    for seed in range(100):
        rnd = random.Random(seed)
        base, cand = draw(rnd), draw(rnd)
        flagged += [(seed, stat) for stat in ("p95", "p99")
                    if within_noise(base, cand, KEY, stat) is not True]
    assert len(flagged) <= 1, flagged


def test_a_tail_the_samples_cannot_resolve_is_left_to_the_intervals() -> None:
    """30 samples: their p99 is nearly their max, whose error they cannot tell."""
    rnd = random.Random(1)
    few = record([[rnd.uniform(90, 110)] for _ in range(30)])
    assert within_noise(few, few, KEY, "p99") == intervals_within_noise(few, few, KEY, "p99")

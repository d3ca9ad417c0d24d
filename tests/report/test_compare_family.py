"""compare's better/worse over many rows (docs/guarantees.md, "Benchmarks and comparisons
(audit)"): each row was a test at about 5 %, so two runs of one distribution had some row
of dozens flagged nearly every time. Records built from drawn samples as a run builds
them, with what identical runs differ by: sampling, a run-wide drift of ±1 %, request
phases that switch between two sub-millisecond modes, and inter-token gaps that share
their request's pace."""

from __future__ import annotations

import functools
import random
import statistics

from test_compare_whole_run import pct

from indigo_loadtest.report.compare import (
    FAMILY_ALPHA,
    compare_rows,
    direction,
    effective_count,
    separation_p_value,
    whole_run_p_value,
)

N, PER = 30, 60  # intervals, requests per interval
PAIRS = 200
PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))


def trend(intervals: list[list[float]], unit: str, per_interval: bool) -> tuple[dict, dict]:
    """A trend's totals and its series' columns (percentiles only where `per_interval`,
    as the series keep them for some trends and not for the request phases)."""
    every = [v for values in intervals for v in values]
    cols = {"count": [len(v) for v in intervals], "avg": [statistics.fmean(v) for v in intervals]}
    if per_interval:
        cols |= {c: [pct(v, p) for v in intervals] for c, p in PERCENTILES}
    for col in cols.values():
        col.append(col[-1])  # the last, partial interval: left out by the test
    total = {"type": "trend", "unit": unit, "samples": len(every), "count": len(every),
             "avg": statistics.fmean(every), "min": min(every), "med": pct(every, 50),
             "p90": pct(every, 90), "p95": pct(every, 95), "p99": pct(every, 99),
             "max": max(every)}
    return total, {"type": "trend", "unit": unit, "cols": cols}


def run(rnd: random.Random, ttft_ms: float = 20.0) -> dict:
    """One run's record: N intervals of PER streamed requests of 4 tokens."""
    drift = 1 + rnd.uniform(-0.01, 0.01)  # the machine's state, the same for the whole run
    fast_share = rnd.uniform(0.4, 0.6)  # of the sub-millisecond phase's two modes
    samples: dict[str, list[list[float]]] = {k: [] for k in (
        "llm_ttft_ms", "llm_itl_ms", "llm_total_ms", "http_req_waiting", "llm_tokens_per_sec")}
    failed = []
    for _ in range(N):
        interval: dict[str, list[float]] = {k: [] for k in samples}
        for _ in range(PER):
            ttft = drift * (ttft_ms + rnd.gauss(0, 1) + (rnd.uniform(0, 5) if rnd.random()
                                                         < 0.05 else 0))
            pace = drift * rnd.uniform(1.6, 2.6)  # the request's own: its gaps share it
            gaps = [pace * (1 + rnd.gauss(0, 0.05)) for _ in range(3)]
            total = ttft + sum(gaps)
            interval["llm_ttft_ms"].append(ttft)
            interval["llm_itl_ms"] += gaps
            interval["llm_total_ms"].append(total)
            interval["http_req_waiting"].append(
                rnd.gauss(0.014, 0.002) if rnd.random() < fast_share else rnd.gauss(0.27, 0.03))
            interval["llm_tokens_per_sec"].append(4000 / total)
        for k, values in interval.items():
            samples[k].append(values)
        failed.append(sum(rnd.random() < 0.01 for _ in range(PER)))
    totals, series = {}, {}
    for key, intervals in samples.items():
        per_interval = key not in ("llm_total_ms", "http_req_waiting")
        totals[key], series[key] = trend(intervals, "" if key == "llm_tokens_per_sec"
                                         else "ms", per_interval)
    n = N * PER
    totals["http_req_failed"] = {"type": "rate", "unit": "", "samples": n, "count": n,
                                 "passes": sum(failed), "rate": sum(failed) / n}
    series["http_req_failed"] = {"type": "rate", "unit": "", "cols": {
        "trues": [*failed, 0], "total": [PER] * N + [0]}}
    return {"totals": totals, "thresholds": [],
            "series": {"t": [float(i + 1) for i in range(N + 1)], "metrics": series}}


@functools.cache
def seeded_run(seed: int) -> dict:
    """run() of a seed, drawn once for the tests that reuse it (compare only reads it)."""
    return run(random.Random(seed))


def flagged(base: dict, cand: dict) -> list[str]:
    return [f"{r.key}:{r.stat} {r.verdict}" for r in compare_rows(base, cand)
            if r.verdict in ("better", "worse")]


def test_identical_runs_have_no_row_flagged() -> None:
    """The pair-level false-flag rate (any row better/worse) stays within FAMILY_ALPHA:
    at most 2 of 200 pairs, each of 16 rows."""
    pairs = [(seeded_run(2 * seed), seeded_run(2 * seed + 1)) for seed in range(PAIRS)]
    assert len(compare_rows(*pairs[0])) == 16
    bad = {seed: rows for seed, pair in enumerate(pairs) if (rows := flagged(*pair))}
    assert len(bad) <= FAMILY_ALPHA * PAIRS, bad


def test_a_slower_first_token_is_still_worse() -> None:
    """TTFT 20 → 23 ms (+15 %): worse on its rows and on E2EL's, every time."""
    for seed in range(10):
        base, cand = run(random.Random(seed)), run(random.Random(100 + seed), ttft_ms=23.0)
        rows = {(r.key, r.stat): r.verdict for r in compare_rows(base, cand)}
        assert {rows["llm_ttft_ms", s] for s in ("med", "p95", "p99")} == {"worse"}, rows
        assert rows["llm_total_ms", "med"] == "worse", rows


def test_inter_token_gaps_count_as_their_requests() -> None:
    """Three gaps of one request share its pace: the whole-run test of ITL's p95 on its
    3 × 1800 gaps, as if independent, rejected identical runs at 1 % about 9 % of
    the time."""
    def rejected(counted: bool) -> int:
        out = 0
        for seed in range(100):
            a, b = seeded_run(2 * seed), seeded_run(2 * seed + 1)
            n_a, n_b = ((effective_count(a, "llm_itl_ms"), effective_count(b, "llm_itl_ms"))
                        if counted else (None, None))
            p = whole_run_p_value(a["totals"]["llm_itl_ms"], b["totals"]["llm_itl_ms"],
                                  "p95", n_a, n_b)
            out += p is not None and p <= FAMILY_ALPHA
        return out

    assert effective_count(seeded_run(0), "llm_itl_ms") == N * PER
    assert rejected(counted=True) <= 2 < 5 <= rejected(counted=False)


def test_the_generators_own_health_is_neither_better_nor_worse() -> None:
    """Its loop lag and CPU wait are the machine's: identical simulator runs read its
    p99 CPU wait +1162 % "worse"."""
    assert direction("generator_cpu_wait", "ms", "p99") == 0
    assert direction("generator_loop_lag{worker:1}", "ms", "med") == 0
    assert direction("llm_ttft_ms", "ms", "p99") == -1


def one_trend(values: list[list[float]], per_interval: bool) -> dict:
    total, series = trend(values, "ms", per_interval)
    return {"totals": {"t": total}, "thresholds": [],
            "series": {"t": [float(i + 1) for i in range(len(values) + 1)],
                       "metrics": {"t": series}}}


def shifted(rnd: random.Random, ms: float, outlier: float) -> list[list[float]]:
    """6 intervals of 45 samples around `ms`, one of them `outlier`."""
    values = [[ms + rnd.gauss(0, 0.8) for _ in range(45)] for _ in range(6)]
    values[2][7] = outlier
    return values


def test_a_tail_20_ms_later_past_one_outlier_is_worse() -> None:
    """Every sample 20 ms later, one slow outlier: the whole run's p99 error, read up to
    the max, called it noise (a real run against a 20 ms slower TTFT). The per-interval
    p99s, or samples that do not overlap at all, show it."""
    rnd = random.Random(5)
    for per_interval, base_outlier in ((True, 50.0), (False, 30.0)):
        base = one_trend(shifted(rnd, 26.0, base_outlier), per_interval)
        cand = one_trend(shifted(rnd, 46.0, 67.0), per_interval)
        assert whole_run_p_value(base["totals"]["t"], cand["totals"]["t"], "p99") > FAMILY_ALPHA
        apart = separation_p_value(base["totals"]["t"], cand["totals"]["t"])
        assert (apart is None) is per_interval
        rows = {r.stat: r.verdict for r in compare_rows(base, cand)}
        assert rows == {"med": "worse", "p95": "worse", "p99": "worse"}, per_interval

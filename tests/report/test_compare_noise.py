"""compare's "within noise" mark on a Rate (docs/guarantees.md, "Benchmarks and
comparisons (audit)"): the per-interval test alone called 0 failures in 3000 requests
and 300 in 3000 noise, when the failures came in 3 of 30 intervals."""

from __future__ import annotations

import random

from indigo_loadtest.report.compare import compare_rows, within_noise

N, PER = 30, 100  # intervals, requests per interval


def failures(per_interval: list[int]) -> dict:
    """A run record with http_req_failed: `per_interval` failed requests of PER each."""
    trues, total = sum(per_interval), PER * len(per_interval)
    return {
        "totals": {"http_req_failed": {"type": "rate", "unit": "", "samples": total,
                                       "count": total, "rate": trues / total,
                                       "passes": trues, "fails": total - trues}},
        "series": {"t": [float(i + 1) for i in range(len(per_interval))],
                   "metrics": {"http_req_failed": {"type": "rate", "unit": "", "cols": {
                       "trues": per_interval, "total": [PER] * len(per_interval)}}}},
        "thresholds": [],
    }


def test_failures_from_none_in_a_burst_are_worse_not_noise() -> None:
    clean, burst = failures([0] * N), failures([PER] * 3 + [0] * (N - 3))
    assert within_noise(clean, burst, "http_req_failed", "rate") is False
    (row,) = compare_rows(clean, burst)
    assert (row.base, row.cand, row.verdict) == (0.0, 0.1, "worse")


def test_the_same_failure_rate_drawn_twice_is_still_noise() -> None:
    rnd = random.Random(2)
    a = failures([sum(rnd.random() < 0.05 for _ in range(PER)) for _ in range(N)])
    b = failures([sum(rnd.random() < 0.05 for _ in range(PER)) for _ in range(N)])
    assert a["totals"]["http_req_failed"]["rate"] != b["totals"]["http_req_failed"]["rate"]
    assert within_noise(a, b, "http_req_failed", "rate") is True

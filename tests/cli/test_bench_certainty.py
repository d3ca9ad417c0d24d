"""`bench`'s answers state their certainty (docs/benchmark.md, "--find max-rate" and the
knee): the knee rule and its bounds, and the values a percentile needs. The real runs'
answers (what they rest on; a knee not passed said to be a bound) are checked in
tests/cli/test_bench.py's search and sweep."""

from __future__ import annotations

from typing import Any

import pytest

from indigo_loadtest.llm.bench_answers import knee, knee_words, needed


def rate_point(label: str, rate: float, ttft: float, **extra: Any) -> dict[str, Any]:
    return {"label": label, "profile": "poisson", "offered_rate": rate, "dropped": 0,
            "failed": 0, "saturated": None, "ttft_ms": {"p50": ttft}, "e2el_ms": {"p50": ttft},
            **extra}


SYNC = {"label": "synchronous", "profile": "synchronous", "offered_rate": None,
        "ttft_ms": {"p50": 50.0}, "e2el_ms": {"p50": 80.0}}


def test_the_knee_rule_and_its_three_bounds() -> None:
    passed = knee([SYNC, rate_point("rate-1", 4, 60), rate_point("rate-2", 8, 101)])
    assert passed is not None and (passed["bound"], passed["rate"]) == ("at", 4)
    assert knee_words(passed) == ("4 req/s (rate-1); the next rate, 8 req/s (rate-2), did "
                                  "not keep up: median TTFT 101 ms, over 2x the unloaded "
                                  "50 ms")
    reached = knee([SYNC, rate_point("rate-1", 4, 60), rate_point("rate-2", 8, 99)])
    assert reached is not None and reached["bound"] == "at_least"
    assert knee_words(reached).startswith("≥ 8 req/s (rate-2): not reached")
    below = knee([SYNC, rate_point("rate-1", 4, 60, failed=3)])
    assert below is not None and below["bound"] == "below" and below["rate"] is None
    assert knee_words(below) == ("below 4 req/s: not even the lowest rate swept, rate-1, "
                                 "kept up (3 request(s) failed)")
    assert knee([SYNC]) is None


@pytest.mark.parametrize("percentile,values", [(99, 500), (95, 100), (90, 50), (50, 10),
                                               (99.9, 5000), (100, None)])
def test_values_a_percentile_needs(percentile: float, values: int | None) -> None:
    assert needed(percentile) == values

"""`bench`'s answers state their certainty (docs/benchmark.md, "--find max-rate" and the
knee): the offered against the achieved rate, the values behind each percentile judged,
a warning when they are too few, and a knee the sweep did not pass said to be a bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_bench import bench

from indigo_loadtest.llm.bench_answers import knee, knee_words, needed

FAST = {"ttft_ms": "2", "tokens_per_sec": "0"}


def test_a_search_answer_says_what_it_rests_on(tmp_path: Path) -> None:
    """Before: 'max rate meeting the SLO: 2.339 req/s (±0.029: ...)', the ± only the
    bisection step, nothing of the 21 requests the p99 was taken over."""
    # 2 slots of 28 ms requests: one at a time meets 150 ms (with 120 ms to spare for a
    # busy machine), 16 in flight queue for ~220 ms, past it
    proc, doc = bench(tmp_path, "--find", "max-rate", "--slo", "ttft:p99<150ms", "-d", "1s",
                      "--find-steps", "1", "--max-concurrency", "16", "--output-tokens", "4",
                      slots="2", ttft_ms="20", tokens_per_sec="500", timeout=90)
    assert doc is not None
    answer = doc["max_rate"]
    points = {p["label"]: p for p in doc["points"]}
    lines = proc.stdout.splitlines()
    assert answer["max_rate"] is not None, proc.stdout
    at = points[answer["point"]]
    line = next(x for x in lines if "max rate meeting the SLO:" in x)
    count = at["ttft_ms"]["count"]
    assert f"achieved {at['request_rate']:.4g} req/s over {at['completed']} requests" in line
    if at["offered_rate"]:
        assert f"offered {at['offered_rate']:.4g} req/s" in line
    if answer.get("above") is not None:
        assert "half the last bisection step, not a confidence interval" in line
    assert f"  judged: ttft:p99<150ms over {count} values" in lines
    assert at["slo_support"] == [{"slo": "ttft:p99<150ms", "percentile": 99.0, "count": count,
                                  "needed": 500, "enough": count >= 500}]
    warning = f"  warning: {at['label']}: ttft:p99<150ms rests on {count} values, too few"
    assert any(x.startswith(warning) for x in lines) == (count < 500)
    html = (tmp_path / "bench.html").read_text()
    assert f"achieved {at['request_rate']:.4g} req/s over {at['completed']} requests" in html


def test_a_knee_the_sweep_did_not_pass_is_a_bound(tmp_path: Path) -> None:
    """Before: 'knee: X req/s', X the highest rate swept, as if the knee were found."""
    proc, doc = bench(tmp_path, "--profile", "sweep", "--sweep-rates", "1", "-d", "1s",
                      "--max-concurrency", "4", "--output-tokens", "2", "--no-report",
                      timeout=90, **FAST)
    assert doc is not None
    k = doc["knee_detail"]
    assert "the highest offered rate" in doc["knee_rule"]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("  knee:"))
    if k["bound"] == "at_least":
        assert f"knee: ≥ {k['rate']:.4g} req/s (rate-1): not reached" in line
    else:  # a busy machine: the one rate swept did not keep up
        assert k["bound"] == "below" and line.startswith("  knee: below ")


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

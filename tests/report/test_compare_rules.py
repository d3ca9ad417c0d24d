"""compare: --fail-on rules, better/worse, and the run-to-run noise test."""

from __future__ import annotations

import random

import pytest

from indigo_loadtest.report.compare import (
    Row,
    RuleError,
    compare_rows,
    parse_rule,
    within_noise,
)


def record(p95s: list[float], *, key: str = "http_req_duration") -> dict:
    """A run record with one trend whose per-interval p95 is `p95s` (1 s intervals)."""
    n = len(p95s)
    cols = {"count": [10] * n, "p50": p95s, "p95": p95s, "p99": p95s, "avg": p95s}
    return {
        "totals": {key: {"type": "trend", "unit": "ms", "samples": 10 * n,
                         "med": sum(p95s) / n, "p95": sum(p95s) / n, "p99": max(p95s)}},
        "series": {"t": [float(i + 1) for i in range(n)],
                   "metrics": {key: {"type": "trend", "unit": "ms", "cols": cols}}},
        "thresholds": [],
    }


def test_rules_in_threshold_syntax() -> None:
    rule = parse_rule("http_req_duration:p(95)>+10%")
    assert (rule.key, rule.stat, rule.mode, rule.expression.limit) == (
        "http_req_duration", "p95", "relative", 10.0)
    sub = parse_rule("http_req_duration{name:a:b}:med <= -5%")
    assert (sub.key, sub.stat, sub.expression.limit) == ("http_req_duration{name:a:b}", "med",
                                                         -5.0)
    assert parse_rule("x:p(99)>+50").mode == "delta"
    assert parse_rule("checks:rate<0.99").mode == "value"


@pytest.mark.parametrize("bad", ["http_req_duration>5", "x:p95>+10%", "x:p(95)>+10x",
                                 "x:p(97.5)>+1%", "x:p(95)"])
def test_bad_rules_are_one_line_errors(bad: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule(bad)
    assert "\n" not in str(err.value) and bad in str(err.value)


def test_a_rule_fails_when_it_holds_or_cannot_be_evaluated() -> None:
    base, slower = record([100.0] * 10), record([120.0] * 10)
    assert parse_rule("http_req_duration:p(95)>+10%").evaluate(base, slower)[0]
    assert not parse_rule("http_req_duration:p(95)>+25%").evaluate(base, slower)[0]
    assert parse_rule("http_req_duration:p(95)>+15").evaluate(base, slower)[0]
    assert not parse_rule("http_req_duration:p(95)>200").evaluate(base, slower)[0]
    failed, line = parse_rule("llm_ttft_ms:p(95)>+10%").evaluate(base, slower)
    assert failed and "no samples of llm_ttft_ms in the candidate" in line


def test_better_worse_and_within_noise_from_the_per_interval_series() -> None:
    rnd = random.Random(3)
    a = record([rnd.gauss(100, 10) for _ in range(30)])
    b = record([rnd.gauss(100, 10) for _ in range(30)])
    c = record([rnd.gauss(150, 10) for _ in range(30)])
    assert within_noise(a, b, "http_req_duration", "p95") is True
    assert within_noise(a, c, "http_req_duration", "p95") is False
    assert within_noise(record([1.0, 2.0, 3.0]), record([1.0, 2.0, 3.0]),
                        "http_req_duration", "p95") is None  # too few intervals
    rows = {r.stat: r for r in compare_rows(a, c)}
    assert rows["p95"].verdict == "worse" and rows["p95"].change > 40
    assert {r.verdict for r in compare_rows(a, b) if r.stat != "p99"} == {"noise"}
    assert Row("checks", "rate", "", 0.9, 0.95, 1).verdict == "better"

import math
import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indigo_loadtest.metrics import Registry, tagset
from indigo_loadtest.metrics.thresholds import (
    ThresholdError,
    all_passed,
    parse_expression,
    parse_metric_key,
    parse_thresholds,
)

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq, "!=": operator.ne}


# --- parser -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "aggregation", "percentile", "op", "limit"),
    [
        ("p(95)<2000", "p(95)", 95.0, "<", 2000.0),
        (" p( 99.9 ) <= 1e3 ", "p(99.9)", 99.9, "<=", 1000.0),
        ("avg>=5", "avg", None, ">=", 5.0),
        ("med == 3", "med", None, "==", 3.0),
        ("count!=0", "count", None, "!=", 0.0),
        ("rate<0.05", "rate", None, "<", 0.05),
        ("value===1", "value", None, "===", 1.0),
        ("max > -2.5", "max", None, ">", -2.5),
        ("min<.5", "min", None, "<", 0.5),
        ("p(0)<1", "p(0)", 0.0, "<", 1.0),
        ("p(100)>=+7", "p(100)", 100.0, ">=", 7.0),
    ],
)
def test_parse_valid_expressions(source, aggregation, percentile, op, limit) -> None:
    th = parse_expression(source)
    assert (th.source, th.aggregation, th.percentile, th.op, th.limit) == (
        source, aggregation, percentile, op, limit)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("p95<2000", "unknown aggregation 'p95'"),
        ("mean<3", "unknown aggregation 'mean'"),
        ("p(95)2000", "missing comparison operator"),
        ("", "missing comparison operator"),
        ("p(95)=2000", "missing comparison operator"),
        ("p(101)<1", "percentile 101 is not between 0 and 100"),
        ("p(-1)<1", "percentile -1 is not between 0 and 100"),
        ("avg<abc", "'abc' is not a number"),
        ("avg<", "'' is not a number"),
        ("avg<2s", "'2s' is not a number"),
        ("avg<<2", "'<2' is not a number"),
        ("p()<2", "unknown aggregation 'p()'"),
    ],
)
def test_parse_invalid_expressions_name_the_string_and_metric(source, reason) -> None:
    with pytest.raises(ThresholdError) as exc:
        parse_thresholds({"http_req_duration": [source]})
    msg = str(exc.value)
    assert msg.startswith(f"invalid threshold {source!r} on metric 'http_req_duration': {reason}")
    assert "\n" not in msg
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize(
    ("key", "name", "suffix", "tags"),
    [
        ("http_req_duration", "http_req_duration", "", ()),
        ("http_req_duration{scenario:stream}", "http_req_duration", "scenario:stream",
         (("scenario", "stream"),)),
        ("checks{ check : 'status is 200' , group:\"::g\" }", "checks",
         "check : 'status is 200' , group:\"::g\"",
         (("check", "status is 200"), ("group", "::g"))),
        ("x{url:http://h:1/a}", "x", "url:http://h:1/a", (("url", "http://h:1/a"),)),
    ],
)
def test_parse_metric_keys(key, name, suffix, tags) -> None:
    assert parse_metric_key(key) == (name, suffix, tags)


@pytest.mark.parametrize("key", ["x{", "x}", "x{}", "x{a}", "x{a:}", "{a:b}", "bad name{a:b}",
                                 "x{a:b}y", "x}a:b{", "x{:b}"])
def test_parse_bad_metric_keys(key) -> None:
    with pytest.raises(ThresholdError, match="invalid threshold metric") as exc:
        parse_thresholds({key: ["avg<1"]})
    assert repr(key) in str(exc.value)


def test_config_objects_and_shapes() -> None:
    ts = parse_thresholds({
        "http_req_duration": [
            "p(95)<2000",
            {"threshold": "p(99)<3000", "abortOnFail": True, "delayAbortEval": "1m30s"},
            {"threshold": "avg<1", "abort_on_fail": True, "delay_abort_eval": 2.5},
        ],
        "checks": "rate>0.9",  # a single expression is accepted too
    })
    plain, delayed, snake = ts.entries[0].thresholds
    assert (plain.abort_on_fail, plain.delay_abort_eval) == (False, 0.0)
    assert (delayed.abort_on_fail, delayed.delay_abort_eval) == (True, 90.0)
    assert (snake.abort_on_fail, snake.delay_abort_eval) == (True, 2.5)
    assert ts.entries[1].thresholds[0].source == "rate>0.9"
    assert len(ts) == 4 and bool(ts)
    assert not parse_thresholds(None) and not parse_thresholds({})


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"m": [{"threshold": "avg<1", "abortOnFial": True}]}, "unknown setting 'abortOnFial'"),
        ({"m": [{"abortOnFail": True}]}, "has no 'threshold' string"),
        ({"m": [{"threshold": "avg<1", "abortOnFail": "yes"}]}, "abortOnFail must be true"),
        ({"m": [{"threshold": "avg<1", "delayAbortEval": "10 parsecs"}]},
         "invalid delayAbortEval '10 parsecs'"),
        ({"m": [{"threshold": "avg<1", "delayAbortEval": -1}]}, "invalid delayAbortEval -1"),
        ({"m": [{"threshold": "avg?1"}]}, "invalid threshold 'avg?1' on metric 'm'"),
        ({"m": 5}, "expected a list of expressions"),
        ({"m": [5]}, "expected an expression string"),
        (["avg<1"], "expected a mapping"),
    ],
)
def test_bad_threshold_config(raw, fragment) -> None:
    with pytest.raises(ThresholdError) as exc:
        parse_thresholds(raw)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


aggregations = st.one_of(
    st.sampled_from(["avg", "min", "max", "med", "count", "rate", "value"]),
    st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda p: f"p({p!r})"),
    st.integers(min_value=0, max_value=100).map(lambda p: f"p({p})"),
)
spaces = st.text(" \t", max_size=2)


@settings(max_examples=300, deadline=None)
@given(aggregations, st.sampled_from(sorted(OPS)),
       st.floats(allow_nan=False, allow_infinity=False, width=32), spaces, spaces, spaces,
       spaces)
def test_parser_round_trips_generated_expressions(agg, op, limit, s1, s2, s3, s4) -> None:
    source = f"{s1}{agg}{s2}{op}{s3}{limit!r}{s4}"
    th = parse_expression(source)
    assert (th.aggregation, th.op, th.limit, th.source) == (agg, op, limit, source)
    if agg.startswith("p("):
        assert th.percentile == float(agg[2:-1])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_parser_rejects_garbage_with_a_one_line_threshold_error(source) -> None:
    try:
        parse_thresholds({"m": [source]})
    except ThresholdError as exc:
        assert "\n" not in str(exc) and repr(source) in str(exc)


# --- validation against the registry ------------------------------------------------


def test_validate_unknown_metric_and_type_mismatch() -> None:
    reg = Registry()
    with pytest.raises(ThresholdError, match="unknown metric 'ttft'"):
        parse_thresholds({"ttft{scenario:s}": ["p(95)<1"]}).validate(reg)
    reg.metric("ttft", "trend", True)
    parse_thresholds({"ttft{scenario:s}": ["p(95)<1"]}).validate(reg)

    cases = {
        "http_req_duration": ("count<1", "'count' does not apply to a trend metric"),
        "http_reqs": ("p(95)<1", "'p(N)' does not apply to a counter metric"),
        "vus": ("rate<1", "'rate' does not apply to a gauge metric"),
        "checks": ("avg<1", "'avg' does not apply to a rate metric"),
    }
    for metric, (expr, reason) in cases.items():
        with pytest.raises(ThresholdError) as exc:
            parse_thresholds({metric: [expr]}).validate(reg)
        assert f"invalid threshold {expr!r} on metric {metric!r}: {reason}" in str(exc.value)
    parse_thresholds({
        "http_req_duration": ["avg<1", "min<1", "max<1", "med<1", "p(99.99)<1"],
        "http_reqs": ["count<1", "rate<1"], "vus": ["value<1"], "checks": ["rate<1"],
    }).validate(reg)


# --- evaluation ---------------------------------------------------------------------


def exact_stat(values: list[float], agg: str) -> float:
    s = sorted(values)
    if agg == "avg":
        return sum(s) / len(s)
    if agg == "min":
        return s[0]
    if agg == "max":
        return s[-1]
    p = 50.0 if agg == "med" else float(agg[2:-1])
    rank = p / 100 * (len(s) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.01, max_value=1e5), min_size=1, max_size=200),
    st.sampled_from(["avg", "min", "max", "med", "p(90)", "p(99.9)", "p(0)", "p(100)"]),
    st.sampled_from(["<", "<=", ">", ">="]),
    st.sampled_from([0.9, 1.1]),
)
def test_trend_thresholds_agree_with_exact_statistics(values, agg, op, factor) -> None:
    reg = Registry()
    trend = reg.metric("ttft", "trend", True)
    for v in values:
        reg.record(trend, v, tagset({"scenario": "s"}))
    exact = exact_stat(values, agg)
    limit = exact * factor  # 10% away: the sketch's 0.1% error cannot flip the outcome
    [result] = parse_thresholds({"ttft": [f"{agg}{op}{limit!r}"]}).evaluate(reg, 1.0)
    assert result.ok == OPS[op](exact, limit)
    assert math.isclose(result.observed, exact, rel_tol=2e-3)


def test_submetric_thresholds_see_only_their_samples() -> None:
    reg = Registry()
    dur = reg.builtin.http_req_duration
    for _ in range(50):
        reg.record(dur, 100.0, tagset({"scenario": "fast", "status": "200"}))
        reg.record(dur, 3000.0, tagset({"scenario": "slow", "status": "200"}))
    ts = parse_thresholds({
        "http_req_duration{scenario:fast}": ["p(95)<200"],
        "http_req_duration{scenario:slow}": ["p(95)<200"],
        "http_req_duration{scenario:slow,status:200}": ["min>=3000"],
        "http_req_duration": ["max<=3000"],
    })
    ts.validate(reg)
    fast, slow, both, whole = ts.evaluate(reg, 10.0)
    assert fast.ok and fast.observed == pytest.approx(100.0, rel=2e-3)
    assert not slow.ok and slow.key == "http_req_duration{scenario:slow}"
    assert both.ok and both.tags == (("scenario", "slow"), ("status", "200"))
    assert whole.ok and whole.submetric == ""
    assert not all_passed([fast, slow, both, whole])


def test_counter_gauge_rate_aggregations() -> None:
    reg = Registry()
    b = reg.builtin
    tags = tagset({"scenario": "s"})
    for _ in range(30):
        reg.record(b.http_reqs, 1.0, tags)
    for v in (5.0, 9.0, 2.0):
        reg.record(b.vus, v, tags)
    for ok in [True] * 9 + [False]:
        reg.record(b.checks, ok, tags)
    ts = parse_thresholds({
        "http_reqs": ["count==30", "rate>=2.9", "rate<3.1"],
        "vus": ["value==2"],
        "checks": ["rate>0.85", "rate>0.95"],
    })
    results = ts.evaluate(reg, elapsed_seconds=10.0)
    assert [r.ok for r in results] == [True, True, True, True, True, False]
    assert [r.observed for r in results] == [30.0, 3.0, 3.0, 2.0, 0.9, 0.9]


def test_empty_metrics_at_the_end() -> None:
    reg = Registry()
    ts = parse_thresholds({
        "http_req_failed": ["rate<0.05"],  # no requests: k6 lets a rate of nothing pass
        "http_req_duration": ["p(95)<100", "avg>1"],  # an empty trend has no value
        "vus": ["value>0"],
        "iterations": ["count>0"],  # a counter of nothing is a real 0
    })
    rate, p95, avg, gauge, count = ts.evaluate(reg, 5.0)
    assert all(r.ok and r.no_samples for r in (rate, p95, avg, gauge))  # not judged
    assert not count.ok and count.observed == 0.0 and not count.no_samples
    ts.strict = True  # --strict-thresholds: no samples is a failure
    assert [r.ok for r in ts.evaluate(reg, 5.0)] == [False, False, False, False, False]


def test_should_abort_honours_abort_on_fail_and_delay() -> None:
    reg = Registry()
    failed = reg.builtin.http_req_failed
    ts = parse_thresholds({
        "http_req_failed": [
            "rate<0.01",  # failing, but not an abort threshold
            {"threshold": "rate<0.5", "abortOnFail": True, "delayAbortEval": "10s"},
        ],
        "http_req_duration": [{"threshold": "p(95)<1", "abortOnFail": True}],
    })
    # No samples yet: nothing is judged while running.
    assert ts.should_abort(reg, 60.0) is None
    for i in range(10):
        reg.record(failed, i < 6, tagset({"scenario": "s"}))
    assert ts.should_abort(reg, 9.9) is None  # within delayAbortEval
    hit = ts.should_abort(reg, 10.0)
    assert hit is not None and hit.expression == "rate<0.5" and hit.abort_on_fail
    assert hit.observed == pytest.approx(0.6) and not hit.ok
    # A passing abortOnFail threshold never aborts.
    healthy = Registry()
    for _ in range(10):
        healthy.record(healthy.builtin.http_req_failed, False, tagset({"scenario": "s"}))
        healthy.record(healthy.builtin.http_req_duration, 0.5, tagset({"scenario": "s"}))
    assert ts.should_abort(healthy, 100.0) is None
    # Once its metric has data, the undelayed duration threshold aborts at once.
    healthy.record(healthy.builtin.http_req_duration, 50.0, tagset({"scenario": "s"}))
    healthy.record(healthy.builtin.http_req_duration, 50.0, tagset({"scenario": "s"}))
    hit = ts.should_abort(healthy, 0.5)
    assert hit is not None and hit.metric == "http_req_duration"

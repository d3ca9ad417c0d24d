import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from indigo_loadtest.metrics import EMPTY, Gauge, Registry, Trend, set_active_registry, tagset
from indigo_loadtest.metrics.sinks import TREND_ALPHA, TrendSink


def exact_percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    rank = p / 100 * (len(s) - 1)
    lo = int(rank)
    if lo + 1 >= len(s):
        return s[lo]
    return s[lo] + (s[lo + 1] - s[lo]) * (rank - lo)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.001, max_value=1e6), min_size=1, max_size=300),
    st.sampled_from([0, 1, 50, 90, 95, 99, 99.9, 100]),
)
def test_trend_percentile_within_relative_error(values: list[float], p: float) -> None:
    sink = TrendSink()
    for v in values:
        sink.add(v)
    s = sorted(values)
    rank = p / 100 * (len(s) - 1)
    lo, hi = s[int(rank)], s[min(int(rank) + 1, len(s) - 1)]
    got = sink.percentile(p)
    # The interpolated value lies between its two neighbours, each within alpha.
    assert lo * (1 - TREND_ALPHA) - 1e-12 <= got <= hi * (1 + TREND_ALPHA) + 1e-12
    assert math.isclose(sink.avg, sum(values) / len(values), rel_tol=1e-9)
    assert sink.min == min(values) and sink.max == max(values)


def test_trend_handles_zero_and_negative() -> None:
    sink = TrendSink()
    for v in (-5.0, 0.0, 0.0, 5.0):
        sink.add(v)
    assert sink.percentile(0) == -5.0
    assert sink.percentile(50) == 0.0
    assert sink.percentile(100) == 5.0


def test_merge_equals_single_sink() -> None:
    rnd = random.Random(7)
    values = [rnd.lognormvariate(3, 1) for _ in range(5000)]
    whole, a, b = TrendSink(), TrendSink(), TrendSink()
    for i, v in enumerate(values):
        whole.add(v)
        (a if i % 2 else b).add(v)
    a.merge(b)
    for p in (50, 90, 95, 99):
        assert a.percentile(p) == whole.percentile(p)
    assert a.count == whole.count


def test_registry_state_round_trip_and_submetrics() -> None:
    reg = Registry()
    set_active_registry(reg)
    t = Trend("latency_ms", time=True)
    assert Trend("latency_ms") is t
    t.add(10, {"scenario": "a"})
    t.add(20, {"scenario": "b"})
    other = Registry()
    other.merge_state(reg.state())
    other.merge_state(reg.state())
    m = other.get("latency_ms")
    assert m is not None and m.is_time
    assert m.aggregate().count == 4
    assert m.aggregate({"scenario": "a"}).max == 10


def test_gauge_aggregate_of_several_tag_sets_is_the_value_written_last() -> None:
    reg = Registry()
    g = Gauge("queue_depth", registry=reg)
    for value, model in ((5, "a"), (3, "b"), (7, "a"), (2, "b")):
        g.add(value, {"model": model})
        agg = g.aggregate()
        assert agg.value == value  # k6: the last value written, whatever its tags
    agg = g.aggregate()
    assert (agg.min, agg.max, agg.count) == (2, 7, 4)
    assert g.aggregate({"model": "a"}).value == 7


def test_vu_gauges_of_worker_shards_add_up_and_custom_gauges_keep_the_latest_write() -> None:
    shards = [Registry(), Registry()]
    for reg, vus in zip(shards, (3, 2), strict=True):
        reg.record(reg.builtin.vus, float(vus), EMPTY)  # both shards: the same tag set
    shards[0].record(shards[0].metric("temp", "gauge"), 40.0, tagset({"zone": "x"}))
    shards[1].record(shards[1].metric("temp", "gauge"), 30.0, tagset({"zone": "y"}))
    # The same custom gauge and tag set in both shards: not a sum, the last write.
    for reg, value in zip(shards, (7.0, 5.0), strict=True):
        reg.record(reg.metric("depth", "gauge"), value, EMPTY)
    merged = Registry()
    merged.record(merged.builtin.vus, 0.0, EMPTY)  # the parent's own sample: runs no VUs
    for reg in shards:
        merged.merge_state(reg.state())
    vus = merged.builtin.vus.aggregate()
    # Side by side the shards hold 3 + 2 VUs at the same moment: value, min and max add.
    assert (vus.value, vus.min, vus.max, vus.count) == (5, 5, 5, 3)
    depth = merged.get("depth").aggregate()  # type: ignore[union-attr]
    assert (depth.value, depth.min, depth.max, depth.count) == (5, 5, 7, 2)
    temp = merged.get("temp")
    assert temp is not None and len(temp.sinks) == 2
    assert temp.aggregate().value == 30  # shard 1 wrote its tag set last
    # A state without the write time (an older version) still loads and adds up; its
    # writes count as the oldest.
    old = [{**md, "sinks": [(items, {k: v for k, v in st.items() if k != "written_ns"})
                            for items, st in md["sinks"]]} for md in shards[1].state()]
    mixed = Registry()
    for state in (old, shards[0].state()):
        mixed.merge_state(state)
    assert mixed.builtin.vus.aggregate().value == 5
    assert mixed.get("temp").aggregate().value == 40  # type: ignore[union-attr]


def test_tagsets_are_interned() -> None:
    a = tagset({"x": "1", "y": "2"})
    assert a is tagset([("y", "2"), ("x", "1")])
    assert a.with_pairs(("z", "3")) is tagset({"x": "1", "y": "2", "z": "3"})
    assert EMPTY.with_tags({"ok": True}).get("ok") == "true"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=50),
       st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=20))
def test_add_many_is_add_of_each(values: list[float], before: list[float]) -> None:
    """One stream's gaps folded in one call give the sketch that one add() per gap gives."""
    one, many = TrendSink(), TrendSink()
    for v in before + values:
        one.add(v)
    for v in before:
        many.add(v)
    many.add_many(values)
    assert (many.count, many.min, many.max, many.zeros) == (one.count, one.min, one.max,
                                                              one.zeros)
    assert (many.buckets, many.neg_buckets) == (one.buckets, one.neg_buckets)
    assert math.isclose(many.sum, one.sum, rel_tol=1e-9, abs_tol=1e-6)
    for p in (50, 90, 99):
        assert many.percentile(p) == one.percentile(p)

"""The run over time: per-interval counts, rates and percentiles, read from the registry.

Nothing is added to the hot path. A recorder reads the run's live registry once per
interval (with `--workers`, the merged copy of the workers' latest snapshots) and
subtracts the previous cumulative state sink by sink: trend sketches are bucket counts,
so the difference of two snapshots is exactly the sketch of the samples in between, and
that interval's percentiles come from it. The last point is read from the run's final
registry, so the points of a series add up exactly to the run's totals.

Intervals are 1 s, coarser for long runs so a series stays small: when the planned
duration is known the width is chosen up front (at most ~`MAX_POINTS` points), else it
grows with the elapsed time (`OPEN_ENDED_WIDTHS`). Each point stays exact (no merging
of percentiles after the fact). Reading costs time proportional to the sketches' buckets:
the request-phase trends (`LIGHT_TRENDS`) keep only count and average per interval, and
a reading that takes more than `READ_BUDGET` (1%) of its interval widens the intervals
that follow until it would fit, so the reader takes about 1% of a one-process run's event
loop at most.

Series: every metric as a whole, and for the metrics in `GROUPS` one series per value of
their tags there (endpoint `name`, `scenario`, and `status` for the request count, which
gives errors by status), named as k6 names sub-metrics (`http_req_duration{name:chat}`);
at most `MAX_TAG_VALUES` values per tag, the rest in `(other)` (a URL used as a name must
not make the series unbounded).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .registry import Metric, Registry
from .sinks import TrendSink
from .sinks import _bucket_value as bucket_value
from .tags import TagSet

DEFAULT_INTERVAL = 1.0
MAX_POINTS = 900
# Point widths (s) for a planned duration: the smallest giving at most MAX_POINTS points.
NICE_WIDTHS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
# Open-ended runs (iteration-based): (elapsed below, width). 24 h: 1422 points.
OPEN_ENDED_WIDTHS = ((300, 1), (1800, 5), (7200, 20), (28800, 60), (math.inf, 300))

GROUPS = {"http_reqs": ("name", "scenario", "status"), "http_req_failed": ("name", "scenario"),
          "http_req_duration": ("name", "scenario"), "iterations": ("scenario",)}
GROUPED_PREFIX = "llm_"  # every LLM metric (TTFT, ITL, TPOT, tokens/s, errors) ...
PREFIX_GROUP = ("name", "scenario")  # ... by these
MAX_TAG_VALUES = 20
# The reader's share of the run's time: a reading that takes longer than this share of
# its interval widens the intervals that follow (so the VUs sharing the event loop of
# a one-process run do not lose more; bench/bench_timeseries.py).
READ_BUDGET = 0.01
OTHER = "(other)"
PERCENTILES = (50, 95, 99)
# Trends of request phases: per interval only their count and average. Their sketches
# are the largest part of a registry, and reading every bucket of every one of them each
# second would cost the VUs' event loop a measurable share (bench/bench_timeseries.py);
# their whole-run percentiles are in the totals.
LIGHT_TRENDS = frozenset((
    "http_req_blocked", "http_req_connecting", "http_req_tls_handshaking",
    "http_req_sending", "http_req_waiting", "http_req_receiving",
    "llm_ttfb_ms", "llm_receiving_ms", "llm_total_ms", "llm_queue_ms",
))
TREND_COLUMNS = ("count", "avg", "p50", "p95", "p99", "max")
LIGHT_COLUMNS = ("count", "avg")


def point_width(planned: float | None) -> float | None:
    """The fixed width for a run planned to last `planned` seconds (None: open-ended)."""
    if planned is None or planned <= 0:
        return None
    for width in NICE_WIDTHS:
        if planned / width <= MAX_POINTS:
            return float(width)
    return float(NICE_WIDTHS[-1])


def open_ended_width(elapsed: float) -> float:
    return float(next(w for below, w in OPEN_ENDED_WIDTHS if elapsed < below))


def group_tags(name: str) -> tuple[str, ...]:
    """The tags a metric has sub-metric series for."""
    if name in GROUPS:
        return GROUPS[name]
    return PREFIX_GROUP if name.startswith(GROUPED_PREFIX) else ()


def series_key(metric: str, tag: str | None = None, value: str | None = None) -> str:
    return f"{metric}{{{tag}:{value}}}" if tag else metric


def unit_of(metric: Metric) -> str:
    if metric.is_time:
        return "ms"
    if metric.name in ("data_sent", "data_received"):
        return "B"
    return ""


@dataclass
class _Delta:
    """What one series gained during the current interval."""

    kind: str
    count: int = 0
    value: float = 0.0  # counter sum, rate trues, trend sum
    zeros: int = 0
    buckets: dict[int, int] = field(default_factory=dict)
    neg: dict[int, int] = field(default_factory=dict)
    light: bool = False  # count and sum only (LIGHT_TRENDS)

    def add_trend(self, count: int, total: float, zeros: int, buckets: dict[int, int],
                  neg: dict[int, int]) -> None:
        self.count += count
        self.value += total
        self.zeros += zeros
        for src, dst in ((buckets, self.buckets), (neg, self.neg)):
            for i, c in src.items():
                dst[i] = dst.get(i, 0) + c

    def row(self) -> dict[str, float | None]:
        if self.kind == "counter":
            return {"count": self.count, "value": self.value}
        if self.kind == "rate":
            return {"total": self.count, "trues": self.value}
        return trend_row(self)


def trend_row(d: _Delta) -> dict[str, float | None]:
    """count, avg, min, percentiles and max of an interval's sketch (None when empty)."""
    if not d.count:  # nothing new this interval
        return {c: _empty("trend", c) for c in (LIGHT_COLUMNS if d.light else TREND_COLUMNS)}
    if d.light:
        return {"count": d.count, "avg": round_value(d.value / d.count)}
    values, ranks = _sorted_buckets(d)

    def at(index: int) -> float:
        return values[bisect.bisect_right(ranks, index)]

    def percentile(p: float) -> float:  # interpolated between ranks, as TrendSink does
        rank = p / 100.0 * (d.count - 1)
        lo = int(rank)
        if lo + 1 >= d.count:
            return at(lo)
        return at(lo) + (at(lo + 1) - at(lo)) * (rank - lo)

    row: dict[str, float | None] = {"count": d.count, "avg": d.value / d.count}
    for p in PERCENTILES:
        row[f"p{p}"] = percentile(p)
    row["max"] = at(d.count - 1)
    return {k: round_value(v) for k, v in row.items()}


def _sorted_buckets(d: _Delta) -> tuple[list[float], list[int]]:
    """The interval's bucket values in order, and the running sample count up to each:
    one sort for every statistic of the point."""
    values: list[float] = []
    ranks: list[int] = []
    n = 0
    for sign, buckets, order in ((-1.0, d.neg, True), (1.0, d.buckets, False)):
        if sign > 0 and d.zeros:
            n += d.zeros
            values.append(0.0)
            ranks.append(n)
        for i in sorted(buckets, reverse=order):
            n += buckets[i]
            values.append(sign * bucket_value(i))
            ranks.append(n)
    return values, ranks


def round_value(v: float | None) -> float | None:
    """6 significant digits (the sketch is accurate to 0.1%); whole numbers stay ints."""
    if v is None or not math.isfinite(v):
        return None
    if float(v).is_integer() and abs(v) < 1e15:
        return int(v)
    return float(f"{v:.6g}")


class TimeSeries:
    """The recorded points: `t` (end of each interval, seconds since the start) and one
    table of columns per series. Series that appear later are padded with empty points."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.series: dict[str, dict[str, Any]] = {}

    def append(self, t: float, rows: dict[str, tuple[str, str, dict[str, float | None]]]) -> None:
        n = len(self.t)
        self.t.append(round(t, 3))
        for key, (kind, unit, row) in rows.items():
            entry = self.series.get(key)
            if entry is None:
                entry = self.series[key] = {
                    "type": kind, "unit": unit,
                    "cols": {c: [_empty(kind, c)] * n for c in row},
                }
            for c, values in entry["cols"].items():
                values.append(row.get(c))
        for entry in self.series.values():  # no samples for it in this interval
            for c, values in entry["cols"].items():
                if len(values) < n + 1:
                    values.append(_empty(entry["type"], c))

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "metrics": self.series}


def _empty(kind: str, column: str) -> float | None:
    """An interval without samples: counts are 0, statistics do not exist."""
    if column in ("count", "total", "trues") or (kind == "counter" and column == "value"):
        return 0
    return None


class Recorder:
    """Turns successive cumulative registry states into points (see the module doc)."""

    def __init__(self, planned: float | None = None) -> None:
        self.fixed_width = point_width(planned)
        self.slowdown = 1  # raised by a reading over READ_BUDGET (see sample_async)
        self.read_seconds = 0.0  # time spent reading by sample_async
        self.series = TimeSeries()
        self._prev: dict[tuple[str, TagSet], tuple] = {}
        self._keys: dict[tuple[str, TagSet], tuple[str, ...]] = {}
        self._tag_values: dict[tuple[str, str], set[str]] = {}

    def width(self, elapsed: float) -> float:
        return (self.fixed_width or open_ended_width(elapsed)) * self.slowdown

    def sample(self, registry: Registry, t: float) -> None:
        """Add the point ending at `t` (seconds since the start)."""
        rows: dict[str, tuple[str, str, dict[str, float | None]]] = {}
        for metric in list(registry):
            rows.update(self.read(metric))
        self.series.append(t, rows)

    async def sample_async(self, registry: Registry, t: float) -> None:
        """`sample`, giving the event loop back between metrics (no long stall for the
        VUs sharing it: with one process, the reader runs on their loop). A reading that
        took more than READ_BUDGET of its interval widens the next ones (by a power of 2)
        until it would fit. All or nothing: what it read counts as recorded only once its
        point is appended, so a reading cancelled between two metrics (the run ending)
        leaves its samples to the next point rather than losing them."""
        rows: dict[str, tuple[str, str, dict[str, float | None]]] = {}
        read_states: dict[tuple[str, TagSet], tuple] = {}
        spent = 0.0
        for metric in list(registry):
            started = time.perf_counter()
            rows.update(self.read(metric, read_states))
            spent += time.perf_counter() - started
            await asyncio.sleep(0)
        width = t - (self.series.t[-1] if self.series.t else 0.0)
        self.series.append(t, rows)
        self._prev.update(read_states)  # no await since the append: all or nothing
        self.read_seconds += spent
        if spent > READ_BUDGET * width:  # widen enough for the same reading to fit
            self.slowdown *= 2 ** math.ceil(math.log2(spent / (READ_BUDGET * width)))

    def read(self, metric: Metric, states: dict[tuple[str, TagSet], tuple] | None = None,
             ) -> dict[str, tuple[str, str, dict[str, float | None]]]:
        """The rows of one metric's series for the current point; the sinks' states read
        go to `states` (default: recorded at once as the base of the next point)."""
        unit = unit_of(metric)
        if metric.type == "gauge":
            sink = metric.aggregate()
            if not sink.count:
                return {}
            return {metric.name: ("gauge", unit, {"value": round_value(sink.value)})}
        return {key: (metric.type, unit, d.row())
                for key, d in self._metric_deltas(metric, states).items()}

    def _metric_deltas(self, metric: Metric,
                       states: dict[tuple[str, TagSet], tuple] | None) -> dict[str, _Delta]:
        states = self._prev if states is None else states
        deltas: dict[str, _Delta] = {}
        step = _light_trend_step if metric.name in LIGHT_TRENDS else _STEPS[metric.type]
        for ts, sink in list(metric.sinks.items()):
            state = (metric.name, ts)
            prev = self._prev.get(state)
            gained = step(sink, prev)
            if gained is None:
                continue
            states[state] = gained[0]
            for key in self._series_keys(metric.name, ts):
                d = deltas.get(key)
                if d is None:
                    d = deltas[key] = _Delta(metric.type)
                gained[1](d)
        return deltas

    def _series_keys(self, name: str, ts: TagSet) -> tuple[str, ...]:
        keys = self._keys.get((name, ts))
        if keys is None:
            found = [name]
            for tag in group_tags(name):
                value = ts.get(tag)
                if value is not None:
                    found.append(series_key(name, tag, self._capped(name, tag, value)))
            keys = self._keys[(name, ts)] = tuple(found)
        return keys

    def _capped(self, name: str, tag: str, value: str) -> str:
        seen = self._tag_values.setdefault((name, tag), set())
        if value in seen:
            return value
        if len(seen) >= MAX_TAG_VALUES:
            return OTHER
        seen.add(value)
        return value


# Each step returns None (nothing new) or (the state to remember, a function adding the
# gain to a series' delta). Counts only grow. A smaller count (a live reading missing a
# share it had shown: the live view is meant never to do that, see engine.workers) is
# ignored and the previous reading stays the baseline: its samples were measured, so
# when the share shows again only what is new since then counts. Taking the smaller
# count as a new start would count that share twice, and the series would add up to
# more than the run's total.


def _summed_step(total_attr: str, count_attr: str, *, light: bool = False
                 ) -> Callable[[Any, tuple | None], tuple | None]:
    """The step of a sink that only adds up: a counter (value, count), a rate (trues,
    total), or a trend read for its count and sum alone (`light`). Its gain is the
    difference of both since the last reading."""

    def step(sink: Any, prev: tuple | None) -> tuple | None:
        value, count = getattr(sink, total_attr), getattr(sink, count_attr)
        p_value, p_count = prev if prev is not None else (0, 0)
        if count <= p_count:  # nothing new, or a dip (see above)
            return None
        dv, dc = value - p_value, count - p_count

        def gain(d: _Delta) -> None:
            d.count += dc
            d.value += dv
            if light:
                d.light = True
        return (value, count), gain
    return step


_counter_step = _summed_step("value", "count")
_rate_step = _summed_step("trues", "total")
_light_trend_step = _summed_step("sum", "count", light=True)


def _trend_step(sink: TrendSink, prev: tuple | None) -> tuple | None:
    count = sink.count
    if prev is not None and count <= prev[0]:  # nothing new, or a dip (see above)
        return None
    state = (count, sink.sum, sink.zeros, dict(sink.buckets), dict(sink.neg_buckets))
    if prev is None:
        p_count, p_sum, p_zeros, p_b, p_n = 0, 0.0, 0, {}, {}
    else:
        p_count, p_sum, p_zeros, p_b, p_n = prev
    buckets, neg = _diff(state[3], p_b), _diff(state[4], p_n)
    dc, ds, dz = count - p_count, sink.sum - p_sum, sink.zeros - p_zeros

    def gain(d: _Delta) -> None:
        d.add_trend(dc, ds, dz, buckets, neg)
    return state, gain


def _diff(cur: dict[int, int], prev: dict[int, int]) -> dict[int, int]:
    if not prev:
        return cur
    g = prev.get
    return {i: c - p for i, c in cur.items() if c > (p := g(i, 0))}


_STEPS: dict[str, Callable[[Any, tuple | None], tuple | None]] = {
    "counter": _counter_step, "rate": _rate_step, "trend": _trend_step,
}


def interval_widths(t: Iterable[float]) -> list[float]:
    """Each point's width in seconds (the first starts at 0)."""
    out, last = [], 0.0
    for end in t:
        out.append(max(end - last, 1e-9))
        last = end
    return out

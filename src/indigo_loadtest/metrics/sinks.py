"""Aggregating sinks, one per (metric, tag set).

Samples are folded into a sink as they arrive; no per-sample object is kept.
Trends use a log-bucketed sketch (the DDSketch mapping) with 0.1% relative
accuracy: memory stays bounded however long the test runs, percentiles are
within 0.1% of the exact value, and sinks from several worker processes merge
exactly (bucket counts add).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from time import time_ns
from typing import Any

try:
    import cython
except ImportError:  # no Cython: the module runs as Python (as it does uncompiled)
    from .. import _cython_shim as cython

if cython.compiled:  # a trend's sample costs a C log, not a Python call (setup.py)
    from cython.cimports.libc.math import ceil, log
else:
    from math import ceil, log

# Relative accuracy of trend percentiles.
TREND_ALPHA = 0.001
_GAMMA = (1 + TREND_ALPHA) / (1 - TREND_ALPHA)
_INV_LOG_GAMMA = 1.0 / math.log(_GAMMA)
_LOG_GAMMA = math.log(_GAMMA)
# Values this close to zero count as zero (a 0 ms connect on a reused connection).
_MIN_POSITIVE = 1e-9


class CounterSink:
    __slots__ = ("count", "value")
    kind = "counter"

    def __init__(self) -> None:
        self.value = 0.0
        self.count = 0

    def add(self, v: float) -> None:
        self.value += v
        self.count += 1

    def merge(self, other: CounterSink) -> None:
        self.value += other.value
        self.count += other.count

    def state(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count}

    def load(self, s: dict[str, Any]) -> None:
        self.value = s["value"]
        self.count = s["count"]


class GaugeSink:
    """The last value, min and max. `written_ns` is the wall-clock time of the last add
    (unix ns: comparable across worker processes, unlike a monotonic clock)."""

    __slots__ = ("count", "max", "min", "value", "written_ns")
    kind = "gauge"

    def __init__(self) -> None:
        self.value = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.count = 0
        self.written_ns = 0

    def add(self, v: float) -> None:
        self.value = v
        self.written_ns = time_ns()
        if v < self.min:
            self.min = v
        if v > self.max:
            self.max = v
        self.count += 1

    def merge(self, other: GaugeSink) -> None:
        """Tag sets of one metric (`Metric.aggregate`): the value written last wins, as
        in k6; min/max widen."""
        if other.count:
            if not self.count or other.written_ns >= self.written_ns:
                self.value = other.value
                self.written_ns = other.written_ns
            self._widen(other)

    def merge_shard(self, other: GaugeSink) -> None:
        """The same tag set of a gauge that counts what each worker process holds
        (`vus`, `vus_max`; see `Registry.merge_state`): the shards run side by side, so
        the whole at a moment is the sum of the shards at that moment. Last values add
        up (each is the shard's value at the end); so do min and max, since the shards
        ramp in lockstep (each runs its execution segment of the same schedule) and so
        reach their lows and peaks together. Custom gauges are not summed: `merge`."""
        if not other.count:
            return
        if not self.count:
            self.value, self.min, self.max = other.value, other.min, other.max
        else:
            self.value += other.value
            self.min += other.min
            self.max += other.max
        self.written_ns = max(self.written_ns, other.written_ns)
        self.count += other.count

    def _widen(self, other: GaugeSink) -> None:
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count

    def state(self) -> dict[str, Any]:
        return {"value": self.value, "min": self.min, "max": self.max, "count": self.count,
                "written_ns": self.written_ns}

    def load(self, s: dict[str, Any]) -> None:
        self.value, self.min, self.max, self.count = s["value"], s["min"], s["max"], s["count"]
        self.written_ns = s.get("written_ns", 0)  # absent from states of older versions


class RateSink:
    __slots__ = ("total", "trues")
    kind = "rate"

    def __init__(self) -> None:
        self.trues = 0
        self.total = 0

    def add(self, v: float) -> None:
        self.total += 1
        if v:
            self.trues += 1

    @property
    def rate(self) -> float:
        return self.trues / self.total if self.total else 0.0

    @property
    def falses(self) -> int:
        return self.total - self.trues

    def merge(self, other: RateSink) -> None:
        self.trues += other.trues
        self.total += other.total

    def state(self) -> dict[str, Any]:
        return {"trues": self.trues, "total": self.total}

    def load(self, s: dict[str, Any]) -> None:
        self.trues, self.total = s["trues"], s["total"]


class TrendSink:
    """count/sum/min/max exact; percentiles from a log-bucketed sketch."""

    __slots__ = ("buckets", "count", "max", "min", "neg_buckets", "sum", "zeros")
    kind = "trend"

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.zeros = 0
        self.buckets: dict[int, int] = {}
        self.neg_buckets: dict[int, int] = {}

    def add(self, v: float) -> None:
        self.count += 1
        self.sum += v
        if v < self.min:
            self.min = v
        if v > self.max:
            self.max = v
        self.zeros += _fold(self.buckets, self.neg_buckets, (v,))

    def add_many(self, values: list[float]) -> None:
        """add() of each value, folded in one pass: one stream's inter-token gaps cost
        one call, not one per token."""
        if not values:
            return
        self.count += len(values)
        self.sum += sum(values)
        lo, hi = min(values), max(values)
        if lo < self.min:
            self.min = lo
        if hi > self.max:
            self.max = hi
        self.zeros += _fold(self.buckets, self.neg_buckets, values)

    @property
    def avg(self) -> float:
        return self.sum / self.count if self.count else 0.0

    @property
    def med(self) -> float:
        return self.percentile(50)

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100), within TREND_ALPHA relative error."""
        n = self.count
        if n == 0:
            return 0.0
        if p <= 0:
            return self.min
        if p >= 100:
            return self.max
        return interpolated(n, p, self._value_at)

    def _value_at(self, index: int) -> float:
        """Approximate value of the sample at 0-based sorted position `index`."""
        seen = 0
        for i in sorted(self.neg_buckets, reverse=True):
            seen += self.neg_buckets[i]
            if seen > index:
                return self._clamp(-_bucket_value(i))
        seen += self.zeros
        if seen > index:
            return self._clamp(0.0)
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen > index:
                return self._clamp(_bucket_value(i))
        return self.max

    def _clamp(self, v: float) -> float:
        return min(max(v, self.min), self.max)

    def merge(self, other: TrendSink) -> None:
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.zeros += other.zeros
        for src, dst in ((other.buckets, self.buckets), (other.neg_buckets, self.neg_buckets)):
            for i, c in src.items():
                dst[i] = dst.get(i, 0) + c

    def state(self) -> dict[str, Any]:
        return {
            "count": self.count, "sum": self.sum, "min": self.min, "max": self.max,
            "zeros": self.zeros,
            "buckets": list(self.buckets.items()),
            "neg_buckets": list(self.neg_buckets.items()),
        }

    def load(self, s: dict[str, Any]) -> None:
        self.count, self.sum, self.min, self.max = s["count"], s["sum"], s["min"], s["max"]
        self.zeros = s["zeros"]
        self.buckets = {int(i): c for i, c in s["buckets"]}
        self.neg_buckets = {int(i): c for i, c in s["neg_buckets"]}


def interpolated(n: int, p: float, value_at: Callable[[int], float]) -> float:
    """The p-th percentile (0..100) of `n` sorted values, each read by `value_at(index)`:
    linear between the two closest ranks (rank = p/100 * (n - 1)), as k6 and
    numpy.percentile's default do."""
    rank = p / 100.0 * (n - 1)
    lo = int(rank)
    frac = rank - lo
    v_lo = value_at(lo)
    if frac == 0.0 or lo + 1 >= n:
        return v_lo
    return v_lo + (value_at(lo + 1) - v_lo) * frac


@cython.cfunc
@cython.locals(b=dict, neg=dict, x=cython.double, i=cython.long, zeros=cython.Py_ssize_t,
               scale=cython.double, tiny=cython.double)
def _fold(b: dict[int, int], neg: dict[int, int], values: Any) -> int:
    """Count each value in its sketch bucket: `b` for the positive ones, `neg` for the
    negative ones (by magnitude); returns how many were zero."""
    zeros, scale, tiny = 0, _INV_LOG_GAMMA, _MIN_POSITIVE
    for x in values:
        if x > tiny:
            i = int(ceil(log(x) * scale))  # noqa: RUF046 (compiled: a C double)
            b[i] = b.get(i, 0) + 1
        elif x < -tiny:
            i = int(ceil(log(-x) * scale))  # noqa: RUF046
            neg[i] = neg.get(i, 0) + 1
        else:
            zeros += 1
    return zeros


def _bucket_value(i: int) -> float:
    # Midpoint (in relative terms) of bucket i's range (gamma^(i-1), gamma^i].
    return 2.0 * math.exp(i * _LOG_GAMMA) / (_GAMMA + 1.0)


Sink = CounterSink | GaugeSink | RateSink | TrendSink

SINK_TYPES: dict[str, type[Sink]] = {
    "counter": CounterSink,
    "gauge": GaugeSink,
    "rate": RateSink,
    "trend": TrendSink,
}

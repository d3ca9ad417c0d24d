"""Metric registry: named metrics, their per-tag-set sinks, and raw-sample listeners.

A run creates one Registry and makes it active before the scenario module is
imported, so that `Trend("x", time=True)` at module level binds to that run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, ClassVar

from .builtin import BuiltinMetrics
from .sinks import SINK_TYPES, GaugeSink, Sink
from .tags import EMPTY, TagSet

METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
# Gauges of what each worker process holds (its running and allocated VUs): the run's
# figure is the sum over the processes, not the value one of them wrote last.
SHARD_SUMMED_GAUGES = frozenset(("vus", "vus_max"))

# Tags of the code that is running now: a VU task sets its base tags (scenario,
# test-wide tags, group) here, so custom metrics and checks pick them up.
current_tags: ContextVar[TagSet] = ContextVar("current_tags", default=EMPTY)

# (metric, tags, value, unix time in seconds)
SampleListener = Callable[["Metric", TagSet, float, float], None]


class MetricError(ValueError):
    """A metric was declared with a bad name or conflicting type."""


class Metric:
    """A named metric. Create through Trend/Counter/Gauge/Rate or Registry.metric()."""

    type: ClassVar[str] = ""
    __slots__ = ("is_time", "name", "registry", "sinks")

    name: str
    is_time: bool
    registry: Registry
    sinks: dict[TagSet, Sink]

    def __new__(cls, name: str, time: bool = False, *, registry: Registry | None = None):
        return (registry or active_registry()).metric(name, cls.type, is_time=time)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # set up by Registry.metric()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def add(self, value: float | bool, tags: Mapping[str, Any] | None = None) -> None:
        """Record a sample, tagged with the running code's tags plus `tags`."""
        ts = current_tags.get()
        if tags:
            ts = ts.with_tags(tags)
        self.registry.record(self, float(value), ts)

    def sink(self, tags: TagSet) -> Sink:
        s = self.sinks.get(tags)
        if s is None:
            factory = self.registry.sink_factories.get(self.name)  # e.g. metrics.exact
            s = factory() if factory is not None else SINK_TYPES[self.type]()
            self.sinks[tags] = s
        return s

    def aggregate(self, flt: Mapping[str, str] | None = None) -> Sink:
        """All samples of this metric (or of the sub-metric `flt`) merged into one sink."""
        out = SINK_TYPES[self.type]()
        for ts, s in self.sinks.items():
            if not flt or ts.matches(flt):
                out.merge(s)  # type: ignore[arg-type]
        return out


class Trend(Metric):
    """Statistics (avg, min, med, max, percentiles) of sample values; `time=True` for ms."""

    type = "trend"
    __slots__ = ()


class Counter(Metric):
    """A cumulative sum."""

    type = "counter"
    __slots__ = ()


class Gauge(Metric):
    """The last value (plus min and max)."""

    type = "gauge"
    __slots__ = ()


class Rate(Metric):
    """The share of non-zero samples."""

    type = "rate"
    __slots__ = ()


METRIC_CLASSES: dict[str, type[Metric]] = {
    c.type: c for c in (Trend, Counter, Gauge, Rate)
}


class Registry:
    """All metrics of one run (of one process)."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}
        self.listeners: list[SampleListener] = []
        # Metric name -> the sink its new tag sets get instead of the type's (exact.py)
        self.sink_factories: dict[str, Callable[[], Sink]] = {}
        self.builtin = BuiltinMetrics(self)

    def metric(self, name: str, type_: str, is_time: bool = False) -> Metric:
        """Get or create a metric; a name reused with another type is an error."""
        m = self.metrics.get(name)
        if m is not None:
            if m.type != type_:
                raise MetricError(
                    f"metric {name!r} already exists as a {m.type}, cannot redeclare as {type_}"
                )
            return m
        if not METRIC_NAME.match(name):
            raise MetricError(f"invalid metric name {name!r}")
        cls = METRIC_CLASSES.get(type_)
        if cls is None:
            raise MetricError(f"unknown metric type {type_!r}")
        m = object.__new__(cls)
        m.name = name
        m.is_time = is_time
        m.registry = self
        m.sinks = {}
        self.metrics[name] = m
        return m

    def record(self, metric: Metric, value: float, tags: TagSet) -> None:
        """Fold one sample into its sink and hand it to raw-sample listeners."""
        metric.sink(tags).add(value)
        if self.listeners:
            now = time.time()
            for fn in self.listeners:
                fn(metric, tags, value, now)

    def add_listener(self, fn: SampleListener) -> None:
        self.listeners.append(fn)

    def remove_listener(self, fn: SampleListener) -> None:
        # A new list: a listener may detach itself (a failed output) while `record`
        # iterates, which must not skip the next listener's sample.
        self.listeners = [f for f in self.listeners if f != fn]

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.metrics.values())

    def get(self, name: str) -> Metric | None:
        return self.metrics.get(name)

    # --- merging across worker processes -------------------------------------------
    def state(self) -> list[dict[str, Any]]:
        """A picklable/JSON-able dump of every metric and sink."""
        return [
            {
                "name": m.name, "type": m.type, "is_time": m.is_time,
                "sinks": [(list(ts.items), s.state()) for ts, s in m.sinks.items()],
            }
            for m in self.metrics.values()
        ]

    def merge_state(self, state: list[dict[str, Any]]) -> None:
        """Add another registry's state() into this one (a worker process's). Gauges
        merge as k6 merges one process's writes: the value written last wins, min/max
        widen; only the gauges of what each process holds (SHARD_SUMMED_GAUGES) add up."""
        from .tags import tagset

        for md in state:
            m = self.metric(md["name"], md["type"], md["is_time"])
            m.is_time = m.is_time or md["is_time"]
            for items, st in md["sinks"]:
                sink = m.sink(tagset(tuple(map(tuple, items))))
                other = type(sink)()  # the same kind reads all the state has (exact.py)
                other.load(st)
                if isinstance(sink, GaugeSink) and m.name in SHARD_SUMMED_GAUGES:
                    sink.merge_shard(other)  # type: ignore[arg-type]
                else:
                    sink.merge(other)  # type: ignore[arg-type]


_active: Registry | None = None


def active_registry() -> Registry:
    """The registry of the current run (a default one outside a run)."""
    global _active
    if _active is None:
        _active = Registry()
    return _active


def set_active_registry(reg: Registry) -> None:
    global _active
    _active = reg

"""Metrics: interned tag sets, aggregating sinks, the registry, built-in metrics."""

from .registry import (
    Counter,
    Gauge,
    Metric,
    MetricError,
    Rate,
    Registry,
    Trend,
    active_registry,
    current_tags,
    set_active_registry,
)
from .sinks import CounterSink, GaugeSink, RateSink, Sink, TrendSink
from .tags import EMPTY, TagSet, tagset

__all__ = [
    "EMPTY", "Counter", "CounterSink", "Gauge", "GaugeSink", "Metric", "MetricError",
    "Rate", "RateSink", "Registry", "Sink", "TagSet", "Trend", "TrendSink",
    "active_registry", "current_tags", "set_active_registry", "tagset",
]

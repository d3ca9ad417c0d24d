"""Exact percentiles of a bounded number of samples, for the benchmark's figures.

A trend's percentiles come from a sketch with 0.1% relative accuracy (sinks.py): about
±0.7 ms at 720 ms, enough for a threshold, not for setting a median beside another
tool's exact one. A metric marked with `keep_exact` also keeps every value in a compact
array (`array('d')`, 8 bytes a value), up to `EXACT_CAP` values per metric in one
registry (shared by its tag sets). Past the cap, the sink that could not keep a value
drops its array and reads as inexact, and `exact_values` answers why: the figures fall
back to the sketch and say so. The arrays ride in `Registry.state()`, so the parent of
`--workers` merges them as it merges the sketches (the cap applies to the merged whole).

Thresholds and the end-of-test summary of these metrics are unchanged: they read the
sketch (`TrendSink.percentile`), as for every trend.

The percentile of exact values is numpy.percentile's default (linear interpolation
between the two closest ranks: rank = p/100 * (n - 1)), which is what vLLM's
`bench serve` reports (np.percentile, np.median), so a median compares by definition.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from .registry import Metric, Registry
from .sinks import TrendSink, interpolated

EXACT_CAP = 1_000_000  # values per metric per registry (a benchmark point): 8 MB
UNBOUNDED = 1 << 62  # a sink read from a state only carries values: no budget of its own


class ExactBudget:
    """The values a metric's sinks may still keep in one registry."""

    __slots__ = ("cap", "left")

    def __init__(self, cap: int = EXACT_CAP) -> None:
        self.cap = cap
        self.left = cap

    def take(self, n: int) -> bool:
        if n > self.left:
            return False
        self.left -= n
        return True


class ExactTrendSink(TrendSink):
    """A trend sink (sketch, count, sum, min, max as any) that also keeps every value
    while its metric's budget lasts; `overflowed` once it could not."""

    __slots__ = ("budget", "overflowed", "values")

    def __init__(self, budget: ExactBudget | None = None) -> None:
        super().__init__()
        self.budget = budget if budget is not None else ExactBudget(UNBOUNDED)
        self.values = array("d")
        self.overflowed = False

    def add(self, v: float) -> None:
        super().add(v)
        self._keep((v,))

    def add_many(self, values: list[float]) -> None:
        super().add_many(values)
        self._keep(values)

    def _keep(self, values: Sequence[float]) -> None:
        if self.overflowed:
            return
        if self.budget.take(len(values)):
            self.values.extend(values)
        else:
            self._overflow()

    def _overflow(self) -> None:
        self.overflowed = True
        self.budget.left += len(self.values)  # what this sink held is free again
        self.values = array("d")

    @property
    def complete(self) -> bool:
        """Every sample's value is here."""
        return not self.overflowed and len(self.values) == self.count

    def merge(self, other: TrendSink) -> None:
        """Another process's sink of the same tag set (`Registry.merge_state`), or one
        being aggregated: its values join these while both are complete and the budget
        lasts; an inexact part makes the whole inexact."""
        super().merge(other)
        if self.overflowed:
            return
        if isinstance(other, ExactTrendSink) and other.complete:
            self._keep(other.values)
        elif other.count:
            self._overflow()

    def state(self) -> dict[str, Any]:
        out = super().state()
        out["exact"] = None if self.overflowed else self.values.tobytes()  # a copy
        return out

    def load(self, s: dict[str, Any]) -> None:
        super().load(s)
        values = s.get("exact")
        self.values = array("d")
        self.overflowed = values is None
        if values is not None:
            self.values.frombytes(values)


def keep_exact(registry: Registry, name: str, cap: int = EXACT_CAP) -> None:
    """From now on, the trend `name`'s new sinks in `registry` keep their values (up to
    `cap` in all). Sinks made before keep their sketch only (read as inexact)."""
    budget = ExactBudget(cap)
    registry.sink_factories[name] = lambda: ExactTrendSink(budget)


def exact_values(metric: Metric, flt: Mapping[str, str] | None = None
                 ) -> tuple[list[float] | None, str]:
    """Every value of the metric (or of its sub-metric `flt`), sorted; or None and the
    reason they are not all kept."""
    out: list[float] = []
    for ts, sink in metric.sinks.items():
        if flt and not ts.matches(flt):
            continue
        if not isinstance(sink, ExactTrendSink):
            return None, "values not kept"
        if not sink.complete:
            return None, f"more than {sink.budget.cap:,} values"
        out.extend(sink.values)
    out.sort()
    return out, ""


def percentile(ordered: Sequence[float], p: float) -> float:
    """numpy.percentile(values, p) (its default, linear) of values sorted ascending."""
    if not ordered:
        raise ValueError("no values")
    return interpolated(len(ordered), p, ordered.__getitem__)

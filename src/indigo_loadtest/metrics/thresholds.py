"""Thresholds in k6 syntax: parsing, validation against the registry, evaluation.

    options["thresholds"] = {
        "http_req_duration": ["p(95)<2000"],
        "http_req_duration{scenario:stream}": [
            {"threshold": "p(99.9) < 5000", "abortOnFail": True, "delayAbortEval": "10s"},
        ],
    }

Life cycle of a run: `parse_thresholds(options)` as soon as the options are read
(syntax errors), `ThresholdSet.validate(registry)` once the scenario module is
imported (unknown metrics, aggregation not valid for the metric type), then
`should_abort()` periodically during the test and `evaluate()` at the end. All of
this happens before any traffic, so a typo never costs a test run.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..durations import parse_duration
from .registry import METRIC_NAME, Registry
from .sinks import CounterSink, GaugeSink, RateSink, Sink, TrendSink


class ThresholdError(ValueError):
    """A threshold that cannot be parsed or does not fit its metric (one-line message)."""


# Which aggregations each metric type supports, as in k6.
AGGREGATIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "trend": ("avg", "min", "max", "med", "p(N)"),
    "counter": ("count", "rate"),
    "gauge": ("value",),
    "rate": ("rate",),
}

# Longest first, so "<=" is not read as "<".
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "===": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_OPERATOR_RE = re.compile("|".join(re.escape(op) for op in _OPERATORS))
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(f"^{_NUMBER}$")
PERCENTILE_RE = re.compile(r"^p\(\s*(" + _NUMBER + r")\s*\)$")
_PLAIN_AGGREGATIONS = ("avg", "min", "max", "med", "count", "rate", "value")
_AGGREGATION_HELP = "avg, min, max, med, p(N), count, rate or value"

_CONFIG_KEYS = {
    "threshold": "threshold",
    "abortOnFail": "abort_on_fail",
    "abort_on_fail": "abort_on_fail",
    "delayAbortEval": "delay_abort_eval",
    "delay_abort_eval": "delay_abort_eval",
}


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold expression, e.g. `p(95)<2000`."""

    source: str  # as the user wrote it (the key in the summary export)
    aggregation: str  # "avg", "min", "max", "med", "count", "rate", "value" or "p(95)"
    percentile: float | None  # 95.0 for "p(95)", else None
    op: str
    limit: float
    abort_on_fail: bool = False
    delay_abort_eval: float = 0.0  # seconds

    @property
    def aggregation_kind(self) -> str:
        """The aggregation as listed in AGGREGATIONS_BY_TYPE ("p(N)" for percentiles)."""
        return "p(N)" if self.percentile is not None else self.aggregation

    def passes(self, observed: float) -> bool:
        return _OPERATORS[self.op](observed, self.limit)


@dataclass(frozen=True)
class MetricThresholds:
    """The thresholds of one metric or tagged sub-metric (one key of the options)."""

    metric: str
    submetric: str  # the text between the braces, "" for the whole metric
    tags: tuple[tuple[str, str], ...]  # the sub-metric filter
    thresholds: tuple[Threshold, ...]

    @property
    def key(self) -> str:
        """`metric` or `metric{submetric}`, as k6 names sub-metrics."""
        return f"{self.metric}{{{self.submetric}}}" if self.submetric else self.metric

    @property
    def tag_filter(self) -> dict[str, str]:
        return dict(self.tags)


@dataclass(frozen=True)
class ThresholdResult:
    """The outcome of one threshold at one moment."""

    metric: str
    submetric: str  # "" or e.g. "scenario:stream"
    tags: tuple[tuple[str, str], ...]
    expression: str  # the threshold's source text
    aggregation: str
    ok: bool
    observed: float | None  # None when the metric had no samples (see `no_samples`)
    abort_on_fail: bool = False

    @property
    def key(self) -> str:
        return f"{self.metric}{{{self.submetric}}}" if self.submetric else self.metric

    @property
    def no_samples(self) -> bool:
        """The metric got no samples, so there was nothing to judge: passed as in k6,
        unless the set is `strict`. A counter that counted nothing is a real 0, not this."""
        return self.observed is None


@dataclass
class ThresholdSet:
    """All thresholds of a run, in the order the options list them. `strict`
    (--strict-thresholds): a threshold on a metric without samples fails."""

    entries: list[MetricThresholds] = field(default_factory=list)
    strict: bool = False

    def __len__(self) -> int:
        return sum(len(e.thresholds) for e in self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def metric_names(self) -> set[str]:
        return {e.metric for e in self.entries}

    def for_metric(self, name: str) -> list[MetricThresholds]:
        return [e for e in self.entries if e.metric == name]

    def validate(self, registry: Registry) -> None:
        """Check every threshold against the metrics the scenario declared.

        Call after the scenario module is imported: built-in and custom metrics are
        all registered by then, so an unknown name is a typo.
        """
        for entry in self.entries:
            metric = registry.get(entry.metric)
            if metric is None:
                known = ", ".join(sorted(registry.metrics))
                raise ThresholdError(
                    f"threshold on unknown metric {entry.metric!r} "
                    f"(key {entry.key!r}); known metrics: {known}"
                )
            allowed = AGGREGATIONS_BY_TYPE[metric.type]
            for th in entry.thresholds:
                if th.aggregation_kind not in allowed:
                    raise ThresholdError(
                        f"invalid threshold {th.source!r} on metric {entry.key!r}: "
                        f"{th.aggregation_kind!r} does not apply to a {metric.type} metric "
                        f"(use {', '.join(allowed)})"
                    )

    def evaluate(self, registry: Registry, elapsed_seconds: float) -> list[ThresholdResult]:
        """Every threshold's outcome now; empty metrics are evaluated as k6 does at the end."""
        return [
            result
            for entry in self.entries
            for result in _evaluate_entry(registry, entry, elapsed_seconds, skip_empty=False,
                                          strict=self.strict)
        ]

    def should_abort(self, registry: Registry, elapsed: float) -> ThresholdResult | None:
        """The first failing `abortOnFail` threshold past its `delayAbortEval`, if any.

        Metrics without samples yet are not judged (as k6 does while running).
        """
        for entry in self.entries:
            if not any(_abort_armed(th, elapsed) for th in entry.thresholds):
                continue
            for result, th in zip(
                _evaluate_entry(registry, entry, elapsed, skip_empty=True),
                entry.thresholds,
                strict=True,
            ):
                if not result.ok and _abort_armed(th, elapsed):
                    return result
        return None


def all_passed(results: Iterable[ThresholdResult]) -> bool:
    return all(r.ok for r in results)


# --- evaluation ----------------------------------------------------------------------


def _abort_armed(th: Threshold, elapsed: float) -> bool:
    return th.abort_on_fail and elapsed >= th.delay_abort_eval


def _evaluate_entry(
    registry: Registry, entry: MetricThresholds, elapsed: float, *, skip_empty: bool,
    strict: bool = False,
) -> list[ThresholdResult]:
    metric = registry.get(entry.metric)
    sink = metric.aggregate(entry.tag_filter) if metric is not None else None
    empty = sink is None or _is_empty(sink)
    results = []
    for th in entry.thresholds:
        observed = None if sink is None else observe(sink, th.aggregation, th.percentile,
                                                     elapsed)
        if skip_empty and empty:
            ok = True
        elif observed is None:
            # No samples: nothing to judge. k6 lets such a threshold pass; strict fails it.
            ok = metric is not None and not strict
        else:
            ok = th.passes(observed)
        results.append(
            ThresholdResult(
                metric=entry.metric, submetric=entry.submetric, tags=entry.tags,
                expression=th.source, aggregation=th.aggregation, ok=ok,
                observed=observed, abort_on_fail=th.abort_on_fail,
            )
        )
    return results


def _is_empty(sink: Sink) -> bool:
    if isinstance(sink, RateSink):
        return sink.total == 0
    return sink.count == 0


def observe(sink: Sink, aggregation: str, percentile: float | None,
            elapsed: float) -> float | None:
    """The value of `aggregation` over a sink; None when the sink has no samples (a
    trend, gauge or rate of nothing has no value: it is never shown or judged as 0)."""
    if isinstance(sink, TrendSink):
        if sink.count == 0:
            return None
        if percentile is not None:
            return sink.percentile(percentile)
        if aggregation == "med":  # a percentile walk: only when asked for
            return sink.med
        return {"avg": sink.avg, "min": sink.min, "max": sink.max}.get(aggregation)
    if isinstance(sink, CounterSink):
        if aggregation == "count":
            return sink.value
        if aggregation == "rate":
            return sink.value / elapsed if elapsed > 0 else 0.0
        return None
    if isinstance(sink, GaugeSink):
        return sink.value if aggregation == "value" and sink.count else None
    if isinstance(sink, RateSink) and aggregation == "rate" and sink.total:
        return sink.rate
    return None


# --- parsing -------------------------------------------------------------------------


def parse_thresholds(options_thresholds: Mapping[str, Any] | None) -> ThresholdSet:
    """Parse the `thresholds` option; raises ThresholdError naming the bad entry."""
    if not options_thresholds:
        return ThresholdSet()
    if not isinstance(options_thresholds, Mapping):
        raise ThresholdError(
            "thresholds: expected a mapping of metric name to a list of expressions, "
            f"got {type(options_thresholds).__name__}"
        )
    entries = []
    for key, raw in options_thresholds.items():
        if not isinstance(key, str):
            raise ThresholdError(f"thresholds: metric name must be a string, got {key!r}")
        metric, submetric, tags = parse_metric_key(key)
        items = [raw] if isinstance(raw, str | Mapping) else raw
        if not isinstance(items, list | tuple):
            raise ThresholdError(
                f"thresholds of {key!r}: expected a list of expressions, got {raw!r}"
            )
        parsed = tuple(_parse_item(item, key) for item in items)
        entries.append(MetricThresholds(metric, submetric, tags, parsed))
    return ThresholdSet(entries)


def parse_metric_key(key: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """`name{k:v,k2:"v 2"}` -> (name, 'k:v,k2:"v 2"', (("k","v"), ("k2","v 2")))."""
    text = key.strip()
    opening, closing = text.find("{"), text.rfind("}")
    if opening == -1 and closing == -1:
        name, suffix = text, ""
    elif opening == -1 or closing != len(text) - 1 or closing < opening:
        raise ThresholdError(
            f"invalid threshold metric {key!r}: expected 'metric' or 'metric{{tag:value,...}}'"
        )
    else:
        name, suffix = text[:opening].strip(), text[opening + 1 : closing].strip()
    if not METRIC_NAME.match(name):
        raise ThresholdError(f"invalid threshold metric {key!r}: bad metric name {name!r}")
    if opening != -1 and not suffix:
        raise ThresholdError(f"invalid threshold metric {key!r}: empty tag filter '{{}}'")
    tags: dict[str, str] = {}
    for part in suffix.split(",") if suffix else ():
        tag, sep, value = part.partition(":")
        tag, value = _unquote(tag), _unquote(value)
        if not sep or not tag or not value:
            raise ThresholdError(
                f"invalid threshold metric {key!r}: tag filter {part.strip()!r} "
                "is not 'tag:value'"
            )
        tags[tag] = value
    return name, suffix, tuple(tags.items())


def _unquote(text: str) -> str:
    return text.strip().strip("\"'")


def _parse_item(item: Any, key: str) -> Threshold:
    if isinstance(item, str):
        return parse_expression(item, key)
    if not isinstance(item, Mapping):
        raise ThresholdError(
            f"thresholds of {key!r}: expected an expression string or "
            f"{{'threshold': ..., 'abortOnFail': ...}}, got {item!r}"
        )
    config: dict[str, Any] = {}
    for k, v in item.items():
        name = _CONFIG_KEYS.get(k)
        if name is None:
            raise ThresholdError(
                f"thresholds of {key!r}: unknown setting {k!r} "
                "(use threshold, abortOnFail, delayAbortEval)"
            )
        config[name] = v
    source = config.get("threshold")
    if not isinstance(source, str):
        raise ThresholdError(f"thresholds of {key!r}: {item!r} has no 'threshold' string")
    abort = config.get("abort_on_fail", False)
    if not isinstance(abort, bool):
        raise ThresholdError(
            f"threshold {source!r} on {key!r}: abortOnFail must be true or false, got {abort!r}"
        )
    delay = _parse_delay(config.get("delay_abort_eval", 0), source, key)
    th = parse_expression(source, key)
    return Threshold(th.source, th.aggregation, th.percentile, th.op, th.limit, abort, delay)


def parse_expression(source: str, key: str = "") -> Threshold:
    """Parse `p(95) < 2000` and friends; `key` only makes the error message specific."""

    def bad(reason: str) -> ThresholdError:
        where = f" on metric {key!r}" if key else ""
        return ThresholdError(f"invalid threshold {source!r}{where}: {reason}")

    match = _OPERATOR_RE.search(source)
    if match is None:
        raise bad("missing comparison operator (<, <=, >, >=, ==, !=)")
    lhs, op, rhs = source[: match.start()].strip(), match.group(), source[match.end():].strip()
    percentile = None
    pm = PERCENTILE_RE.match(lhs)
    if pm is not None:
        percentile = float(pm.group(1))
        if not 0 <= percentile <= 100:
            raise bad(f"percentile {pm.group(1)} is not between 0 and 100")
        aggregation = f"p({pm.group(1)})"
    elif lhs in _PLAIN_AGGREGATIONS:
        aggregation = lhs
    else:
        raise bad(f"unknown aggregation {lhs!r} (use {_AGGREGATION_HELP})")
    if not _NUMBER_RE.match(rhs):
        raise bad(f"{rhs!r} is not a number")
    limit = float(rhs)
    if not math.isfinite(limit):
        raise bad(f"{rhs!r} is not a finite number")
    return Threshold(source, aggregation, percentile, op, limit)


def _parse_delay(value: Any, source: str, key: str) -> float:
    """delayAbortEval: "10s", "1m30s", "500ms", or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            pass
        else:
            if seconds >= 0:
                return seconds
    raise ThresholdError(
        f"threshold {source!r} on {key!r}: invalid delayAbortEval {value!r} "
        "(use e.g. \"10s\", \"1m30s\")"
    )

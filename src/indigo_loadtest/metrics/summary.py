"""The end-of-test summary, laid out like k6's.

    █ THRESHOLDS      each threshold with ✓/✗ and the value it was judged on
    █ TOTAL RESULTS   checks (totals, then ✓/✗ per check, nested by group) and the
                      metrics table grouped as CUSTOM, HTTP, EXECUTION, NETWORK

The helpers that pick what a metric reports (`sink_stats`, `summary_submetrics`,
`check_tree`) are shared with the `--summary-export` JSON so both always agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

from ..http.redact import mask_secrets
from .registry import Metric, Registry
from .sinks import CounterSink, GaugeSink, RateSink, Sink, TrendSink
from .thresholds import PERCENTILE_RE, ThresholdResult, observe

DEFAULT_TREND_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)")
DATA_METRICS = frozenset({"data_sent", "data_received"})  # byte counts, shown as kB/MB
EXPECTED_RESPONSE = "expected_response:true"
CHECKS = "checks"
GROUP_DURATION = "group_duration"
_SEP = "::"  # group path separator, as in k6 ("::outer::inner")

_EXECUTION = frozenset({
    "iteration_duration", "iterations", "vus", "vus_max", "dropped_iterations", GROUP_DURATION,
    "iteration_errors",
})
_SECTIONS = ("CUSTOM", "HTTP", "EXECUTION", "NETWORK", "GENERATOR")
GENERATOR_PREFIX = "generator_"  # the load generator's own health (engine/health.py)
_TREND_STATS_HINT = "use avg, min, med, max, count or p(N)"


# --- what each metric reports (shared with the summary export) -----------------------


def parse_trend_stats(stats: str | Iterable[str]) -> tuple[str, ...]:
    """Validate summaryTrendStats: a list such as ["avg", "p(99.9)"] (the option) or
    "avg,p(99.9)" (the command line); raises ValueError."""
    if isinstance(stats, str):
        stats = stats.split(",")
    elif not isinstance(stats, list | tuple):
        raise ValueError(f"expected a list of trend stats such as [\"avg\", \"p(95)\"], "
                         f"got {stats!r}")
    out = []
    for stat in stats:
        if not isinstance(stat, str):
            raise ValueError(f"invalid summary trend stat {stat!r} (expected a string)")
        text = stat.strip()
        m = PERCENTILE_RE.match(text)
        if text not in ("avg", "min", "med", "max", "count") and not (
            m and 0 <= float(m.group(1)) <= 100
        ):
            raise ValueError(f"invalid summary trend stat {stat!r} ({_TREND_STATS_HINT})")
        out.append(text)
    if not out:
        raise ValueError(f"no summary trend stats given ({_TREND_STATS_HINT})")
    return tuple(out)


def trend_stat(sink: TrendSink, stat: str) -> float | None:
    """One trend column; None (no samples) for all but `count` of an empty trend."""
    if stat == "count":
        return float(sink.count)
    m = PERCENTILE_RE.match(stat)
    return observe(sink, stat, float(m.group(1)) if m else None, 0.0)


def sink_stats(
    metric: Metric, sink: Sink, elapsed: float, trend_stats: Sequence[str] = DEFAULT_TREND_STATS
) -> dict[str, float | None]:
    """The statistics k6 reports for a metric of this type, by k6's key names. A value
    that does not exist because the metric got no samples is None, never 0 (counts
    and a counter's total are real zeros)."""
    if isinstance(sink, TrendSink):
        return {stat: trend_stat(sink, stat) for stat in trend_stats}
    if isinstance(sink, CounterSink):
        return {"count": sink.value, "rate": sink.value / elapsed if elapsed > 0 else 0.0}
    if isinstance(sink, GaugeSink):
        if not sink.count:
            return {"value": None, "min": None, "max": None}
        return {"value": sink.value, "min": sink.min, "max": sink.max}
    return {"passes": sink.trues, "fails": sink.falses,
            "value": sink.rate if sink.total else None}


def has_data(sink: Sink) -> bool:
    return (sink.total if isinstance(sink, RateSink) else sink.count) > 0


def summary_submetrics(
    metric: Metric, results: Iterable[ThresholdResult]
) -> list[tuple[str, dict[str, str]]]:
    """(suffix, tag filter) of the sub-metrics shown under a metric, in k6's order.

    k6 always shows `http_req_duration{expected_response:true}`, then every sub-metric
    that has a threshold.
    """
    subs: dict[str, dict[str, str]] = {}
    if metric.name == "http_req_duration":
        subs[EXPECTED_RESPONSE] = {"expected_response": "true"}
    for r in results:
        if r.metric == metric.name and r.submetric and r.submetric not in subs:
            subs[r.submetric] = dict(r.tags)
    return list(subs.items())


def reported_metrics(registry: Registry, results: Sequence[ThresholdResult]) -> list[Metric]:
    """Metrics that got samples or have thresholds, sorted by name."""
    with_thresholds = {r.metric for r in results}
    return sorted(
        (m for m in registry if m.name in with_thresholds or any(map(has_data, m.sinks.values()))),
        key=lambda m: m.name,
    )


@dataclass
class CheckStat:
    name: str
    path: str
    passes: int = 0
    fails: int = 0


@dataclass
class GroupNode:
    name: str
    path: str
    groups: dict[str, GroupNode] = field(default_factory=dict)
    checks: dict[str, CheckStat] = field(default_factory=dict)

    def child(self, name: str) -> GroupNode:
        node = self.groups.get(name)
        if node is None:
            node = self.groups[name] = GroupNode(name, f"{self.path}{_SEP}{name}")
        return node

    def find(self, group_path: str | None) -> GroupNode:
        node = self
        for name in (group_path or "").split(_SEP)[1:]:
            node = node.child(name)
        return node


def check_tree(registry: Registry) -> GroupNode:
    """Checks nested by group, in the order they first ran (k6's root_group); names
    and paths masked (a name may hold a secret the run knows), ids made of them so."""
    root = GroupNode("", "")
    durations = registry.get(GROUP_DURATION)
    for ts in durations.sinks if durations is not None else ():
        root.find(mask_secrets(ts.get("group") or ""))
    checks = registry.get(CHECKS)
    for ts, sink in checks.sinks.items() if checks is not None else ():
        name = ts.get("check")
        if name is None or not isinstance(sink, RateSink):
            continue
        name = mask_secrets(name)
        node = root.find(mask_secrets(ts.get("group") or ""))
        stat = node.checks.get(name)
        if stat is None:
            stat = node.checks[name] = CheckStat(name, f"{node.path}{_SEP}{name}")
        stat.passes += sink.trues
        stat.fails += sink.falses
    return root


# --- value formatting (as k6's summary does it) --------------------------------------


def fixed_no_trailing_zeros(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def humanize_duration(ms: float) -> str:
    """12.5 -> '12.5ms', 0.34 -> '340µs', 62000 -> '1m2s' (k6's generic duration)."""
    if ms == 0:
        return "0s"
    if ms < 0:
        return "-" + humanize_duration(-ms)
    if ms < 0.001:
        return f"{math.trunc(ms * 1e6)}ns"
    if ms < 1:
        return fixed_no_trailing_zeros(ms * 1000, 2) + "µs"
    if ms < 1000:
        return fixed_no_trailing_zeros(ms, 2) + "ms"
    text = fixed_no_trailing_zeros((ms % 60000) / 1000, 0 if ms > 60000 else 2) + "s"
    minutes = math.trunc(ms / 60000)
    if minutes < 1:
        return text
    text = f"{minutes % 60}m{text}"
    hours = math.trunc(minutes / 60)
    return f"{hours}h{text}" if hours >= 1 else text


def humanize_bytes(count: float) -> str:
    if count < 10:
        return f"{fixed_no_trailing_zeros(count, 6)} B"
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    exp = min(math.floor(math.log(count) / math.log(1000)), len(units) - 1)
    value = math.floor(count / 1000**exp * 10 + 0.5) / 10
    return f"{value:.{1 if value < 10 else 0}f} {units[exp]}"


def percent(rate: float) -> str:
    # k6 truncates rather than rounds, so 99.999% never shows as 100.00%.
    return f"{math.trunc(rate * 100 * 100) / 100:.2f}%"


def humanize(metric: Metric, value: float) -> str:
    if metric.type == "rate":
        return percent(value)
    if metric.name in DATA_METRICS:
        return humanize_bytes(value)
    if metric.is_time:
        return in_time_unit(value)
    return fixed_no_trailing_zeros(value, 6)


# --summary-time-unit (k6's summaryTimeUnit): every time in one unit; None: humanized.
time_unit: ContextVar[str | None] = ContextVar("summary_time_unit", default=None)
_TIME_UNITS = {"s": (0.001, 4), "ms": (1.0, 2), "us": (1000.0, 0)}  # per ms; digits


def in_time_unit(ms: float, unit: str | None = None) -> str:
    unit = unit or time_unit.get()
    if unit is None:
        return humanize_duration(ms)
    factor, digits = _TIME_UNITS[unit]
    return fixed_no_trailing_zeros(ms * factor, digits) + unit


def _per_second(metric: Metric, rate: float) -> str:
    if metric.name in DATA_METRICS:
        return humanize_bytes(rate) + "/s"
    return fixed_no_trailing_zeros(rate, 6) + "/s"


NO_SAMPLES = "no samples"


def metric_cells(metric: Metric, values: dict[str, float | None]) -> list[str]:
    """The value columns of one metric row ("no samples" rather than made-up zeros)."""
    if any(v is None for v in values.values()):
        return [NO_SAMPLES]
    stats = cast(dict[str, float], values)
    if metric.type == "trend":
        return [
            f"{k}={fixed_no_trailing_zeros(v, 6) if k == 'count' else humanize(metric, v)}"
            for k, v in stats.items()
        ]
    if metric.type == "counter":
        return [humanize(metric, stats["count"]), _per_second(metric, stats["rate"])]
    if metric.type == "gauge":
        return [humanize(metric, stats["value"]), f"min={humanize(metric, stats['min'])}",
                f"max={humanize(metric, stats['max'])}"]
    passes, fails = int(stats["passes"]), int(stats["fails"])
    return [percent(stats["value"]), f"{passes} out of {passes + fails}"]


def threshold_observed(metric: Metric | None, result: ThresholdResult) -> str:
    """'p(95)=10.05ms', 'rate=75.00%', 'rate=12.5/s' for a threshold line."""
    value = result.observed
    if value is None:
        return f"{result.aggregation}=n/a ({NO_SAMPLES})"
    if metric is None:
        return f"{result.aggregation}={fixed_no_trailing_zeros(value, 6)}"
    if metric.type == "counter" and result.aggregation == "rate":
        return f"rate={_per_second(metric, value)}"
    return f"{result.aggregation}={humanize(metric, value)}"


# --- rendering -----------------------------------------------------------------------


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def ok(self, text: str) -> str:
        return self._wrap("32", text)

    def bad(self, text: str) -> str:
        return self._wrap("31", text)

    def value(self, text: str) -> str:
        return self._wrap("36", text)

    def faint(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def mark(self, ok: bool) -> str:
        return self.ok("✓") if ok else self.bad("✗")

    def unknown(self, text: str) -> str:
        return self._wrap("33", text)


def render_summary(
    registry: Registry,
    results: Sequence[ThresholdResult],
    run_info: Any,
    elapsed: float,
    *,
    summary_trend_stats: Sequence[str] = DEFAULT_TREND_STATS,
    color: bool = False,
    summary_time_unit: str | None = None,
) -> str:
    """The end-of-test summary text. `run_info` (anything with `test_case`) names the run."""
    token = time_unit.set(summary_time_unit)
    try:
        return _render_summary(registry, results, run_info, elapsed,
                               tuple(summary_trend_stats), color)
    finally:
        time_unit.reset(token)


def _render_summary(registry: Registry, results: Sequence[ThresholdResult], run_info: Any,
                    elapsed: float, summary_trend_stats: tuple[str, ...], color: bool) -> str:
    style = _Style(color)
    out: list[str] = [""]
    test_case = getattr(run_info, "test_case", "") if run_info is not None else ""
    if results:
        out += _section(style, "THRESHOLDS")
        out += _threshold_lines(registry, results, style)
    title = f"TOTAL RESULTS: {test_case}" if test_case else "TOTAL RESULTS"
    out += _section(style, title)
    out += _checks_lines(registry, elapsed, style)
    out += _metrics_lines(registry, results, elapsed, tuple(summary_trend_stats), style)
    out.append("")
    return "\n".join(out)


def _section(style: _Style, title: str) -> list[str]:
    return ["", style.bold(f"  █ {title}"), ""]


def _threshold_lines(
    registry: Registry, results: Sequence[ThresholdResult], style: _Style
) -> list[str]:
    by_metric: dict[str, list[ThresholdResult]] = {}
    for r in results:
        by_metric.setdefault(r.metric, []).append(r)
    lines: list[str] = []
    for name in sorted(by_metric):
        metric = registry.get(name)
        group = by_metric[name]
        whole = [r for r in group if not r.submetric]
        if whole:
            lines.append(f"    {name}")
            lines += [_threshold_line(metric, r, style, "    ") for r in whole]
            lines.append("")
        subs: dict[str, list[ThresholdResult]] = {}
        for r in group:
            if r.submetric:
                subs.setdefault(r.submetric, []).append(r)
        for suffix, sub in subs.items():
            # Under its metric's heading when that has one, else on its own like k6.
            indent = "      " if whole else "    "
            lines.append(f"{indent}{{{suffix}}}" if whole else f"{indent}{name}{{{suffix}}}")
            lines += [_threshold_line(metric, r, style, indent) for r in sub]
            lines.append("")
    return lines


def _threshold_line(metric: Metric | None, r: ThresholdResult, style: _Style,
                    indent: str) -> str:
    observed = style.value(threshold_observed(metric, r))
    # Passed for want of samples: neither a ✓ nor a ✗ (a ✗ under --strict-thresholds).
    mark = style.unknown("?") if r.no_samples and r.ok else style.mark(r.ok)
    return f"{indent}{mark} '{r.expression}' {observed}"


def _checks_lines(registry: Registry, elapsed: float, style: _Style) -> list[str]:
    checks = registry.get(CHECKS)
    if checks is None:
        return []
    total = checks.aggregate()
    if not isinstance(total, RateSink) or total.total == 0:
        return []
    n = total.total
    rows = [
        ("checks_total", [str(n), fixed_no_trailing_zeros(n / elapsed if elapsed > 0 else 0, 6)
                          + "/s"]),
        ("checks_succeeded", [percent(total.trues / n), f"{total.trues} out of {n}"]),
        ("checks_failed", [percent(total.falses / n), f"{total.falses} out of {n}"]),
    ]
    lines = _table(rows, style, name_width=35)
    lines.append("")
    lines += _check_group_lines(check_tree(registry), style, "    ")
    lines.append("")
    return lines


def _check_group_lines(node: GroupNode, style: _Style, indent: str) -> list[str]:
    lines = []
    for check in node.checks.values():
        ok = check.fails == 0
        lines.append(f"{indent}{style.mark(ok)} {check.name}")
        if not ok:
            total = check.passes + check.fails
            pct = math.floor(check.passes * 100 / total)
            lines.append(
                f"{indent}  {style.bad(f'↳  {pct}% — ✓ {check.passes} / ✗ {check.fails}')}"
            )
    for child in node.groups.values():
        inner = _check_group_lines(child, style, indent + "  ")
        if inner:
            lines += ["", f"{indent}█ {child.name}", "", *inner]
    return lines


def _category(name: str) -> str:
    if name.startswith("http_"):
        return "HTTP"
    if name in _EXECUTION:
        return "EXECUTION"
    if name in DATA_METRICS:
        return "NETWORK"
    if name.startswith(GENERATOR_PREFIX):
        return "GENERATOR"
    return "CUSTOM"


def _metrics_lines(
    registry: Registry,
    results: Sequence[ThresholdResult],
    elapsed: float,
    trend_stats: tuple[str, ...],
    style: _Style,
) -> list[str]:
    sections: dict[str, list[tuple[str, list[str]]]] = {s: [] for s in _SECTIONS}
    for metric in reported_metrics(registry, results):
        if metric.name == CHECKS:
            continue  # shown as checks_total / succeeded / failed above
        rows = sections[_category(metric.name)]
        rows.append((metric.name, metric_cells(
            metric, sink_stats(metric, metric.aggregate(), elapsed, trend_stats))))
        for _suffix, tags in summary_submetrics(metric, results):
            label = "  { " + ", ".join(f"{k}:{v}" for k, v in tags.items()) + " }"
            stats = sink_stats(metric, metric.aggregate(tags), elapsed, trend_stats)
            rows.append((label, metric_cells(metric, stats)))
    all_rows = [row for rows in sections.values() for row in rows]
    width = max((len(name) for name, _ in all_rows), default=0) + 3
    widths = _column_widths(all_rows)
    lines: list[str] = []
    for title, rows in sections.items():
        if rows:
            lines.append(f"    {title}")
            lines += _table(rows, style, name_width=width, widths=widths)
            lines.append("")
    return lines


def _column_widths(rows: list[tuple[str, list[str]]]) -> dict[tuple[bool, int], int]:
    """Per (is trend row, column) width, so columns line up as in k6."""
    widths: dict[tuple[bool, int], int] = {}
    for _, cells in rows:
        trend = "=" in cells[0]
        for i, cell in enumerate(cells):
            key = (trend, i)
            widths[key] = max(widths.get(key, 0), len(cell))
    return widths


def _table(
    rows: list[tuple[str, list[str]]],
    style: _Style,
    *,
    name_width: int,
    widths: dict[tuple[bool, int], int] | None = None,
) -> list[str]:
    widths = widths if widths is not None else _column_widths(rows)
    lines = []
    for name, cells in rows:
        trend = "=" in cells[0]
        padded = [
            cell.ljust(widths[(trend, i)]) if i < len(cells) - 1 else cell
            for i, cell in enumerate(cells)
        ]
        dots = style.faint("." * max(name_width - len(name), 3) + ":")
        lines.append(f"    {name}{dots} {style.value(' '.join(padded))}")
    return lines

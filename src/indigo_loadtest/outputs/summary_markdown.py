"""`--summary-markdown FILE`: the verdict as markdown, for a CI job summary.

Made to be appended to GitHub's `$GITHUB_STEP_SUMMARY` (or pasted in a pull request):
one table of the thresholds (✓ / ✗ / no samples, with the observed value) and one of the
key metrics (requests, failure rate, `http_req_duration` p95, checks, and the LLM
TTFT/TPOT p95 when the run has them). A metric without samples says so, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..http.redact import mask_secrets
from ..metrics.registry import Metric, Registry
from ..metrics.summary import (
    NO_SAMPLES,
    humanize,
    humanize_duration,
    percent,
    sink_stats,
    threshold_observed,
    trend_stat,
)
from ..metrics.thresholds import ThresholdResult

# (label, metric, statistic); LLM rows only when the metric exists in the run.
KEY_METRICS: tuple[tuple[str, str, str], ...] = (
    ("requests", "http_reqs", "count"),
    ("request rate", "http_reqs", "rate"),
    ("failed requests", "http_req_failed", "value"),
    ("request duration p(95)", "http_req_duration", "p(95)"),
    ("checks passed", "checks", "value"),
    ("iterations", "iterations", "count"),
    ("LLM time to first token p(95)", "llm_ttft_ms", "p(95)"),
    ("LLM time per output token p(95)", "llm_tpot_ms", "p(95)"),
)
OPTIONAL = {"iterations", "llm_ttft_ms", "llm_tpot_ms"}


def build_summary_markdown(
    registry: Registry, results: Sequence[ThresholdResult], elapsed: float, *, title: str,
    verdict: str, passed: bool,
) -> str:
    """`verdict`: the run's (`run.outcome.verdict_text`), which the thresholds alone do not
    give (a run that measured nothing, or was interrupted, fails with all of them ✓)."""
    mark = "✓" if passed else "✗"
    lines = [f"### {_cell(title)}", "", f"**{mark} {_cell(verdict)}**", "",
             _thresholds_line(results), ""]
    if results:
        lines += ["| threshold | | observed |", "| --- | --- | --- |"]
        lines += [_threshold_row(registry, r) for r in results]
        lines.append("")
    lines += ["| metric | value |", "| --- | --- |"]
    for label, name, stat in KEY_METRICS:
        metric = registry.get(name)
        if metric is None and name in OPTIONAL:
            continue
        lines.append(f"| {label} | {_metric_value(metric, stat, elapsed)} |")
    lines.append(f"| duration | {humanize_duration(elapsed * 1000)} |")
    return "\n".join(lines) + "\n"


def write_summary_markdown(
    path: str | Path, registry: Registry, results: Sequence[ThresholdResult], elapsed: float,
    *, title: str, verdict: str, passed: bool,
) -> Path:
    """Write it atomically: a CI step that appends it never reads half a file."""
    from ..report.record import write_atomically

    text = build_summary_markdown(registry, results, elapsed, title=title, verdict=verdict,
                                  passed=passed)
    return write_atomically(Path(path), mask_secrets(text).encode("utf-8"))


def _thresholds_line(results: Sequence[ThresholdResult]) -> str:
    if not results:
        return "No thresholds."
    crossed = sum(not r.ok for r in results)
    if crossed:
        return f"{crossed} of {len(results)} thresholds failed."
    empty = sum(r.no_samples for r in results)
    unjudged = f" ({empty} without samples, not evaluated)" if empty else ""
    return f"All {len(results)} thresholds passed{unjudged}."


def _threshold_row(registry: Registry, r: ThresholdResult) -> str:
    mark = "✗" if not r.ok else (NO_SAMPLES if r.no_samples else "✓")
    observed = threshold_observed(registry.get(r.metric), r)
    return f"| `{_cell(r.key)}` `{_cell(r.expression)}` | {mark} | {_cell(observed)} |"


def _metric_value(metric: Metric | None, stat: str, elapsed: float) -> str:
    if metric is None:
        return NO_SAMPLES
    sink = metric.aggregate(None)
    value = (trend_stat(sink, stat) if metric.type == "trend"  # type: ignore[arg-type]
             else sink_stats(metric, sink, elapsed).get(stat))
    if value is None:
        return NO_SAMPLES
    if metric.type == "rate":
        return percent(value)
    if metric.type == "counter":
        return f"{value:.2f}/s" if stat == "rate" else str(int(value))
    return humanize(metric, value)


def _cell(text: str) -> str:
    # A `|` would end the table cell; backticks would end the code span.
    return text.replace("|", "\\|").replace("`", "'")

"""`--summary-export FILE`: the end-of-test aggregates in k6's `--summary-export` layout.

    {"root_group": {"name": "", "path": "", "id": md5(path), "groups": {...},
                    "checks": {name: {"name", "path", "id", "passes", "fails"}}},
     "metrics": {"http_req_duration": {"avg", "min", "med", "max", "p(90)", "p(95)",
                                       "thresholds": {"p(95)<500": false}}, ...}}

As in k6, a threshold's value is true when the threshold FAILED (k6 names the flag
"ok" internally but writes whether it was crossed).

A statistic that does not exist because the metric got no samples (a trend's avg or
p(95), a gauge's value, a rate's value) is null, never 0; the keys stay k6's.

A run adds `"indigo_verdict": {"exit_code", "passed", "text", "errors": [...]}`
(`VERDICT_KEY`), so the export alone tells a degraded run from a passed one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..http.redact import mask_strings
from ..metrics.registry import Metric, Registry
from ..metrics.summary import (
    DEFAULT_TREND_STATS,
    GroupNode,
    check_tree,
    reported_metrics,
    sink_stats,
    summary_submetrics,
)
from ..metrics.thresholds import ThresholdResult

# The run's verdict (exit code, reasons): a key k6's layout does not have, which k6
# tooling reading `root_group` and `metrics` ignores.
VERDICT_KEY = "indigo_verdict"


def build_summary_export(
    registry: Registry,
    results: Sequence[ThresholdResult],
    elapsed: float,
    *,
    summary_trend_stats: Sequence[str] = DEFAULT_TREND_STATS,
) -> dict[str, Any]:
    """The export as a dict (JSON-ready), every string masked as in the run record (a
    check or group name may hold a secret the run knows)."""
    metrics: dict[str, dict[str, Any]] = {}
    for metric in reported_metrics(registry, results):
        metrics[metric.name] = _stats(metric, None, elapsed, summary_trend_stats)
        for suffix, tags in summary_submetrics(metric, results):
            metrics[f"{metric.name}{{{suffix}}}"] = _stats(
                metric, tags, elapsed, summary_trend_stats
            )
    for r in results:
        entry = metrics.get(r.key)
        if entry is not None:
            entry.setdefault("thresholds", {})[r.expression] = not r.ok
    return mask_strings({"root_group": _group(check_tree(registry)), "metrics": metrics})


def write_summary_export(
    path: str | Path,
    registry: Registry,
    results: Sequence[ThresholdResult],
    elapsed: float,
    *,
    summary_trend_stats: Sequence[str] = DEFAULT_TREND_STATS,
    verdict: dict[str, Any] | None = None,
) -> Path:
    """Write the export (atomically: a reader never sees half a file), with the run's
    `verdict` under a top-level key of its own when given."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = build_summary_export(
        registry, results, elapsed, summary_trend_stats=summary_trend_stats
    )
    if verdict is not None:
        data[VERDICT_KEY] = verdict
    text = json.dumps(data, indent=4, ensure_ascii=False) + "\n"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # on disk before it takes the final name
        tmp.replace(target)
    except BaseException:  # a full disk, or a signal: no half-written temp file left
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return target


def _stats(
    metric: Metric, tags: dict[str, str] | None, elapsed: float, trend_stats: Sequence[str]
) -> dict[str, Any]:
    stats = sink_stats(metric, metric.aggregate(tags), elapsed, trend_stats)
    return {k: _plain(v) for k, v in stats.items()}


def _plain(value: float | None) -> float | int | None:
    # k6 (Go) writes whole numbers without ".0": counts stay integers. None: no samples.
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _group(node: GroupNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "path": node.path,
        "id": _md5(node.path),
        "groups": {name: _group(child) for name, child in node.groups.items()},
        "checks": {
            name: {
                "name": c.name, "path": c.path, "id": _md5(c.path),
                "passes": c.passes, "fails": c.fails,
            }
            for name, c in node.checks.items()
        },
    }

"""`--summary-mode full`: one row per endpoint, as Locust shows them.

The rows are the HTML report's (`report.record.endpoints`: one per method and `name`
tag of http_req_duration), with the failure count and the request rate added.
"""

from __future__ import annotations

from typing import Any

from .registry import Registry
from .sinks import RateSink
from .summary import NO_SAMPLES, fixed_no_trailing_zeros, in_time_unit

HEADER = ("name", "method", "reqs", "fails", "med", "p(95)", "p(99)", "req/s")


def endpoint_rows(registry: Registry, elapsed: float) -> list[dict[str, Any]]:
    """The report's endpoint rows plus `failures` (a count) and `rate` (req/s)."""
    from ..report.record import endpoints

    failed = registry.get("http_req_failed")
    rows = []
    for row in endpoints(registry):
        sink = failed.aggregate({"method": row["method"], "name": row["name"]}) \
            if failed is not None else None
        failures = sink.trues if isinstance(sink, RateSink) and sink.total else None
        rate = row["count"] / elapsed if elapsed > 0 else None
        rows.append({**row, "failures": failures, "rate": rate})
    return rows


def _time(value: float | None, unit: str | None) -> str:
    return NO_SAMPLES if value is None else in_time_unit(value, unit)


def endpoint_lines(registry: Registry, elapsed: float, time_unit: str | None = None) -> list[str]:
    """The ENDPOINTS section of the summary (empty when no request was sent)."""
    rows = endpoint_rows(registry, elapsed)
    if not rows:
        return []
    cells = [HEADER] + [(
        r["name"], r["method"], str(r["count"]),
        "-" if r["failures"] is None else str(r["failures"]),
        _time(r["p50"], time_unit), _time(r["p95"], time_unit), _time(r["p99"], time_unit),
        "-" if r["rate"] is None else fixed_no_trailing_zeros(r["rate"], 2),
    ) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = ["", "  █ ENDPOINTS", ""]
    for row in cells:
        # The name left-aligned, the numbers right-aligned.
        text = "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        lines.append(f"    {text}")
    return lines

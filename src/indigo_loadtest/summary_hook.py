"""`handleSummary(data)` in a scenario, as in k6.

It receives the summary data in k6's layout, so a k6 script's hook reads it unchanged:

    {"metrics": {name: {"type": "trend", "contains": "time", "values": {"avg": ...},
                        "thresholds": {"p(95)<500": {"ok": true}}}},
     "root_group": {"name", "path", "id", "groups": [...],
                    "checks": [{"name", "path", "id", "passes", "fails"}]},
     "options": {"summaryTrendStats", "summaryTimeUnit", "noColor"},
     "state": {"isStdOutTTY", "isStdErrTTY", "testRunDurationMs"},
     "endpoints": [...]}   # ours: the `--summary-mode full` rows

and returns a mapping of destination → content: "stdout", "stderr" or a file path; the
content is text, bytes, or anything JSON can encode. When the scenario defines it, its
result replaces the summary printed on stdout. A hook that raises or returns something
else fails the run with one line, and the default summary is printed instead (as k6 does).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .engine.errors import ExitCalled
from .http.redact import mask_secrets
from .metrics.registry import Metric, Registry
from .metrics.summary import DATA_METRICS
from .scenario.errors import ExitCode

HOOK_NAMES = ("handleSummary", "handle_summary")


class SummaryHookError(Exception):
    """handleSummary() failed; the message is one line."""

    def __init__(self, message: str, exit_code: int = ExitCode.SCRIPT_EXCEPTION) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def find_hook(module: Any) -> Callable[[dict[str, Any]], Any] | None:
    for name in HOOK_NAMES:
        hook = getattr(module, name, None)
        if callable(hook):
            return hook
    return None


def summary_data(export: dict[str, Any], registry: Registry, elapsed: float, *,
                 trend_stats: tuple[str, ...], time_unit: str | None, color: bool,
                 endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """k6's handleSummary data from the `--summary-export` structure `export`."""
    return {
        "root_group": _k6_group(export["root_group"]),
        "options": {"summaryTrendStats": list(trend_stats), "summaryTimeUnit": time_unit or "",
                    "noColor": not color},
        "state": {"isStdOutTTY": _isatty(sys.stdout), "isStdErrTTY": _isatty(sys.stderr),
                  "testRunDurationMs": elapsed * 1000.0},
        "metrics": {name: _k6_metric(registry, name, entry)
                    for name, entry in export["metrics"].items()},
        "endpoints": endpoints,
    }


def _k6_metric(registry: Registry, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """{type, contains, values[, thresholds]}: a sub-metric (`name{tag:value}`) has its
    parent's type; a rate's `value` is k6's `rate`; a threshold is `{"ok": passed}`."""
    metric = registry.get(name.split("{", 1)[0])
    kind = metric.type if metric is not None else "counter"
    values = {("rate" if kind == "rate" and key == "value" else key): value
              for key, value in entry.items() if key != "thresholds"}
    out: dict[str, Any] = {"type": kind, "contains": _contains(metric), "values": values}
    if "thresholds" in entry:  # the export says whether each was crossed
        out["thresholds"] = {expr: {"ok": not crossed}
                             for expr, crossed in entry["thresholds"].items()}
    return out


def _contains(metric: Metric | None) -> str:
    if metric is not None and metric.name in DATA_METRICS:
        return "data"
    return "time" if metric is not None and metric.is_time else "default"


def _k6_group(group: dict[str, Any]) -> dict[str, Any]:
    """The export's group (groups and checks keyed by name) with k6's lists."""
    return {**group, "groups": [_k6_group(g) for g in group["groups"].values()],
            "checks": list(group["checks"].values())}


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed
        return False


def call_hook(hook: Callable[[dict[str, Any]], Any], data: dict[str, Any]) -> Mapping[str, Any]:
    """The hook's mapping; an `async def` hook runs on a loop of its own (the summary
    is written from synchronous code, also after the run's loop is gone)."""
    try:
        result = hook(data)
        if inspect.isawaitable(result):
            with ThreadPoolExecutor(1) as pool:
                result = pool.submit(asyncio.run, _awaited(result)).result()
    except Exception as exc:
        raise SummaryHookError(f"handleSummary() failed: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    except SystemExit as exc:  # would end the tool before the results are written
        raise SummaryHookError(f"handleSummary() failed: {ExitCalled(exc.code)}") from None
    if not isinstance(result, Mapping):
        raise SummaryHookError("handleSummary() must return a mapping of destination "
                               f"(\"stdout\", \"stderr\" or a file path) to content, "
                               f"not {type(result).__name__}")
    return result


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _text(destination: str, content: Any) -> str:
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    if isinstance(content, str):
        return content
    try:
        return json.dumps(content, indent=2, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise SummaryHookError(f"handleSummary(): the content for {destination!r} is "
                               f"neither text nor JSON-encodable: {exc}") from None


def write_results(result: Mapping[str, Any], stdout: Any, stderr: Any) -> list[str]:
    """Write every destination (masked, as everything the run writes); returns the
    files written. All contents are checked before anything is written."""
    texts = {str(dest): mask_secrets(_text(str(dest), content))
             for dest, content in result.items()}
    written = []
    for dest, text in texts.items():
        if dest in ("stdout", "stderr"):
            stream = stdout if dest == "stdout" else stderr
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()
            continue
        path = Path(dest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise SummaryHookError(f"handleSummary(): cannot write {dest}: "
                                   f"{exc.strerror or exc}", ExitCode.OUTPUT_FAILED) from None
        written.append(dest)
    return written

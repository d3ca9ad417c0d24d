"""`handleSummary(data)` in a scenario, as in k6.

It receives the summary data (the `--summary-export` structure: `metrics`, `root_group`,
plus `state`, `options` and the per-endpoint rows) and returns a mapping of destination
→ content: "stdout", "stderr" or a file path; the content is text, bytes, or anything
JSON can encode. When the scenario defines it, its result replaces the summary printed on
stdout. A hook that raises or returns something else fails the run with one line.
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


def summary_data(export: dict[str, Any], elapsed: float, *, trend_stats: tuple[str, ...],
                 time_unit: str | None, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **export,
        "state": {"testRunDurationMs": elapsed * 1000.0, "isStdOutTTY": sys.stdout.isatty()},
        "options": {"summaryTrendStats": list(trend_stats), "summaryTimeUnit": time_unit},
        "endpoints": endpoints,
    }


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

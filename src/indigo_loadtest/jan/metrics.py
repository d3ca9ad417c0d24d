"""The metrics of one Jan scenario, declared when the scenario module is imported.

Declaring them up front binds them to the run's registry and lets thresholds name
them; the names are the original scripts' (its Grafana dashboard reads them).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..llm.stream_metrics import LLMMetrics
from ..metrics.registry import Counter, Trend

LOGIN_TREND = "guest_login_time_ms"
REFRESH_TREND = "refresh_token_time_ms"


class FlowMetrics:
    """Step-duration Trends, the `<prefix>_successes`/`<prefix>_errors` Counters, llm_*."""

    def __init__(self, prefix: str, trends: Iterable[str] = ()) -> None:
        names = dict.fromkeys((LOGIN_TREND, REFRESH_TREND, *trends))
        self.trends = {name: Trend(name, time=True) for name in names}
        self.successes = Counter(f"{prefix}_successes")
        self.errors = Counter(f"{prefix}_errors")
        self.llm = LLMMetrics()

    def time(self, trend: str, started: float) -> float:
        """Record the milliseconds since `started` (a perf_counter) into `trend`."""
        ms = (time.perf_counter() - started) * 1000.0
        metric = self.trends.get(trend)
        if metric is None:  # a step the scenario did not declare: no threshold, still kept
            metric = self.trends[trend] = Trend(trend, time=True)
        metric.add(ms)
        return ms

    def outcome(self, ok: bool) -> bool:
        (self.successes if ok else self.errors).add(1)
        return ok

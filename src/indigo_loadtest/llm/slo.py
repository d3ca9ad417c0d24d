"""Service-level objectives of a benchmark: `ttft:p99<500ms,tpot:p99<50ms,e2el:p95<10s`
(or vLLM's `ttft:500`: at most 500 ms).

Each objective is a metric (ttft, tpot, itl, e2el), an optional percentile and a bound.
Two uses, as in vLLM's `bench serve --goodput` and its SLA sweep:
- per request (goodput): a request is *good* when it succeeded and its own TTFT, TPOT and
  E2EL are within every bound (ITL has no single per-request value, so it is judged only
  per point);
- per point: the percentile (p99 when none is given) of the point's distribution is
  within the bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..scenario.errors import ExitCode, ScenarioError
from .stream_metrics import ITL, TOTAL, TPOT, TTFT

SLO_METRICS = {"ttft": TTFT, "tpot": TPOT, "itl": ITL, "e2el": TOTAL}
PER_REQUEST = ("ttft", "tpot", "e2el")
_SLO = re.compile(r"^\s*(ttft|tpot|itl|e2el)\s*:\s*(?:p(\d+(?:\.\d+)?)\s*)?(<=|<)?\s*"
                  r"(\d+(?:\.\d+)?)\s*(ms|s)?\s*$", re.IGNORECASE)
DEFAULT_PERCENTILE = 99.0


@dataclass(frozen=True)
class Objective:
    metric: str  # ttft | tpot | itl | e2el
    percentile: float  # for the per-point judgement
    bound_ms: float
    inclusive: bool  # <= rather than <
    text: str

    def holds(self, value: float | None) -> bool:
        if value is None:
            return True  # e.g. TPOT of a one-token answer: nothing to exceed
        return value <= self.bound_ms if self.inclusive else value < self.bound_ms

    @property
    def metric_name(self) -> str:
        return SLO_METRICS[self.metric]


def parse_slos(text: str | None) -> list[Objective]:
    if not text:
        return []
    objectives = []
    for part in text.split(","):
        m = _SLO.match(part)
        if not m:
            raise ScenarioError(
                f"--slo {part.strip()!r}: expected METRIC:[pNN]<VALUE[ms|s] with METRIC one "
                "of ttft, tpot, itl, e2el (e.g. ttft:p99<500ms)", ExitCode.USAGE)
        metric, pct, op, value, unit = m.groups()
        percentile = float(pct) if pct else DEFAULT_PERCENTILE
        if not 0 < percentile <= 100:
            raise ScenarioError(f"--slo {part.strip()!r}: percentile must be in (0, 100]",
                                ExitCode.USAGE)
        bound = float(value) * (1000.0 if (unit or "ms").lower() == "s" else 1.0)
        # `ttft:500`, vLLM's --goodput form, means at most 500 ms
        objectives.append(Objective(metric.lower(), percentile, bound, op != "<",
                                    part.strip()))
    return objectives


def request_meets(objectives: list[Objective], values: Mapping[str, float | None]) -> bool:
    """Goodput: every per-request objective holds for this request's own values."""
    return all(o.holds(values.get(o.metric)) for o in objectives if o.metric in PER_REQUEST)


def point_verdicts(objectives: list[Objective],
                   percentiles: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each objective judged on a point's distributions: {slo, value, ok}.
    `percentiles[metric]` maps "p<NN>" to a value, None when nothing was measured (which
    fails: an objective with no samples is not met)."""
    verdicts = []
    for o in objectives:
        value = percentiles.get(o.metric, {}).get(f"p{o.percentile:g}")
        verdicts.append({"slo": o.text, "value": value,
                         "ok": value is not None and o.holds(value)})
    return verdicts

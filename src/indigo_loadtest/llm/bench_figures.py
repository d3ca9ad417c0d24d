"""A `bench` point's figures, read from its run's registry (vLLM bench serve's, see
docs/benchmark.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..metrics.exact import exact_values, percentile
from ..metrics.registry import Registry
from .bench_answers import support
from .bench_failures import failure_breakdown
from .benchmark import (
    GOOD_REQUESTS,
    OK_TAG,
    PHASE_TAG,
    PROMPT_TOKENS,
    REQUEST_FAILED,
    SCHEDULE_DELAY,
    STEADY,
    WINDOW,
    BenchSpec,
)
from .slo import SLO_METRICS, Objective, point_verdicts
from .stream_metrics import OUTPUT_TOKENS, TOTAL

PERCENTILES = (50.0, 90.0, 99.0)


def steady_phase(spec: BenchSpec) -> dict[str, str]:
    return {PHASE_TAG: STEADY} if spec.warmup or spec.cooldown else {}


def request_counts(spec: BenchSpec, registry: Registry) -> tuple[int, int]:
    """The point's requests and failed requests (between warm-up and cool-down)."""
    failed = Figures(registry, steady_phase(spec) or None).agg(REQUEST_FAILED)
    return (failed.total, failed.trues) if failed is not None else (0, 0)


OPEN_LOOP = ("constant", "poisson", "gamma")


def point_figures(spec: BenchSpec, registry: Registry, elapsed: float,
                  objectives: list[Objective]) -> dict[str, Any]:
    """vLLM bench serve's figures of one point (docs/benchmark.md); None = no samples.
    With a warm-up or cool-down, only the requests started between them count."""
    phase = steady_phase(spec)
    m = Figures(registry, phase or None)
    ok = Figures(registry, {**phase, OK_TAG: "true"})  # latencies and tokens: successes
    total, errors = request_counts(spec, registry)
    completed = total - errors
    duration = m.window() or (elapsed if elapsed > 0 else None)
    out_tokens, in_tokens = ok.sum(OUTPUT_TOKENS), ok.sum(PROMPT_TOKENS)
    # The SLOs' own percentiles too (p95, p99.9...): an objective is judged on its value.
    latencies = {key: ok.percentiles(name, [o.percentile for o in objectives
                                            if o.metric == key])
                 for key, name in SLO_METRICS.items()}
    e2el_sum = m.sum(TOTAL)  # every request in flight, for the mean concurrency
    vus = Figures(registry).agg("vus_max")
    dropped = Figures(registry).agg("dropped_iterations")
    good = m.agg(GOOD_REQUESTS)
    point = {
        "label": spec.label or spec.profile, "profile": spec.profile,
        "offered_rate": spec.rate if spec.profile in OPEN_LOOP else None,
        # the arrivals the seed drew (a Poisson point's 57 requests in its window), beside
        # the nominal rate: a shortfall of the achieved rate from this is the server's
        "sent_rate": _per_s(total, duration) if spec.profile in OPEN_LOOP else None,
        "concurrency_limit": spec.vus(), "duration_s": duration,
        "warmup_s": spec.warmup, "cooldown_s": spec.cooldown,
        "requests": total, "completed": completed, "failed": errors,
        "error_rate": errors / total if total else None,
        "failures": failure_breakdown(registry, phase or None),
        "request_rate": _per_s(completed, duration),
        "output_tokens": out_tokens, "prompt_tokens": in_tokens,
        "output_throughput": _per_s(out_tokens, duration),
        "total_token_throughput": _per_s(out_tokens + in_tokens, duration),
        "mean_concurrency": _per_s(e2el_sum / 1000.0, duration) if e2el_sum else None,
        "max_concurrency": int(vus.max) if vus is not None and vus.count else None,
        "dropped": int(dropped.value) if dropped is not None else 0,
        "ttft_ms": latencies["ttft"], "tpot_ms": latencies["tpot"],
        "itl_ms": latencies["itl"], "e2el_ms": latencies["e2el"],
        "schedule_delay_ms": m.percentiles(SCHEDULE_DELAY),
        "token_counts": token_sources(registry.metrics.get(OUTPUT_TOKENS)),
        "prompt_token_counts": token_sources(registry.metrics.get(PROMPT_TOKENS)),
        "goodput": (_per_s(good.value if good is not None else 0.0, duration)
                    if objectives else None),
    }
    point["slo"] = point_verdicts(objectives, latencies) if objectives else []
    point["slo_support"] = support(point)  # the values behind each percentile judged
    # A failed request met no objective: its latency is not in the percentiles (vLLM's
    # definitions), so a point that failed requests cannot be said to meet the SLO.
    point["meets_slo"] = (all(v["ok"] for v in point["slo"]) and point["dropped"] == 0
                          and completed > 0 and errors == 0) if objectives else None
    return point


class Figures:
    """A point's metrics, all samples or those matching `flt` (e.g. the steady phase)."""

    def __init__(self, registry: Registry, flt: dict[str, str] | None = None) -> None:
        self.metrics = registry.metrics
        self.flt = flt

    def agg(self, name: str) -> Any:
        metric = self.metrics.get(name)
        if metric is None or not any(not self.flt or ts.matches(self.flt)
                                     for ts in metric.sinks):
            return None
        return metric.aggregate(self.flt)

    def sum(self, name: str) -> float:
        sink = self.agg(name)
        return float(sink.sum) if sink is not None else 0.0

    def window(self) -> float | None:
        """First request's start to last request's end, in seconds (vLLM's benchmark
        duration); None without a whole request."""
        sink = self.agg(WINDOW)
        if sink is None or sink.count < 2 or sink.max <= sink.min:
            return None
        return float(sink.max - sink.min)

    def percentiles(self, name: str, extra: Sequence[float] = ()) -> dict[str, Any]:
        """mean, p50/p90/p99 (and the `extra` percentiles), count; None: no samples.
        `exact`: the percentiles are of every value (numpy's linear percentile, as
        vLLM's), or else of the sketch, `sketch` saying why."""
        sink = self.agg(name)
        wanted = sorted({*PERCENTILES, *extra})
        if sink is None or not sink.count:
            return {"mean": None, **{f"p{p:g}": None for p in wanted}, "count": 0,
                    "exact": None}
        ordered, why = exact_values(self.metrics[name], self.flt)
        if ordered is None or len(ordered) != sink.count:
            return {"mean": sink.avg, **{f"p{p:g}": sink.percentile(p) for p in wanted},
                    "count": sink.count, "exact": False, "sketch": why or "values not kept"}
        return {"mean": sink.avg, **{f"p{p:g}": percentile(ordered, p) for p in wanted},
                "count": sink.count, "exact": True}


def _per_s(value: float, duration: float | None) -> float | None:
    return value / duration if duration else None


def token_sources(metric: Any) -> str:
    """usage, tokenizer or estimate (or a mix, e.g. "usage+estimate")."""
    if metric is None:
        return "none"
    found = sorted({ts.get("tokens") or "usage" for ts in metric.sinks})
    return "+".join(found) or "none"

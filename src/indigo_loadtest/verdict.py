"""When a run measured nothing: the rules behind exit code 113 (NOTHING_MEASURED).

Thresholds judge what was measured; these rules catch the runs where there was nothing
to judge, which would otherwise pass with every threshold at "no samples":

1. no iteration completed without an exception (every one raised, or none ran);
2. no HTTP request was sent, no check passed and no custom metric got a sample: whether
   a scenario "makes requests" cannot be known from Python code before it runs, so it is
   judged by what the run did. A scenario that measures without the HTTP client does so
   through its own metrics or checks (the generator's health metrics, sampled in every
   run, do not count);
3. requests were sent but not one reached the target: every one failed at the network
   level (status 0: connection refused, DNS, timeout), so nothing of the server was
   measured.

Everything is read from the run's merged metrics, so the rules hold with `--workers`.
"""

from __future__ import annotations

from collections import Counter

from .metrics.registry import Metric, Registry
from .metrics.sinks import RateSink

NETWORK_FAILURE_STATUS = "0"  # the `status` tag of a request that got no response


def nothing_measured(registry: Registry) -> str | None:
    """Why the run measured nothing, as one line; None if it measured something."""
    b = registry.builtin
    iterations = int(b.iterations.aggregate().value)
    errors = int(b.iteration_errors.aggregate().value)
    if iterations == 0:
        return "nothing was measured: no iteration completed"
    if errors >= iterations:
        return (f"nothing was measured: every iteration ({iterations}) ended with an "
                f"exception ({_most_common(b.iteration_errors, 'error_type')})")
    requests = int(b.http_reqs.aggregate().value)
    if requests == 0:
        if _passed_checks(registry) == 0 and not _custom_samples(registry):
            return (f"nothing was measured: {iterations} iterations sent no HTTP request, "
                    "passed no check and recorded no metric of their own")
        return None
    failed = int(b.http_reqs.aggregate({"status": NETWORK_FAILURE_STATUS}).value)
    if failed >= requests:
        return (f"nothing was measured of the target: {requests} request(s) sent, none got "
                f"a response ({_most_common(b.http_reqs, 'error')})")
    return None


def unjudged_failures(registry: Registry, judged: set[str]) -> str | None:
    """A warning when every request got a failed response (an HTTP error status, so the
    run did measure the server) and no threshold on `http_req_failed` or `checks` is
    there to say so: such a run exits 0, as in k6, and this line is all that tells
    (`finish` asks only for a run about to pass)."""
    if judged & {"http_req_failed", "checks"}:
        return None
    requests = int(registry.builtin.http_reqs.aggregate().value)
    failed = registry.builtin.http_req_failed.aggregate()
    if not requests or not isinstance(failed, RateSink) or failed.trues < requests:
        return None
    return (f"every request failed ({requests} of {requests}: status "
            f"{_most_common(registry.builtin.http_reqs, 'status')}) and no threshold on "
            "http_req_failed or checks judges it, so the run passes; add one, e.g. "
            "'http_req_failed': ['rate<0.01']")


def _custom_samples(registry: Registry) -> bool:
    """Whether a metric the scenario declared itself got any sample."""
    from .engine.health import HEALTH_PREFIX
    from .metrics.summary import has_data

    builtin = {m.name for m in vars(registry.builtin).values() if isinstance(m, Metric)}
    return any(has_data(sink) for metric in registry
               if metric.name not in builtin and not metric.name.startswith(HEALTH_PREFIX)
               for sink in metric.sinks.values())


def _passed_checks(registry: Registry) -> int:
    checks = registry.builtin.checks.aggregate()
    return checks.trues if isinstance(checks, RateSink) else 0


def _most_common(metric: Metric, tag: str) -> str:
    """'ValueError ×12, KeyError ×1': the values of `tag` over a counter's samples."""
    counts: Counter[str] = Counter()
    for tags, sink in metric.sinks.items():
        value = tags.get(tag)
        if value is not None:
            counts[value] += int(getattr(sink, "value", 0))
    shown = [f"{value} ×{n}" for value, n in counts.most_common(3) if n]
    if len(counts) > 3:
        shown.append("...")
    return ", ".join(shown) or "no error recorded"

"""Why a benchmark's requests failed, and what a point that mostly failed does to the run.

Each failed request's HTTP status is a tag of its `llm_request_failed` sample and its
reasons are `llm_errors`' (stream_metrics); each process also keeps the first line of
one error body per status as a tag of `llm_error_sample` (masked, cut short): metrics
all three, so they merge across `--workers` processes like every other figure. A point
reports them as `failures` (statuses, reasons, sample); a point whose failed share is
above `--max-error-rate` fails the run (exit 114), and a point whose requests of the
first seconds all failed the same way stops there (`FailFastWatch`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

from ..metrics.registry import Registry
from ..scenario.errors import ExitCode
from .stream_metrics import ERRORS

REQUEST_FAILED = "llm_request_failed"  # benchmark.REQUEST_FAILED (no import cycle)
ERROR_SAMPLE = "llm_error_sample"
STATUS_TAG, SAMPLE_TAG = "status", "error_sample"
NOT_SENT = "none"  # the status tag of a request never sent (no conversation, no session)
SAMPLE_CHARS = 160  # of an error body's first line
SAMPLES_PER_PROCESS = 4  # statuses sampled per process: the tag's values stay few
FAIL_FAST_S = 2.0  # seconds of a point after which all-failed-alike stops it
FAIL_FAST_MIN = 3  # ...with at least this many requests failed
FAIL_FAST_CHECK = 0.5  # seconds between looks at the live metrics
AUTH_STATUSES = ("401", "403")


# --- recording (in the process that sends) -----------------------------------------------

class ErrorSampler:
    """The first line of one error body per status, recorded once per process."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.metric = registry.metric(ERROR_SAMPLE, "counter")
        self.seen: set[int] = set()

    def wants(self, status: int) -> bool:
        return status not in self.seen and len(self.seen) < SAMPLES_PER_PROCESS

    async def refusal_body(self, resp: Any) -> bytes:
        """A streamed non-2xx answer's body, when its status has no sample yet (the
        stream reader does not read it)."""
        if 200 <= resp.status < 300 or not resp.status or not self.wants(resp.status):
            return b""
        try:
            return bytes(await resp.read())[:4096]
        except Exception:  # a body that broke off: the status is sample enough
            return b""

    def offer(self, resp: Any, result: Any, body: bytes, tags: Any) -> None:
        status = int(resp.status or 0)
        if not self.wants(status):
            return
        self.seen.add(status)
        text = first_line(body) if body else ""
        if not text and not 200 <= status < 300 and status:
            text = first_line(str(getattr(resp, "text", "") or "").encode()[:4096])
        text = text or str(getattr(result, "error_message", "") or resp.error or "")
        if text:
            self.registry.record(self.metric, 1.0, tags.with_pairs(
                (STATUS_TAG, str(status)), (SAMPLE_TAG, masked_line(text))))


def first_line(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# An API key of the usual shapes (sk-..., pk-...) that a server quotes back: not one the
# run knows (those mask_text masks), but a secret all the same.
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}")


def masked_line(text: str) -> str:
    from ..http.redact import MASK, mask_text

    line = _KEY_LIKE.sub(MASK, mask_text(" ".join(text.split())))
    return line if len(line) <= SAMPLE_CHARS else line[:SAMPLE_CHARS - 1] + "…"


# --- a point's failures -------------------------------------------------------------------

def _counts(registry: Registry, name: str, tag: str, flt: dict[str, str] | None,
            value: Callable[[Any], float]) -> dict[str, int]:
    metric = registry.metrics.get(name)
    out: dict[str, int] = {}
    for ts, sink in (metric.sinks.items() if metric is not None else ()):
        if flt and not ts.matches(flt):
            continue
        n = int(value(sink))
        if n:
            key = ts.get(tag) or NOT_SENT
            out[key] = out.get(key, 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def failure_breakdown(registry: Registry, flt: dict[str, str] | None) -> dict[str, Any]:
    """statuses (failed requests per HTTP status, "0": no response), reasons (llm_errors'
    tag), sample (the first line of one error body, of the commonest status sampled)."""
    statuses = _counts(registry, REQUEST_FAILED, STATUS_TAG, flt, lambda s: s.trues)
    reasons = _counts(registry, ERRORS, "reason", flt, lambda s: s.value)
    metric = registry.metrics.get(ERROR_SAMPLE)
    samples = {ts.get(STATUS_TAG): ts.get(SAMPLE_TAG) for ts in
               (metric.sinks if metric is not None else ())}
    status = next((s for s in statuses if s in samples), None) or next(iter(samples), None)
    sample = {"status": status, "text": samples[status]} if status is not None else None
    return {"statuses": statuses, "reasons": reasons, "sample": sample}


def status_name(status: str) -> str:
    return {"0": "no response", NOT_SENT: "not sent"}.get(status, f"HTTP {status}")


def failure_line(p: dict[str, Any]) -> str | None:
    """'label: 39 of 40 requests failed (97.5%): HTTP 503 ×39; reasons: http_status ×39;
    e.g. HTTP 503: {...}', None when none failed."""
    if not p.get("failed"):
        return None
    f = p.get("failures") or {}
    parts = [f"{p['label']}: {p['failed']} of {p['requests']} requests failed "
             f"({p['failed'] / p['requests']:.1%})"]
    statuses = ", ".join(f"{status_name(s)} ×{n}" for s, n in f.get("statuses", {}).items())
    reasons = ", ".join(f"{r} ×{n}" for r, n in f.get("reasons", {}).items())
    if statuses:
        parts.append(statuses)
    if reasons:
        parts.append(f"reasons: {reasons}")
    sample = f.get("sample")
    if sample:
        parts.append(f"e.g. {status_name(sample['status'])}: {sample['text']}")
    return "; ".join(parts)


def auth_hint(points: list[dict[str, Any]]) -> str | None:
    """One line when the server refused every failed request as unauthorized."""
    statuses = {s for p in points for s in (p.get("failures") or {}).get("statuses", {})}
    if statuses and statuses <= set(AUTH_STATUSES):
        shown = "/".join(sorted(statuses))
        return (f"hint: the server answered {shown} (unauthorized): set API_KEY or give "
                "--api-key (on Jan, --auth jan-guest)")
    return None


def every_request_failed(p: dict[str, Any]) -> bool:
    return bool(p.get("requests")) and not p.get("completed")


# --- the run's pass mark ------------------------------------------------------------------

def too_many_failed(label: str, total: int, errors: int, bound: float) -> str | None:
    if not total or errors / total <= bound:
        return None
    return (f"point {label}: {errors} of {total} requests failed ({errors / total:.1%}), "
            f"more than --max-error-rate {bound:.1%}")


def failure_mark(label: str, counts: Callable[[Registry], tuple[int, int]], bound: float
                 ) -> Callable[[Registry], tuple[int, str] | None]:
    """A point's pass mark (Prepared.pass_marks): more failed requests than `bound`
    fails its run with TOO_MANY_FAILURES, so its summary export and record say so."""
    def mark(registry: Registry) -> tuple[int, str] | None:
        reason = too_many_failed(label, *counts(registry), bound)
        return (ExitCode.TOO_MANY_FAILURES, reason) if reason else None
    return mark


# --- stop early when everything fails alike ----------------------------------------------

@dataclasses.dataclass
class FailFastWatch:
    """Stops a point whose every request of its first FAIL_FAST_S seconds (at least
    FAIL_FAST_MIN of them) failed the same way, one status and one reason: a wrong
    --model, a missing endpoint or key would fail every request for the whole duration.
    Watches until a request completes."""

    reason: str | None = None

    async def __call__(self, engine: Any) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(FAIL_FAST_CHECK)
            verdict = fail_fast(engine.live_registry(), time.monotonic() - started)
            if verdict is None:
                return  # a request completed: not all alike
            if verdict:
                self.reason = verdict
                engine.stop(f"stopped early: {verdict}")
                return


def fail_fast(registry: Registry, elapsed: float) -> str | None:
    """'' (keep watching), None (a request completed: stop watching) or the reason."""
    metric = registry.metrics.get(REQUEST_FAILED)
    failed = metric.aggregate() if metric is not None and metric.sinks else None
    if failed is not None and failed.total > failed.trues:
        return None
    if failed is None or elapsed < FAIL_FAST_S or failed.total < FAIL_FAST_MIN:
        return ""
    f = failure_breakdown(registry, None)
    if len(f["statuses"]) != 1 or len(f["reasons"]) > 1:
        return ""
    status = status_name(next(iter(f["statuses"])))
    reason = f" ({next(iter(f['reasons']))})" if f["reasons"] else ""
    return (f"every request of the first {elapsed:.1f} s ({failed.total}) failed the same "
            f"way: {status}{reason}")

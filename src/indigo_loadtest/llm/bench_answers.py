"""What a benchmark's answers rest on, in the same words for the terminal and the report:
the knee (its rule, and whether the sweep passed it), and the max rate meeting the SLO
(the offered against the achieved rate, the values behind each percentile judged, and a
warning when they are too few).
"""

from __future__ import annotations

import math
from typing import Any

from ..scenario.errors import ScenarioError
from .slo import parse_slos

KNEE_FACTOR = 2.0  # past the knee, median TTFT exceeds this multiple of the unloaded one
# A percentile rests on too few values when fewer than MIN_TAIL of them lie beyond it:
# a p99 needs 500, a p95 100, a p90 50, a median 10. Below that it is one of the few
# slowest values, and the next run's may differ by as much as they do.
MIN_TAIL = 5
KNEE_RULE = ("the highest offered rate whose point dropped and failed no request, was not "
             "over-saturated, and kept its median TTFT (E2EL without streaming) within "
             f"{KNEE_FACTOR:g}x the synchronous one")


# --- percentiles and their support --------------------------------------------------------

def needed(percentile: float) -> int | None:
    """Values a pNN needs for MIN_TAIL of them to lie beyond it; None for p100 (the
    maximum has nothing beyond it)."""
    if percentile >= 100:
        return None
    return math.ceil(round(MIN_TAIL / (1 - percentile / 100), 6))


def support(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Per SLO judged at the point: {slo, percentile, count, needed, enough}; the count is
    of the values the percentile was taken over (requests; token gaps for ITL)."""
    out = []
    for verdict in p.get("slo") or ():
        try:
            objective = parse_slos(str(verdict.get("slo", "")))[0]
        except (ScenarioError, IndexError):
            continue
        count = int((p.get(f"{objective.metric}_ms") or {}).get("count") or 0)
        need = needed(objective.percentile)
        out.append({"slo": objective.text, "percentile": objective.percentile,
                    "count": count, "needed": need, "enough": need is None or count >= need})
    return out


def support_text(p: dict[str, Any]) -> str:
    """'ttft:p99<500ms over 21 values, e2el:p95<10s over 21 values'."""
    return ", ".join(f"{s['slo']} over {s['count']} values" for s in support(p))


def few_warnings(p: dict[str, Any]) -> list[str]:
    """One warning per SLO whose percentile rests on too few values at this point."""
    return [f"warning: {p.get('label', '?')}: {s['slo']} rests on {s['count']} values, too "
            f"few for a p{s['percentile']:g} (it needs {s['needed']} for {MIN_TAIL} to lie "
            "beyond it): a longer --duration gives a firmer answer"
            for s in support(p) if not s["enough"]]


def rate_words(p: dict[str, Any]) -> str:
    """'offered 2.339 req/s, achieved 1.58 req/s over 21 requests' (closed loop: only the
    achieved rate)."""
    achieved = p.get("request_rate")
    shown = "no request completed" if achieved is None else f"achieved {achieved:.4g} req/s"
    n = f" over {p.get('completed') or 0} requests"
    if p.get("offered_rate"):
        sent = p.get("sent_rate")
        drawn = f" (sent {sent:.4g} req/s, as the seed drew the arrivals)" \
            if sent is not None else ""
        return f"offered {p['offered_rate']:.4g} req/s{drawn}, {shown}{n}"
    return f"{p.get('profile', 'closed loop')}, {shown}{n}"


def point_named(points: list[dict[str, Any]], label: Any) -> dict[str, Any] | None:
    return next((p for p in points if p.get("label") == label), None)


def find_lines(answer: dict[str, Any], points: list[dict[str, Any]]) -> list[str]:
    """The max-rate answer of a search: the rate, what the point behind it achieved, what
    the ± is, the values behind each percentile judged and any too-few warning."""
    found = answer.get("max_rate")
    if found is None:
        return [f"max rate meeting the SLO: none ({answer.get('reason', '')})"]
    at = point_named(points, answer.get("point"))
    behind = f"{answer.get('point')}: {rate_words(at)}" if at else answer.get("point", "?")
    if answer.get("above") is None:
        bound = "at least " if answer.get("at_least") else ""
        lines = [f"max rate meeting the SLO: {bound}{found:.4g} req/s ({behind}; "
                 f"{answer.get('reason', '')})"]
    else:
        above = point_named(points, answer.get("above_point"))
        missed = f"{answer.get('above_point')}: {rate_words(above)}" if above else \
            answer.get("above_point", "?")
        lines = [f"max rate meeting the SLO: {found:.4g} req/s ({behind}); missed at "
                 f"{answer['above']:.4g} req/s ({missed}); ±{answer['uncertainty']:.2g} "
                 "is half the last bisection step, not a confidence interval"]
    if at is not None and support(at):
        lines.append(f"judged: {support_text(at)}")
        lines += few_warnings(at)
    return lines


# --- the knee -----------------------------------------------------------------------------

def knee(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The highest offered rate the server kept up with (KNEE_RULE), and whether the sweep
    passed it: `bound` is "at" (a higher rate swept did not keep up: `next` says which
    and why), "at_least" (every rate swept kept up: not reached), "below" (none did);
    None without a synchronous point or a rate point."""
    base = next((p for p in points if p.get("profile") == "synchronous"), None)
    key = "ttft_ms" if base is not None and base["ttft_ms"]["p50"] is not None else "e2el_ms"
    unloaded = base[key]["p50"] if base is not None else None
    rates = sorted((p for p in points if p.get("offered_rate")),
                   key=lambda p: p["offered_rate"])
    if unloaded is None or not rates:
        return None
    why = {p["label"]: not_kept_up(p, key, unloaded) for p in rates}
    kept = [p for p in rates if why[p["label"]] is None]
    if not kept:
        lowest = rates[0]
        return {"rate": None, "label": None, "bound": "below", "next": lowest["label"],
                "next_rate": lowest["offered_rate"], "why": why[lowest["label"]]}
    top = kept[-1]
    above = next((p for p in rates if p["offered_rate"] > top["offered_rate"]), None)
    if above is None:
        return {"rate": top["offered_rate"], "label": top["label"], "bound": "at_least",
                "next": None, "next_rate": None, "why": None}
    return {"rate": top["offered_rate"], "label": top["label"], "bound": "at",
            "next": above["label"], "next_rate": above["offered_rate"],
            "why": why[above["label"]]}


def not_kept_up(p: dict[str, Any], key: str, unloaded: float) -> str | None:
    """Why a rate point fails KNEE_RULE; None when it kept up."""
    name = "TTFT" if key == "ttft_ms" else "E2EL"
    median = p[key]["p50"]
    if p.get("dropped"):
        return f"{p['dropped']} request(s) dropped"
    if p.get("failed"):
        return f"{p['failed']} request(s) failed"
    if p.get("saturated"):
        return f"over-saturated ({p['saturated']})"
    if median is None:
        return f"no {name} measured"
    if median > KNEE_FACTOR * unloaded:
        return (f"median {name} {median:.0f} ms, over {KNEE_FACTOR:g}x the unloaded "
                f"{unloaded:.0f} ms")
    return None


def knee_words(k: dict[str, Any] | None) -> str:
    """The knee in one sentence (the terminal's line, the report's answer)."""
    if k is None:
        return "not measured (no rate point, or no unloaded latency to compare with)"
    if k["bound"] == "below":
        return (f"below {k['next_rate']:.4g} req/s: not even the lowest rate swept, "
                f"{k['next']}, kept up ({k['why']})")
    if k["bound"] == "at_least":
        return (f"≥ {k['rate']:.4g} req/s ({k['label']}): not reached, every rate swept "
                "kept up, the highest too")
    return (f"{k['rate']:.4g} req/s ({k['label']}); the next rate, {k['next_rate']:.4g} "
            f"req/s ({k['next']}), did not keep up: {k['why']}")

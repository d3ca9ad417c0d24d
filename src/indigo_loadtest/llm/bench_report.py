"""What `bench` reports: the table of points, the knee, the SLO answer, the results file."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import TYPE_CHECKING, Any

from ..metrics.exact import EXACT_CAP
from .bench_answers import (
    KNEE_RULE,
    few_warnings,
    find_lines,
    knee,
    knee_words,
    support,
    support_text,
)

if TYPE_CHECKING:
    from .bench_cli import Bench

LATENCIES = ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms", "schedule_delay_ms")
PERCENTILE_METHOD = ("exact: of every value, numpy.percentile's linear interpolation (as "
                     "vLLM's bench serve); past the cap per metric per point, the sketch "
                     "(0.1% relative accuracy), marked exact: false")
def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _lat(stats: dict[str, Any]) -> str:
    return f"{_fmt(stats['p50'])}/{_fmt(stats['p99'])}"


TABLE_COLUMNS = ("point", "rate req/s", "out tok/s", "total tok/s", "conc", "TTFT p50/p99",
                 "TPOT p50/p99", "ITL p50/p99", "E2EL p50/p99", "errors", "goodput",
                 "delay p99")


def table_rows(points: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    from ..report.sweep import sent_words

    rows = []
    for p in points:
        offered = f"{p['offered_rate']:.3g}{sent_words(p)}→" if p["offered_rate"] else ""
        rows.append((
            p["label"], f"{offered}{_fmt(p['request_rate'], 2)}",
            _fmt(p["output_throughput"]), _fmt(p["total_token_throughput"]),
            _fmt(p["mean_concurrency"]), _lat(p["ttft_ms"]), _lat(p["tpot_ms"]),
            _lat(p["itl_ms"]), _lat(p["e2el_ms"]),
            "-" if p["error_rate"] is None else f"{p['error_rate']:.1%}",
            _fmt(p["goodput"], 2), _fmt(p["schedule_delay_ms"]["p99"], 2),
        ))
    return rows


def render_table(points: list[dict[str, Any]]) -> str:
    rows = [TABLE_COLUMNS, *table_rows(points)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_COLUMNS))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                     .rstrip() for r in rows)


def tokens_line(points: list[dict[str, Any]]) -> str:
    """Where the output's and the prompt's token counts came from (usage, tokenizer,
    estimate), each said, and an estimate said loudly."""
    sources = sorted({p["token_counts"] for p in points})
    if any("estimate" in s for s in sources):
        from ..report.sweep import TOKENS_ESTIMATE

        return f"  tokens: {TOKENS_ESTIMATE}"
    prompt = sorted({str(p.get("prompt_token_counts")) for p in points})
    line = f"  tokens: output from {', '.join(sources)}, prompt from {', '.join(prompt)}"
    if any("estimate" in s for s in prompt):
        # the output's count is the server's, the prompt's is not: say which is estimated
        from ..report.sweep import PROMPT_ESTIMATE

        line += f"; {PROMPT_ESTIMATE}"
    return line


def report_lines(bench: Bench, answer: dict[str, Any] | None) -> list[str]:
    points = bench.points
    lines = ["", f"  workload: {bench.workload}",
             "  benchmark (ms; rate = [offered (sent) →] completed requests/s; conc = mean "
             "in flight):",
             render_table(points)]
    lines.append(tokens_line(points))
    lines.append(percentiles_line(points))
    if bench.mode == "sweep":
        lines.append(f"  knee: {knee_words(knee(points))}")
    lines += [f"  {line}" for line in notes_of_failures(points)]
    for p in points:
        if p.get("saturated"):
            lines.append(f"  {p['label']}: over-saturated, stopped early ({p['saturated']})")
        elif p["dropped"]:
            lines.append(f"  {p['label']}: {p['dropped']} request(s) dropped with "
                         "--max-concurrency in flight: the rate was not offered in full")
    for p in points:
        if bench.objectives:
            verdict = "meets the SLO" if p["meets_slo"] else f"misses {slo_misses(p)}"
            judged = f" ({support_text(p)})" if support(p) else ""
            lines.append(f"  {p['label']}: {verdict}{judged}")
    if answer is not None:
        lines += [f"  {line}" for line in find_lines(answer, points)]
    elif bench.mode == "single" and bench.objectives and points:
        lines += [f"  {line}" for line in few_warnings(points[0])]
    lines.append(f"  results: {bench.results_file}")
    return lines


def notes_of_failures(points: list[dict[str, Any]]) -> list[str]:
    """Why requests failed, point by point (statuses, reasons, one error body's first
    line), a point stopped early, and the hint of an all-unauthorized run."""
    from .bench_failures import auth_hint, failure_line

    lines = []
    for p in points:
        if p.get("stopped_early"):
            lines.append(f"{p['label']}: stopped early: {p['stopped_early']}")
        line = failure_line(p)
        if line:
            lines.append(line)
    hint = auth_hint(points)
    return [*lines, hint] if hint else lines


def slo_misses(p: dict[str, Any]) -> str:
    """Why a point misses the SLO: the objectives it missed, failed or dropped requests."""
    missed = [v["slo"] for v in p["slo"] if not v["ok"]]
    if p["failed"]:
        missed.append(f"{p['failed']} failed request(s)")
    if p["dropped"]:
        missed.append(f"{p['dropped']} dropped request(s)")
    if p.get("interrupted"):
        missed.append("interrupted before its end")
    return ", ".join(missed) or "the SLO (over-saturated or no requests)"


def sketched(points: list[dict[str, Any]]) -> list[str]:
    """'label key (why)' of each figure whose percentiles fell back to the sketch."""
    return [f"{p['label']} {key} ({p[key].get('sketch', '')})" for p in points
            for key in LATENCIES if p[key].get("exact") is False]


def percentiles_line(points: list[dict[str, Any]]) -> str:
    missed = sketched(points)
    if not missed:
        return "  percentiles: exact (every request's value; numpy's linear, as vLLM's)"
    return (f"  percentiles: exact, but from the 0.1% sketch for {', '.join(missed)}: "
            f"over the {EXACT_CAP:,} values kept per metric and point")


def write_results(bench: Bench, answer: dict[str, Any] | None,
                  verdict: dict[str, Any] | None = None) -> dict[str, Any]:
    """The results file (also what the HTML report is drawn from); returns its content."""
    from ..report.record import write_atomically

    doc = results_doc(bench, answer, verdict)
    data = (json.dumps(doc, indent=2) + "\n").encode()
    path = bench.results_file
    if path.exists() and not path.is_file():  # a device (/dev/stdout): written as it is
        path.write_bytes(data)
    else:  # it is rewritten after each point: a kill mid-write must not cut it short
        write_atomically(path, data)
    return doc


def results_doc(bench: Bench, answer: dict[str, Any] | None,
                verdict: dict[str, Any] | None = None) -> dict[str, Any]:
    """The content of the results file, as a reader of the file gets it."""
    from .. import __version__
    from ..http.redact import mask_url

    spec = dataclasses.asdict(bench.spec)
    spec.pop("thresholds", None)
    doc = {"tool": "indigo-loadtest bench", "version": __version__, "mode": bench.mode,
           "spec": spec, "workload": bench.workload,
           "target": mask_url(bench.settings.env.get("BASE", "")),
           "started_at": bench.started_at, "ended_at": time.time(), "verdict": verdict,
           "slos": [o.text for o in bench.objectives], "max_error_rate": bench.max_error_rate,
           "percentiles": {"method": PERCENTILE_METHOD, "cap": EXACT_CAP},
           "points": bench.points,
           "knee": (knee(bench.points) or {}).get("rate") if bench.mode == "sweep" else None,
           "knee_detail": knee(bench.points) if bench.mode == "sweep" else None,
           "knee_rule": KNEE_RULE,
           "max_rate": answer}
    return json.loads(json.dumps(doc, default=_json_default))


def verdict_text(bench: Bench, code: int, problem: str | None) -> dict[str, Any]:
    """{exit_code, text}, worded as a run's verdict (run.outcome.verdict_text)."""
    from ..scenario.errors import ExitCode

    if code == ExitCode.OK:
        return {"exit_code": 0, "text": "passed"}
    point = bench.points[0] if bench.mode == "single" and bench.points else None
    if problem is None and point is not None and point["exit_code"] == code:
        return {"exit_code": int(code), "text": point["verdict"]}  # its export's own words
    failed = next((p["label"] for p in bench.points if p["exit_code"] == code), None)
    if problem is None and code == ExitCode.EXTERNAL_ABORT:
        problem = "interrupted"
    elif problem is None and code == ExitCode.THRESHOLDS_FAILED:
        return {"exit_code": int(code), "text": "failed: thresholds crossed"
                + (f" (point {failed})" if failed else "")}
    elif problem is None and failed and code == ExitCode.TOO_MANY_FAILURES:
        first = next(p for p in bench.points if p["exit_code"] == code)
        return {"exit_code": int(code), "text": first["verdict"]}  # its count and bound
    elif problem is None and failed:
        problem = f"point {failed} failed"
    return {"exit_code": int(code),
            "text": f"failed (exit code {int(code)})" + (f": {problem}" if problem else "")}


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(type(value).__name__)

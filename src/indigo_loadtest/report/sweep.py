"""The HTML report of a benchmark (`indigo-loadtest bench`'s results file): every point
in a table, throughput, goodput and latency against the offered rate and against the
achieved throughput, the knee and the SLO answer in words.

Same page, styles and uPlot charts as a run's report (html.py, report.js); only the x
axis differs (a rate instead of time). A closed-loop point (synchronous, throughput,
concurrency) has no offered rate: it is placed at the rate it achieved, which is the
load it offered (the max-rate search brackets its answer with the same values). A
figure without samples is "no samples", in the table and in place of a chart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .html import COLORS, UPLOT_VERSION, esc, fmt, page, when, write_html
from .record import RecordError, read_bounded, safe_target

BENCH_TOOL = "indigo-loadtest bench"
PROMPT_ESTIMATE = ("prompt tokens: ESTIMATE (one per word: the server sent no "
                   "usage.prompt_tokens and no --tokenizer was given), so is the total "
                   "token throughput")
# Without usage or a tokenizer the output is counted as one token per content chunk (what
# the stream gives), the prompt as one per word (the text is all there is).
TOKENS_ESTIMATE = ("ESTIMATE (output: one per content chunk, prompt: one per word: the "
                   "server sent no usage and no --tokenizer was given)")
LATENCIES = (("ttft_ms", "TTFT", "time to first token"), ("tpot_ms", "TPOT",
             "time per output token"), ("itl_ms", "ITL", "inter-token latency"),
             ("e2el_ms", "E2EL", "end-to-end latency"))
PCTS = ("p50", "p99")
KNEE_COLOR, SATURATED_COLOR, ANSWER_COLOR, SLO_COLOR = "#7c3aed", "#dc2626", "#059669", \
    "#d97706"
Point = dict[str, Any]
POINT_KEYS = ("label", "profile", "offered_rate", "request_rate", "ttft_ms", "tpot_ms",
              "itl_ms", "e2el_ms")


def read_bench_results(path: str | Path) -> dict[str, Any] | None:
    """The results file of `bench`, or None when the file is something else (a run's
    summary export or record: `report` then reads it as such)."""
    p = Path(path)
    if p.suffix != ".json" or not p.is_file():
        return None
    try:
        doc = json.loads(read_bounded(p))
    except (OSError, EOFError, ValueError):  # too large too (RecordError): as a record, refused
        return None
    if not isinstance(doc, dict) or doc.get("tool") != BENCH_TOOL:
        return None
    points = doc.get("points")
    if not isinstance(points, list) or not all(isinstance(q, dict) for q in points):
        raise RecordError(f"{p}: a bench results file without its points")
    for n, q in enumerate(points, 1):
        missing = [k for k in POINT_KEYS if k not in q]
        if missing:
            raise RecordError(f"{p}: point {n} has no {', '.join(missing)} (not a results "
                              "file of this version of bench)")
    return doc


# --- positions of the points -----------------------------------------------------------

def sent_words(point: Point) -> str:
    """' (sent 11.2)': the rate of the arrivals the seed drew, beside the nominal one."""
    sent = finite(point.get("sent_rate"))
    return "" if sent is None else f" (sent {sent:.3g})"


def offered(point: Point) -> float | None:
    """Where a point sits on the offered-rate axis (closed loop: the rate it achieved)."""
    return point.get("offered_rate") or point.get("request_rate")


def achieved(point: Point) -> float | None:
    return point.get("request_rate")


def finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def latency(point: Point, key: str, pct: str) -> float | None:
    stats = point.get(key) or {}
    return finite(stats.get(pct)) if stats.get("count") else None


# --- the answers in words -----------------------------------------------------------------

def rate(value: float | None) -> str:
    return "no samples" if value is None else f"{value:.4g} req/s"


def knee_point(doc: dict[str, Any]) -> Point | None:
    k = doc.get("knee")
    if doc.get("mode") != "sweep" or k is None:
        return None
    return next((p for p in doc["points"] if p.get("offered_rate") == k), None)


def knee_text(doc: dict[str, Any]) -> str:
    """The knee, whether the sweep passed it, and its rule (as the terminal words it)."""
    from ..llm.bench_answers import KNEE_RULE, knee, knee_words

    if doc.get("mode") != "sweep":
        return ""
    k = doc["knee_detail"] if "knee_detail" in doc else knee(doc["points"])
    return (f"Knee: {knee_words(k)}. The knee is {KNEE_RULE}; beyond it, requests "
            "queue.")


def slo_answer(doc: dict[str, Any]) -> str:
    """The max rate meeting the SLOs, with its confidence, in words."""
    slos = ", ".join(doc.get("slos") or [])
    if not slos:
        return "No SLOs were given (--slo): no goodput and no max rate."
    answer = doc.get("max_rate")
    if doc.get("mode") == "find" and isinstance(answer, dict):
        text, at = find_answer(answer, slos, doc["points"]), answer_point(doc)
    elif doc.get("mode") == "sweep":
        text, at = sweep_answer(doc["points"], slos)
    else:
        p = doc["points"][0] if doc["points"] else {}
        verdict = "meets" if p.get("meets_slo") else "misses"
        return f"The point {p.get('label', '?')} {verdict} the SLOs ({slos})."
    return text + sample_note(at)


def answer_point(doc: dict[str, Any]) -> Point | None:
    """The point of the max rate meeting the SLOs (a search's answer, or the sweep's)."""
    answer = doc.get("max_rate")
    if doc.get("mode") == "find" and isinstance(answer, dict) and answer.get("max_rate"):
        return next((p for p in doc["points"] if p.get("label") == answer.get("point")), None)
    if doc.get("mode") == "sweep" and doc.get("slos"):
        return sweep_answer(doc["points"], "")[1]
    return None


def find_answer(answer: dict[str, Any], slos: str, points: list[Point]) -> str:
    """The search's answer as the terminal words it (bench_answers.find_lines), but for
    the support of its percentiles, which `sample_note` adds."""
    from ..llm.bench_answers import find_lines

    if answer.get("max_rate") is None:
        return f"No rate meets the SLOs ({slos}): {answer.get('reason', '')}."
    first = find_lines(answer, points)[0].split(": ", 1)[1]
    if answer.get("above") is None:
        return (f"The highest rate meeting the SLOs ({slos}) is {first}: the limit was "
                "not found (a higher --max-concurrency may reach it).")
    return f"The highest rate meeting the SLOs ({slos}) is {first}."


def sweep_answer(points: Sequence[Point], slos: str) -> tuple[str, Point | None]:
    """From the sweep's own points: the highest rate meeting the SLOs below the lowest
    rate that misses them."""
    placed = sorted((p for p in points if offered(p) is not None), key=offered)
    miss = next((p for p in placed if not p.get("meets_slo")), None)
    meets = [p for p in placed if p.get("meets_slo")
             and (miss is None or offered(p) < offered(miss))]
    if not meets:
        return (f"No point of the sweep meets the SLOs ({slos})"
                + (f", not even {miss['label']} at {rate(offered(miss))}." if miss else ".")
                ), None
    best = meets[-1]
    if miss is None:
        return (f"Every point of the sweep meets the SLOs ({slos}), up to "
                f"{rate(offered(best))} ({best['label']}): the limit is the server's "
                "throughput, not the SLOs."), best
    low, high = offered(best), offered(miss)
    return (f"The highest rate meeting the SLOs ({slos}) is {rate(low)}, "
            f"± {(high - low) / 2:.2g} req/s: met at {rate(low)} ({best['label']}), missed "
            f"at {rate(high)} ({miss['label']}); the sweep's points bracket the limit "
            "(± half their distance, not a confidence interval; --find max-rate narrows "
            "it)."), best


def sample_note(point: Point | None) -> str:
    """What the answer's percentiles rest on, and a warning for each that rests on too
    few values (bench_answers.MIN_TAIL), as the terminal says it."""
    from ..llm.bench_answers import few_warnings, rate_words, support, support_text

    if point is None:
        return ""
    note = f" At {point['label']}: {rate_words(point)}"
    if support(point):
        note += f"; judged: {support_text(point)}"
    warnings = few_warnings(point)
    return note + "." + "".join(f" {w[0].upper()}{w[1:]}." for w in warnings)


# --- charts -------------------------------------------------------------------------------

def line(label: str, values: list[float | None], k: int, dash: bool = False) -> dict[str, Any]:
    return {"label": label, "values": values, "dash": dash, "color": COLORS[k % len(COLORS)]}


def chart_specs(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(title, unit, note when empty, chart spec or None) of every chart, in order."""
    points = doc["points"]
    charts = []
    by_offered = placed(points, offered)
    by_achieved = placed(points, achieved)
    marks_o, marks_a = marks(doc, offered), marks(doc, achieved)
    xo = [offered(p) for p in by_offered]
    xa = [achieved(p) for p in by_achieved]
    offered_axis = "offered rate (req/s)"

    def add(title: str, unit: str, xs: list[float | None], xlabel: str,
            lines: list[dict[str, Any]], mks: list[dict[str, Any]], note: str = "no samples",
            hmarks: Sequence[dict[str, Any]] = ()) -> None:
        if not any(finite(v) is not None for s in lines[:1] for v in s["values"]):
            charts.append((title, unit, note, None))
            return
        charts.append((title, unit, note, {"title": title, "unit": unit, "x": xs,
                                           "xlabel": xlabel, "xunit": "req/s",
                                           "series": lines, "marks": mks,
                                           "hmarks": list(hmarks), "spanGaps": True}))

    add("Request throughput vs offered rate", "req/s", xo, offered_axis,
        [line("achieved (completed/s)", [achieved(p) for p in by_offered], 0),
         line("offered", xo, 7, dash=True)], marks_o)
    add("Output tokens/s vs offered rate", "tokens/s", xo, offered_axis,
        [line("output tokens/s", [finite(p.get("output_throughput")) for p in by_offered], 1),
         line("total tokens/s", [finite(p.get("total_token_throughput"))
                                 for p in by_offered], 5)], marks_o)
    if doc.get("slos"):
        add("Goodput vs offered rate", "req/s", xo, offered_axis,
            [line("goodput (requests meeting every SLO)/s",
                  [finite(p.get("goodput")) for p in by_offered], 3),
             line("achieved", [achieved(p) for p in by_offered], 0, dash=True)], marks_o)
    for axis, pts, xs, mks in ((offered_axis, by_offered, xo, marks_o),
                               ("achieved throughput (completed req/s)", by_achieved, xa,
                                marks_a)):
        vs = "offered rate" if axis == offered_axis else "achieved throughput"
        for key, short, long in LATENCIES:
            lines = [line(pct, [latency(p, key, pct) for p in pts], k)
                     for k, pct in enumerate(PCTS)]
            lines = [s for s in lines if any(v is not None for v in s["values"])] or lines
            add(f"{short} ({long}) vs {vs}", "ms", xs, axis, lines, mks,
                hmarks=slo_lines(doc, key[:-3]))
    return charts


def placed(points: Sequence[Point], x: Callable[[Point], float | None]) -> list[Point]:
    """The points that have a position on this axis, in its order (uPlot wants x sorted)."""
    return sorted((p for p in points if finite(x(p)) is not None), key=lambda p: x(p))


def marks(doc: dict[str, Any], x: Callable[[Point], float | None]) -> list[dict[str, Any]]:
    """Vertical marks: the knee, the max rate meeting the SLOs, each over-saturated point."""
    out = []
    k = knee_point(doc)
    if k is not None and finite(x(k)) is not None:
        out.append({"x": x(k), "label": "knee", "color": KNEE_COLOR})
    at = answer_point(doc)
    if at is not None and finite(x(at)) is not None:
        out.append({"x": x(at), "label": "max rate meeting the SLOs", "color": ANSWER_COLOR})
    for p in doc["points"]:
        if p.get("saturated") and finite(x(p)) is not None:
            out.append({"x": x(p), "label": f"{p['label']}: saturated, stopped early",
                        "color": SATURATED_COLOR})
    return out


def slo_lines(doc: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Horizontal marks: the bound of each SLO on this latency."""
    from ..llm.slo import parse_slos

    try:
        objectives = parse_slos(",".join(doc.get("slos") or []))
    except ValueError:
        return []
    return [{"y": o.bound_ms, "label": f"SLO {o.text}", "color": SLO_COLOR}
            for o in objectives if o.metric == metric]


def build_sweep_charts(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    specs, slots = [], []
    for n, (title, unit, note, spec) in enumerate(chart_specs(doc)):
        if spec is None:
            slots.append(f'<figure><figcaption>{esc(title)}</figcaption>'
                         f'<p class="nodata">{esc(note)}</p></figure>')
            continue
        spec["id"] = f"sweep-{n}"
        specs.append(spec)
        slots.append(f'<figure><figcaption>{esc(title)} ({esc(unit)})</figcaption>'
                     f'<div class="chart" id="{spec["id"]}"></div></figure>')
    return specs, slots


# --- sections -----------------------------------------------------------------------------

MODES = {"sweep": "sweep (synchronous, throughput, then rates between them)",
         "find": "--find max-rate (bisection of the rate meeting the SLOs)"}


def header(doc: dict[str, Any]) -> str:
    spec = doc.get("spec") or {}
    verdict = doc.get("verdict")
    streamed = "streamed" if spec.get("stream") else "not streamed"
    endpoint = f"{spec.get('endpoint', '?')} ({streamed})"
    rows = [
        ("target", safe_target(str(doc.get("target", "")))), ("model", spec.get("model", "")),
        ("endpoint", endpoint),
        ("profile", MODES.get(doc.get("mode", ""), spec.get("profile", ""))),
        ("workload", doc.get("workload", "")),
        ("each point", (f"{spec['requests']} requests" if spec.get("requests")
                        else str(spec.get("duration", "?")))
         + (f", max {spec['max_concurrency']} in flight" if spec.get("max_concurrency") else "")),
        ("SLOs", ", ".join(doc.get("slos") or []) or "none"),
        ("started", when(doc.get("started_at"))), ("ended", when(doc.get("ended_at"))),
        ("points", len(doc["points"])),
        ("tool", f"indigo-loadtest {doc.get('version', '')}".strip()),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows if v != "")
    if isinstance(verdict, dict):
        ok = verdict.get("exit_code") == 0
        shown = f'{"✓" if ok else "✗"} {verdict.get("text", "")}'
    else:
        ok, shown = False, "verdict not recorded (an older results file)"
    return (f'<header><h1>Benchmark: {esc(spec.get("model") or "?")}</h1>'
            f'<p class="verdict {"ok" if ok else "bad"}">{esc(shown)}</p>'
            f'<table class="meta">{body}</table></header>')


def answers_section(doc: dict[str, Any]) -> str:
    from ..llm.bench_report import notes_of_failures

    lines = [slo_answer(doc), knee_text(doc), *notes_of_failures(doc["points"])]
    for p in doc["points"]:
        if p.get("saturated"):
            lines.append(f"{p['label']}: over-saturated, stopped early ({p['saturated']}); "
                         "its figures cover the part that ran.")
        elif p.get("dropped"):
            lines.append(f"{p['label']}: {p['dropped']} request(s) dropped with "
                         "--max-concurrency in flight: the rate was not offered in full.")
        if p.get("interrupted"):
            lines.append(f"{p['label']}: interrupted.")
    if any("estimate" in str(p.get("token_counts", "")) for p in doc["points"]):
        lines.append(f"Tokens: {TOKENS_ESTIMATE}.")
    elif any("estimate" in str(p.get("prompt_token_counts")) for p in doc["points"]):
        lines.append(f"P{PROMPT_ESTIMATE[1:]}.")
    items = "".join(f"<li>{esc(t)}</li>" for t in lines if t)
    return f"<section><h2>Answer</h2><ul class='answer'>{items}</ul></section>"


def status(p: Point) -> tuple[str, str]:
    """(css class, text) of a point's state."""
    if p.get("saturated"):
        return "bad", f"saturated, stopped early: {p['saturated']}"
    if p.get("interrupted"):
        return "bad", "interrupted"
    if p.get("dropped"):
        return "bad", f"{p['dropped']} dropped"
    if not p.get("completed"):
        return "bad", "no request completed"
    if p.get("failed"):  # red when it failed the run (more than --max-error-rate)
        return ("bad" if p.get("exit_code") else ""), \
            f"{p['failed']} of {p.get('requests', '?')} failed"
    return "", "complete"


def slo_cell(p: Point) -> tuple[Any, str]:
    if p.get("meets_slo") is None:
        return "", ""
    missed = [v["slo"] for v in p.get("slo", []) if not v.get("ok")]
    if p["meets_slo"]:
        return 1, "✓ meets"
    return 0, "✗ misses " + (", ".join(missed) or "(dropped or no requests)")


POINT_COLUMNS = ("point", "state", "offered req/s", "achieved req/s", "output tok/s", "total tok/s",
                 "mean in flight", *(f"{short} {pct}" for _, short, _ in LATENCIES
                                     for pct in PCTS),
                 "errors", "goodput req/s", "SLOs")


def point_cells(p: Point, slos: bool) -> list[tuple[Any, str]]:
    def num(v: Any, digits: int = 2) -> tuple[Any, str]:
        v = finite(v)
        return ("" if v is None else v), ("no samples" if v is None else f"{v:,.{digits}f}")

    lat = []
    for key, _, _ in LATENCIES:
        for pct in PCTS:
            v = latency(p, key, pct)
            lat.append(("" if v is None else v, fmt(v, "ms")))
    err = finite(p.get("error_rate"))
    offered_rate = finite(p.get("offered_rate"))
    return [
        (p.get("label", ""), p.get("label", "")), (status(p)[1], status(p)[1]),
        ("", f"closed loop ({p.get('profile')})") if offered_rate is None
        else (offered_rate, f"{offered_rate:.4g}{sent_words(p)}"),
        num(p.get("request_rate")), num(p.get("output_throughput"), 1),
        num(p.get("total_token_throughput"), 1), num(p.get("mean_concurrency")),
        *lat,
        ("" if err is None else err, fmt(None if err is None else 100 * err, "%")),
        num(p.get("goodput")) if slos else ("", "no --slo"),
        slo_cell(p),
    ]


def points_section(doc: dict[str, Any]) -> str:
    rows = []
    for p in doc["points"]:
        cls, _ = status(p)
        cells = "".join(f'<td data-v="{esc(v)}">{esc(text)}</td>'
                        for v, text in point_cells(p, bool(doc.get("slos"))))
        rows.append(f'<tr class="{cls}" data-point="{esc(p.get("label", ""))}">{cells}</tr>')
    head = "".join(f"<th>{esc(h)}</th>" for h in POINT_COLUMNS)
    return ("<section><h2>Points</h2><p class='hint'>latencies of successful requests; "
            "rates over each point's duration; click a column to sort</p>"
            f"<div class='wide'><table class='sortable points'><thead><tr>{head}</tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table></div></section>")


SWEEP_CSS = (".wide{overflow-x:auto}table.points{font-size:12px}"
             "table.points td,table.points th{white-space:nowrap;padding:3px 6px}"
             "ul.answer li{margin:4px 0}")


def render_sweep(doc: dict[str, Any]) -> str:
    try:
        charts, slots = build_sweep_charts(doc)
        body = (f"<style>{SWEEP_CSS}</style>" + header(doc) + answers_section(doc)
                + points_section(doc)
                + "<section><h2>Throughput and latency vs load</h2><div class='grid'>"
                + "".join(slots) + "</div></section>"
                + f"<p class='hint'>indigo-loadtest bench report; charts by uPlot "
                  f"{UPLOT_VERSION} (MIT), embedded.</p>")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RecordError(f"a bench results file this version cannot read ({exc!r})") from None
    model = (doc.get("spec") or {}).get("model") or "?"
    return page(f"bench {model} — indigo-loadtest report", body,
                {"charts": charts, "histograms": []})


def write_sweep_report(path: Path, doc: dict[str, Any]) -> Path:
    return write_html(path, render_sweep(doc))

"""The HTML report of a run record: one self-contained file, readable offline and printable.

Tables (header, thresholds, checks, endpoints) are plain HTML, so they read and print
without scripts; the charts are drawn by uPlot, embedded in the file with our own
`report.js`. uPlot (MIT, v1.6.32, vendor/uPlot.LICENSE) was chosen because it is small
(~50 KB minified, no dependencies), maintained, and made for exactly this: many
time-series points drawn fast on a canvas; a hand-drawn SVG would be larger to write
and slower with 1000-point series. A metric with no samples is a "no samples" note,
never a chart of zeros.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from ..llm.stream_metrics import ITL, OUTPUT_TOKENS, TOKENS_PER_SEC, TPOT, TTFT
from ..metrics.summary import humanize_duration
from ..metrics.timeseries import interval_widths
from .record import write_atomically

UPLOT_VERSION = "1.6.32"
COLORS = ("#2f6feb", "#d97706", "#dc2626", "#059669", "#7c3aed", "#0891b2", "#be185d",
          "#4d7c0f")
# compare: the baseline in cool colours (and dashed), the candidate in warm ones, so the
# two runs are told apart by colour too, not only by the line style.
BASELINE_COLORS = ("#2f6feb", "#0891b2", "#7c3aed", "#059669", "#1e3a8a", "#4d7c0f")
CANDIDATE_COLORS = ("#d97706", "#dc2626", "#be185d", "#a16207", "#ea580c", "#9f1239")
LLM_CHARTS = ((TTFT, "Time to first token (TTFT)"), (ITL, "Inter-token latency (ITL)"),
              (TPOT, "Time per output token (TPOT)"))
PCTS = (("p50", "p50"), ("p95", "p95"), ("p99", "p99"))
HISTOGRAM_TITLES = {"http_req_duration": "HTTP request duration",
                    "iteration_duration": "Iteration duration", TTFT: "TTFT", ITL: "ITL",
                    TPOT: "TPOT", TOKENS_PER_SEC: "Output tokens/s per request"}


@dataclass(frozen=True)
class Run:
    """A record as drawn: its label, line style (dashed for a compare baseline) and
    colours."""

    label: str
    record: dict[str, Any]
    dash: bool = False
    palette: tuple[str, ...] = COLORS


# --- values --------------------------------------------------------------------------

def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: float | None, unit: str = "") -> str:
    """A value for a table cell; None is "no samples", never 0."""
    if value is None:
        return "no samples"
    if unit == "ms":
        return humanize_duration(value)
    if unit == "%":
        return f"{value:.2f}%"
    if unit == "B":
        return f"{value:,.0f} B"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,.0f}"


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "?"


# --- time series → chart specifications ------------------------------------------------

def _col(run: Run, key: str, col: str) -> list[float | None] | None:
    entry = run.record["series"]["metrics"].get(key)
    return None if entry is None else entry["cols"].get(col)


def series_values(run: Run, key: str, how: str) -> list[float | None] | None:
    """One line of a chart: "per_s" (count per second), "sum_per_s" (avg × count per
    second), "pct" (a rate metric's trues/total in %), or a column name as recorded."""
    t = run.record["series"]["t"]
    widths = interval_widths(t)
    if how == "per_s":
        col = _col(run, key, "value") if _type(run, key) == "counter" else _col(run, key, "count")
        return None if col is None else [_div(v, w) for v, w in zip(col, widths, strict=True)]
    if how == "sum_per_s":
        avg, count = _col(run, key, "avg"), _col(run, key, "count")
        if avg is None or count is None:
            return None
        return [None if a is None else _div(a * n, w)
                for a, n, w in zip(avg, count, widths, strict=True)]
    if how == "pct":
        trues, total = _col(run, key, "trues"), _col(run, key, "total")
        if trues is None or total is None:
            return None
        return [_div(100.0 * (a or 0), n) if n else None
                for a, n in zip(trues, total, strict=True)]
    return _col(run, key, how)


def _type(run: Run, key: str) -> str:
    return run.record["series"]["metrics"].get(key, {}).get("type", "")


def _div(a: float | None, b: float) -> float | None:
    return None if a is None or not b else round(a / b, 6)


def has_points(values: Sequence[float | None] | None) -> bool:
    return values is not None and any(v is not None and math.isfinite(v) for v in values)


def chart_plan(runs: Sequence[Run]) -> list[tuple[str, str, list[tuple[str, str, str]], str]]:
    """(title, unit, [(label, series key, how)], note when empty) of every chart."""
    statuses = sorted({k for r in runs for k in r.record["series"]["metrics"]
                       if k.startswith("http_reqs{status:") and k[17:18] not in ("2", "3")})
    plan = [
        ("Request rate", "req/s", [("requests/s", "http_reqs", "per_s"),
                                   ("iterations/s", "iterations", "per_s")], "no samples"),
        ("Error rate", "%", [("failed requests", "http_req_failed", "pct")], "no samples"),
        ("Responses with an error status, by status", "req/s",
         [(f"status {s[17:-1]}", s, "per_s") for s in statuses],
         "no responses with an error status (and no network errors)"),
        ("VUs", "VUs", [("VUs", "vus", "value")], "no samples"),
        ("HTTP request duration", "ms",
         [(label, "http_req_duration", col) for label, col in PCTS], "no samples"),
    ]
    if any(k.startswith("llm_") for r in runs for k in r.record["totals"]):
        for key, title in LLM_CHARTS:
            plan.append((title, "ms", [(label, key, col) for label, col in PCTS], "no samples"))
        plan.append(("Output tokens/s", "tokens/s",
                     [("all requests", OUTPUT_TOKENS, "sum_per_s"),
                      ("per request, p50", TOKENS_PER_SEC, "p50")], "no samples"))
    return plan


def build_charts(runs: Sequence[Run]) -> tuple[list[dict[str, Any]], list[str]]:
    """The chart specs for report.js, and the HTML of each chart slot in order."""
    specs, slots = [], []
    xs = [run.record["series"]["t"] for run in runs]
    x = sorted({v for t in xs for v in t})
    index = {v: i for i, v in enumerate(x)}
    for n, (title, unit, lines, empty_note) in enumerate(chart_plan(runs)):
        series = []
        for run in runs:
            for k, (label, key, how) in enumerate(lines):
                values = series_values(run, key, how)
                if not has_points(values):
                    continue
                aligned: list[float | None] = [None] * len(x)
                for t, v in zip(run.record["series"]["t"], values or [], strict=True):
                    aligned[index[t]] = v
                name = f"{run.label}: {label}" if len(runs) > 1 else label
                series.append({"label": name, "values": aligned, "dash": run.dash,
                               "color": run.palette[k % len(run.palette)]})
        chart_id = f"chart-{n}"
        if series:
            specs.append({"id": chart_id, "title": title, "unit": unit, "x": x,
                          "series": series, "spanGaps": len(runs) > 1})
            slots.append(f'<figure><figcaption>{esc(title)} ({esc(unit)})</figcaption>'
                         f'<div class="chart" id="{chart_id}"></div></figure>')
        else:
            slots.append(f'<figure><figcaption>{esc(title)}</figcaption>'
                         f'<p class="nodata">{esc(empty_note)}</p></figure>')
    return specs, slots


# --- sections ------------------------------------------------------------------------

def header_section(record: dict[str, Any], title: str = "", *, own: bool = False) -> str:
    """The run's title, verdict and facts; `own`: the verdict is the run's own, under a
    comparison's (which is the page's headline)."""
    meta, verdict = record["meta"], record["verdict"]
    ok = verdict["exit_code"] == 0
    planned = meta.get("planned", {})
    rows = [
        ("scenario", f"{meta['scenario']} ({meta.get('scenario_file', '')})"),
        ("target", meta.get("target", "")), ("model", meta.get("model", "")),
        ("testid", meta.get("testid", "")),
        ("started", when(meta.get("started_at"))), ("ended", when(meta.get("ended_at"))),
        ("duration", humanize_duration(1000 * meta.get("elapsed", 0))),
        ("planned", "; ".join(planned.get("scenarios", []))),
        ("workers", meta.get("workers", 1)),
        ("machine", "{hostname}, {cpus} CPUs, {platform}, Python {python}".format(
            **{k: meta.get("machine", {}).get(k, "?")
               for k in ("hostname", "cpus", "platform", "python")})),
        ("tool", f"indigo-loadtest {meta.get('version', '')}"),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows if v != "")
    line = f'{"✓" if ok else "✗"} {esc(verdict["text"])}'
    if own:
        return (f'<header><h2>{esc(title)}</h2><p class="own {"ok" if ok else "bad"}">'
                f'its own run: {line}</p><table class="meta">{body}</table></header>')
    return (f'<header><h1>{esc(title or meta["scenario"])}</h1>'
            f'<p class="verdict {"ok" if ok else "bad"}">{line}</p>'
            f'<table class="meta">{body}</table></header>')


def observed_text(th: dict[str, Any], totals: dict[str, Any]) -> str:
    """A threshold's observed value in its metric's unit ("no samples" when none)."""
    total = totals.get(th["key"], {})
    if th["aggregation"] == "rate" and total.get("type") == "rate":
        return fmt(None if th["observed"] is None else 100 * th["observed"], "%")
    unit = "" if th["aggregation"] in ("count", "rate") else total.get("unit", "")
    return fmt(th["observed"], unit)


def thresholds_section(record: dict[str, Any]) -> str:
    items = record["thresholds"]
    if not items:
        return "<section><h2>Thresholds</h2><p class='nodata'>no thresholds</p></section>"
    rows = []
    for th in items:
        observed = observed_text(th, record["totals"])
        mark = "✓" if th["ok"] else "✗"
        rows.append(f'<tr class="{"ok" if th["ok"] else "bad"}"><td>{mark}</td>'
                    f'<td>{esc(th["key"])}</td><td><code>{esc(th["expression"])}</code></td>'
                    f'<td>{esc(th["aggregation"])} = {esc(observed)}</td></tr>')
    return ("<section><h2>Thresholds</h2><table><thead><tr><th></th><th>metric</th>"
            "<th>threshold</th><th>observed</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def checks_section(record: dict[str, Any]) -> str:
    items = record["checks"]
    if not items:
        return "<section><h2>Checks</h2><p class='nodata'>no checks in this run</p></section>"
    rows = []
    for c in items:
        total = c["passes"] + c["fails"]
        rate = 100.0 * c["passes"] / total if total else None
        group = c["group"].strip(":") if c.get("group") else ""
        rows.append(f'<tr class="{"ok" if not c["fails"] else "bad"}">'
                    f'<td>{"✓" if not c["fails"] else "✗"}</td>'
                    f'<td>{esc(group + " › " if group else "")}{esc(c["name"])}</td>'
                    f'<td>{esc(fmt(rate, "%"))}</td><td>{c["passes"]} / {total}</td></tr>')
    return ("<section><h2>Checks</h2><table><thead><tr><th></th><th>check</th><th>passed</th>"
            "<th>passes / total</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></section>")


def endpoints_section(record: dict[str, Any]) -> str:
    rows = record["endpoints"]
    if not rows:
        return ("<section><h2>Endpoints</h2><p class='nodata'>no samples (no HTTP requests)"
                "</p></section>")
    cells = []
    for r in rows:
        failed = None if r["failed"] is None else 100 * r["failed"]
        cells.append("<tr>" + "".join(
            f'<td data-v="{esc(v if v is not None else "")}">{esc(text)}</td>'
            for v, text in ((r["method"], r["method"]), (r["name"], r["name"]),
                            (r["count"], fmt(r["count"])), (failed, fmt(failed, "%")),
                            (r["p50"], fmt(r["p50"], "ms")), (r["p95"], fmt(r["p95"], "ms")),
                            (r["p99"], fmt(r["p99"], "ms")))) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("method", "name", "requests", "failed", "p50",
                                             "p95", "p99"))
    return ("<section><h2>Endpoints</h2><p class='hint'>click a column to sort</p>"
            f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(cells) + "</tbody></table></section>")


def histogram_section(record: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    specs, slots = [], []
    for n, (key, title) in enumerate(HISTOGRAM_TITLES.items()):
        if key not in record["totals"]:
            continue
        hist = record["histograms"].get(key)
        if hist is None or not any(hist["counts"]):
            slots.append(f"<figure><figcaption>{esc(title)}</figcaption>"
                         "<p class='nodata'>no samples</p></figure>")
            continue
        hist_id = f"hist-{n}"
        specs.append({"id": hist_id, "unit": hist["unit"], "edges": hist["edges"],
                      "counts": hist["counts"]})
        span = f"{fmt(hist['edges'][0], hist['unit'])} to {fmt(hist['edges'][-1], hist['unit'])}"
        slots.append(f'<figure><figcaption>{esc(title)} (samples per bin, {esc(span)}, log '
                     f'scale)</figcaption><div class="chart" id="{hist_id}"></div></figure>')
    html_ = ("<section><h2>Distributions</h2><div class='grid'>" + "".join(slots)
             + "</div></section>") if slots else ""
    return specs, html_


# --- the page ------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#1f2328;
padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;margin:4px 0}td,th{padding:3px 10px;text-align:left;
border-bottom:1px solid #eaeef2;vertical-align:top}
table.meta th{color:#57606a;font-weight:normal}
.verdict{font-size:18px;font-weight:600;margin:6px 0 10px}.ok{color:#1a7f37}.bad{color:#cf222e}
.own{margin:2px 0 8px}
tr.ok td:first-child{color:#1a7f37}tr.bad td{color:#cf222e}
.better{color:#1a7f37}.worse{color:#cf222e}.noise{color:#57606a}
.nodata{color:#57606a;font-style:italic;margin:4px 0}.hint{color:#57606a;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
figure{margin:0;break-inside:avoid}figcaption{font-weight:600;margin:6px 0}
table.sortable th{cursor:pointer}th[data-sort=asc]::after{content:" ▲"}
th[data-sort=desc]::after{content:" ▼"}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px}
@media print{body{max-width:none;margin:0}.grid{display:block}.hint{display:none}}
"""


def _vendor(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    # In a <script> element only "</" could end it early.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")


def page(title: str, body: str, data: dict[str, Any]) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{esc(title)}</title>"
        f"<style>{_vendor('vendor/uPlot.min.css')}{CSS}</style></head><body>{body}"
        f"<script type='application/json' id='report-data'>{_script_json(data)}</script>"
        f"<script>{_vendor('vendor/uPlot.iife.min.js')}</script>"
        f"<script>{_vendor('report.js')}</script></body></html>\n"
    )


def render_report(record: dict[str, Any]) -> str:
    run = Run(record["meta"]["scenario"], record)
    charts, slots = build_charts([run])
    histograms, hist_html = histogram_section(record)
    body = (header_section(record) + thresholds_section(record) + checks_section(record)
            + "<section><h2>Over time</h2><div class='grid'>" + "".join(slots)
            + "</div></section>" + hist_html + endpoints_section(record)
            + f"<p class='hint'>indigo-loadtest report; charts by uPlot {UPLOT_VERSION} "
              "(MIT), embedded.</p>")
    title = f"{record['meta']['scenario']} — indigo-loadtest report"
    return page(title, body, {"charts": charts, "histograms": histograms})


def write_html(path: Path, text: str) -> Path:
    return write_atomically(path, text.encode("utf-8"))


def write_report(path: Path, record: dict[str, Any]) -> Path:
    return write_html(path, render_report(record))


# --- compare -------------------------------------------------------------------------

def compare_value(row: Any, value: float | None) -> str:
    if row.kind == "rate":
        return fmt(None if value is None else 100 * value, "%")
    text = fmt(value, row.unit if row.stat not in ("count", "rate") or row.unit == "B" else "")
    return text + "/s" if row.kind == "counter" and row.stat == "rate" and value is not None \
        else text


def compare_section(rows: Sequence[Any]) -> str:
    cells = []
    for row in rows:
        change = row.change
        verdict = {"noise": "within noise", "same": "same"}.get(row.verdict, row.verdict)
        cells.append(
            f'<tr class="{row.verdict}"><td data-v="{esc(row.key)}">{esc(row.key)}</td>'
            f'<td data-v="{esc(row.stat)}">{esc(row.stat)}</td>'
            f'<td data-v="{row.base if row.base is not None else ""}">'
            f'{esc(compare_value(row, row.base))}</td>'
            f'<td data-v="{row.cand if row.cand is not None else ""}">'
            f'{esc(compare_value(row, row.cand))}</td>'
            f'<td data-v="{change if change is not None else ""}">'
            f'{esc("" if change is None else f"{change:+.1f}%")}</td>'
            f'<td data-v="{esc(verdict)}">{esc(verdict)}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("metric", "stat", "baseline", "candidate",
                                             "change", ""))
    return ("<section><h2>Metrics</h2><p class='hint'>click a column to sort; "
            "“within noise”: smaller than the run-to-run variation of the per-interval "
            "values</p>"
            f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(cells) + "</tbody></table></section>")


def compare_thresholds_section(pairs: Sequence[Any], base: dict[str, Any],
                               cand: dict[str, Any]) -> str:
    if not pairs:
        return ("<section><h2>Thresholds</h2><p class='nodata'>no threshold in both runs"
                "</p></section>")
    rows = "".join(
        f"<tr><td>{esc(p.key)}</td><td><code>{esc(p.expression)}</code></td>"
        f"<td class='{'ok' if p.base['ok'] else 'bad'}'>{'✓' if p.base['ok'] else '✗'} "
        f"{esc(observed_text(p.base, base['totals']))}</td>"
        f"<td class='{'ok' if p.cand['ok'] else 'bad'}'>{'✓' if p.cand['ok'] else '✗'} "
        f"{esc(observed_text(p.cand, cand['totals']))}</td></tr>" for p in pairs)
    return ("<section><h2>Thresholds</h2><table><thead><tr><th>metric</th><th>threshold</th>"
            "<th>baseline</th><th>candidate</th></tr></thead><tbody>" + rows
            + "</tbody></table></section>")


def render_compare(base: dict[str, Any], cand: dict[str, Any], *, rows: Sequence[Any],
                   thresholds: Sequence[Any], warnings: Sequence[str],
                   rules: Sequence[tuple[bool, str]], verdict: tuple[int, str]) -> str:
    """The comparison page; its headline is the comparison's verdict (`compare`'s exit
    code and line), each run's own verdict is shown under its name."""
    runs = [Run("baseline", base, dash=True, palette=BASELINE_COLORS),
            Run("candidate", cand, palette=CANDIDATE_COLORS)]
    charts, slots = build_charts(runs)
    heads = "".join("<div>" + header_section(r.record, f"{r.label}: {r.record['meta']['scenario']}",
                                             own=True)
                    + "</div>" for r in runs)
    code, line = verdict
    headline = (f'<p class="verdict {"ok" if code == 0 else "bad"}">{"✓" if code == 0 else "✗"}'
                f' {esc(line)} (exit code {int(code)})</p>')
    warn = "".join(f"<p class='warn'>warning: {esc(w)}</p>" for w in warnings)
    rule_html = ""
    if rules:
        items = "".join(f"<li class='{'bad' if failed else 'ok'}'>{esc(line)}</li>"
                        for failed, line in rules)
        rule_html = f"<section><h2>--fail-on</h2><ul>{items}</ul></section>"
    body = (f"<h1>Comparison</h1>{headline}{warn}<div class='grid'>{heads}</div>{rule_html}"
            + compare_thresholds_section(thresholds, base, cand)
            + "<section><h2>Over time (baseline: dashed, cool colours; candidate: solid, "
              "warm colours)</h2><div class='grid'>"
            + "".join(slots) + "</div></section>" + compare_section(rows))
    title = f"{base['meta']['scenario']} vs {cand['meta']['scenario']} — indigo-loadtest"
    return page(title, body, {"charts": charts, "histograms": []})

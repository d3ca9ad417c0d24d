import re

import pytest

from indigo_loadtest.metrics import Registry, tagset
from indigo_loadtest.metrics.summary import (
    check_tree,
    humanize_bytes,
    humanize_duration,
    parse_trend_stats,
    percent,
    render_summary,
)
from indigo_loadtest.metrics.thresholds import parse_thresholds
from indigo_loadtest.outputs.base import RunInfo

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def filled_registry() -> Registry:
    """Two scenarios' worth of samples, as the engine and HTTP client record them."""
    reg = Registry()
    b = reg.builtin
    ttft = reg.metric("llm_ttft", "trend", True)
    tokens = reg.metric("llm_tokens", "counter")
    group_duration = reg.metric("group_duration", "trend", True)
    for i in range(20):
        chat = tagset({"scenario": "chat", "group": "::chat", "method": "POST", "status": "200",
                       "expected_response": "true", "name": "completions"})
        b.record_http(chat, 0.2, 0.1, 0.0, 0.05, 100.0 + i, 1.0, False, 300, 2000)
        stream = tagset({"scenario": "stream", "group": "::chat::stream", "method": "POST",
                         "status": "503", "expected_response": "false", "name": "stream"})
        b.record_http(stream, 0.2, 0.1, 0.0, 0.05, 1500.0, 0.0, True, 300, 100)
        reg.record(b.checks, True, tagset({"group": "::chat", "check": "status is 200"}))
        reg.record(b.checks, i % 4 != 0,
                   tagset({"group": "::chat::stream", "check": "stream finished"}))
        reg.record(b.checks, True, tagset({"group": "", "check": "logged in"}))
        reg.record(ttft, 250.0 + i, tagset({"scenario": "stream"}))
        reg.record(tokens, 10.0, tagset({"scenario": "stream"}))
        reg.record(b.iterations, 1.0, tagset({"scenario": "chat"}))
        reg.record(b.iteration_duration, 1700.0, tagset({"scenario": "chat"}))
        reg.record(group_duration, 1650.0, tagset({"group": "::chat"}))
    reg.record(b.vus, 4.0, tagset({}))
    reg.record(b.vus, 2.0, tagset({}))
    return reg


THRESHOLDS = {
    "http_req_duration": ["p(95)<2000"],
    "http_req_duration{scenario:stream}": ["p(95)<1000"],
    "http_req_failed": ["rate<0.05"],
    "checks": ["rate>0.9"],
    "llm_tokens": ["count>=200", "rate>10"],
    "vus": ["value<=2"],
}


def render(reg: Registry, **kw) -> str:
    ts = parse_thresholds(THRESHOLDS)
    ts.validate(reg)
    return render_summary(reg, ts.evaluate(reg, 10.0), RunInfo("id", "test-chat"), 10.0, **kw)


def squash(text: str) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"\.{3,}:", ":", line)).strip()
            for line in text.splitlines()]


def test_thresholds_section_marks_and_values() -> None:
    lines = squash(render(filled_registry()))
    i = lines.index("█ THRESHOLDS")
    section = lines[i:lines.index("█ TOTAL RESULTS: test-chat")]
    assert "✓ 'p(95)<2000' p(95)=1.5s" in section
    assert "{scenario:stream}" in section  # the sub-metric under its metric
    assert "✗ 'p(95)<1000' p(95)=1.5s" in section
    assert "✗ 'rate<0.05' rate=50.00%" in section
    assert "✗ 'rate>0.9' rate=91.66%" not in section  # 55/60 = 91.66..%, passes
    assert "✓ 'rate>0.9' rate=91.66%" in section
    assert "✓ 'count>=200' count=200" in section
    assert "✓ 'rate>10' rate=20/s" in section
    assert "✓ 'value<=2' value=2" in section


def test_checks_block_counts_groups_and_failures() -> None:
    text = render(filled_registry())
    lines = squash(text)
    assert "checks_total: 60 6/s" in lines
    assert "checks_succeeded: 91.66% 55 out of 60" in lines
    assert "checks_failed: 8.33% 5 out of 60" in lines
    raw = text.splitlines()
    # Root checks first, then groups nested with deeper indentation.
    root = raw.index("    ✓ logged in")
    chat = raw.index("    █ chat")
    assert raw.index("      ✓ status is 200") > chat > root
    stream = raw.index("      █ stream")
    assert raw.index("        ✗ stream finished") > stream
    assert "          ↳  75% — ✓ 15 / ✗ 5" in raw


def test_metrics_table_units_and_submetrics() -> None:
    lines = squash(render(filled_registry()))
    assert lines.index("CUSTOM") < lines.index("HTTP") < lines.index("EXECUTION") < lines.index(
        "NETWORK")
    assert "llm_tokens: 200 20/s" in lines
    assert "http_req_failed: 50.00% 20 out of 40" in lines
    assert "http_reqs: 40 4/s" in lines
    assert "vus: 2 min=2 max=4" in lines
    assert "data_received: 42 kB 4.2 kB/s" in lines
    assert "data_sent: 12 kB 1.2 kB/s" in lines
    assert "iteration_duration: avg=1.7s min=1.7s med=1.7s max=1.7s p(90)=1.7s p(95)=1.7s" in (
        lines)
    assert "http_req_blocked: avg=200µs min=200µs med=200µs max=200µs p(90)=200µs p(95)=200µs" in (
        lines)
    assert "http_req_tls_handshaking: avg=0s min=0s med=0s max=0s p(90)=0s p(95)=0s" in lines
    duration = next(i for i, line in enumerate(lines) if line.startswith("http_req_duration:"))
    # k6 always shows the expected_response sub-metric, then each threshold sub-metric.
    assert lines[duration + 1].startswith("{ expected_response:true }: avg=")
    assert lines[duration + 2].startswith("{ scenario:stream }: avg=1.5s min=1.5s")
    assert not any(line.startswith("checks:") for line in lines)
    assert any(line.startswith("group_duration: avg=1.65s") for line in lines)


def test_color_is_optional() -> None:
    plain = render(filled_registry(), color=False)
    colored = render(filled_registry(), color=True)
    assert not ANSI.search(plain)
    assert "\x1b[32m✓\x1b[0m" in colored and "\x1b[31m✗\x1b[0m" in colored
    assert ANSI.sub("", colored) == plain


def test_custom_trend_stats() -> None:
    reg = Registry()
    t = reg.metric("latency", "trend", True)
    for v in range(1, 101):
        reg.record(t, float(v), tagset({}))
    text = render_summary(reg, [], None, 1.0, summary_trend_stats=("avg", "p(99)", "count"))
    [row] = [line for line in squash(text) if line.startswith("latency:")]
    m = re.fullmatch(r"latency: avg=50.5ms p\(99\)=([\d.]+)ms count=100", row)
    assert m and float(m.group(1)) == pytest.approx(99.01, rel=2e-3)  # sketch accuracy
    assert "THRESHOLDS" not in text


def test_empty_run_renders() -> None:
    text = render_summary(Registry(), [], None, 0.0)
    assert "TOTAL RESULTS" in text
    assert "http_req" not in text and "checks_total" not in text


def test_metric_with_threshold_but_no_samples_is_listed() -> None:
    reg = Registry()
    ts = parse_thresholds({"http_req_failed": ["rate<0.1"]})
    text = render_summary(reg, ts.evaluate(reg, 1.0), None, 1.0)
    lines = squash(text)
    assert "? 'rate<0.1' rate=n/a (no samples)" in lines
    assert "http_req_failed: no samples" in lines


def test_empty_trend_and_gauge_show_no_samples_never_zeros() -> None:
    reg = Registry()
    reg.metric("models_time_ms", "trend", True)
    reg.metric("queue", "gauge")
    reg.metric("errors", "counter")
    ts = parse_thresholds({"models_time_ms": ["p(95)<2000"], "queue": ["value<5"],
                           "errors": ["count<1"]})
    lines = squash(render_summary(reg, ts.evaluate(reg, 1.0), None, 1.0))
    assert "? 'p(95)<2000' p(95)=n/a (no samples)" in lines
    assert "? 'value<5' value=n/a (no samples)" in lines
    assert "✓ 'count<1' count=0" in lines  # a counter that counted nothing is a real 0
    assert "models_time_ms: no samples" in lines and "queue: no samples" in lines
    assert not any("=0s" in line for line in lines)
    ts.strict = True
    strict = squash(render_summary(reg, ts.evaluate(reg, 1.0), None, 1.0))
    assert "✗ 'p(95)<2000' p(95)=n/a (no samples)" in strict
    assert "✓ 'count<1' count=0" in strict


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0s"), (0.0005, "500ns"), (0.34091, "340.91µs"), (12.5, "12.5ms"), (999.994, "999.99ms"),
     (1500, "1.5s"), (62000, "1m2s"), (3723000, "1h2m3s"), (-2, "-2ms")],
)
def test_humanize_duration(ms, text) -> None:
    assert humanize_duration(ms) == text


@pytest.mark.parametrize(
    ("count", "text"),
    [(5, "5 B"), (3440, "3.4 kB"), (80000, "80 kB"), (1_500_000, "1.5 MB"), (999, "999 B")],
)
def test_humanize_bytes(count, text) -> None:
    assert humanize_bytes(count) == text


def test_percent_truncates_like_k6() -> None:
    assert percent(0.99999) == "99.99%"
    assert percent(1.0) == "100.00%"
    assert percent(0.0) == "0.00%"


def test_parse_trend_stats() -> None:
    assert parse_trend_stats(["avg", " p(99.9) ", "count"]) == ("avg", "p(99.9)", "count")
    assert parse_trend_stats("med, p(99)") == ("med", "p(99)")  # the command line's form
    for bad in ("mean", "p(101)", "p95", 95):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_trend_stats([bad])
    for bad_list in ([], None, 95, {"avg": True}):
        with pytest.raises(ValueError):
            parse_trend_stats(bad_list)  # type: ignore[arg-type]


def test_check_tree_merges_tag_sets_of_one_check() -> None:
    reg = Registry()
    for scenario in ("a", "b"):
        reg.record(reg.builtin.checks, True,
                   tagset({"scenario": scenario, "group": "::g", "check": "ok"}))
    reg.record(reg.builtin.checks, False, tagset({"check": "ok"}))  # no group tag: root
    root = check_tree(reg)
    assert root.checks["ok"].fails == 1 and root.checks["ok"].path == "::ok"
    g = root.groups["g"]
    assert (g.path, g.checks["ok"].passes, g.checks["ok"].path) == ("::g", 2, "::g::ok")

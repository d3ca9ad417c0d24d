"""The HTML report of a benchmark: `bench` writes it beside its results file, `report`
draws it from that file; rendered in headless Chromium (a real short sweep against the
embedded simulator, and synthetic results with a saturated point and an SLO answer)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from chromium_helpers import Browser, assert_offline, chart_marks, chart_points, chromium_render
from cli_helpers import clean_env, run_cli

from indigo_loadtest.scenario.errors import ExitCode

SIMULATOR = {"INDIGO_SIM_SLOTS": "2", "INDIGO_SIM_TTFT_MS": "50",
             "INDIGO_SIM_TOKENS_PER_SEC": "100"}
SHORT = ("--input-tokens", "20", "--output-tokens", "10")


def bench(tmp_path: Path, *args: str, timeout: float = 60) -> Any:
    return run_cli("bench", "-q", "--no-summary", "--results-dir", str(tmp_path / "results"),
                   "--results-file", str(tmp_path / "bench.json"), *SHORT, *args,
                   cwd=tmp_path, env=clean_env(**SIMULATOR), timeout=timeout)


def row_of(dom: str, label: str) -> str:
    found = re.search(rf'<tr class="([^"]*)" data-point="{label}">(.*?)</tr>', dom)
    assert found, label
    return found.group(0)


def test_a_real_sweep_writes_a_report_with_points_in_every_chart(tmp_path: Path,
                                                                 chromium: Browser) -> None:
    res = bench(tmp_path, "--profile", "sweep", "--sweep-rates", "1", "-d", "1.5s",
                "--max-concurrency", "4", "--slo", "ttft:p99<2s")
    assert res.returncode == 0, res.stderr
    report = tmp_path / "bench.html"
    assert f"report written to {report}" in res.stderr
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert doc["verdict"] == {"exit_code": 0, "text": "passed"}
    assert doc["started_at"] < doc["ended_at"]
    html = report.read_text()
    assert_offline(html)
    dom = chromium_render(chromium, report, tmp_path / "bench.png")
    points = chart_points(dom)
    # throughput, tokens/s, goodput; TTFT, TPOT, ITL, E2EL vs offered and vs achieved
    assert len(points) == 11, points
    assert all(n >= 3 for n in points.values()), points  # 3 points, at least one line each
    for label in ("synchronous", "throughput", "rate-1"):
        assert 'data-v="no samples"' not in row_of(dom, label)
    assert "✓ passed" in dom and "jan-v1-4b" in dom
    marks = chart_marks(dom)
    assert "SLO ttft:p99<2s" in marks["sweep-3"]  # TTFT vs offered rate: its bound
    # `report` recognises the results file and draws the same page.
    again = run_cli("report", str(tmp_path / "bench.json"), "-o", str(tmp_path / "again.html"),
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.html").read_text() == html


def test_report_flags_of_bench(tmp_path: Path) -> None:
    res = bench(tmp_path, "--iterations", "2", "--report", "out/mine.html")
    assert res.returncode == 0, res.stderr
    assert "report written to out/mine.html" in res.stderr
    assert "<h1>Benchmark: jan-v1-4b</h1>" in (tmp_path / "out" / "mine.html").read_text()
    # the point's own run report goes beside its summary export, not over the benchmark's
    assert [p.suffix for p in (tmp_path / "out").iterdir()] == [".html"]
    assert len(list((tmp_path / "results").glob("llm-bench_*.html"))) == 1

    (tmp_path / "bench.json").unlink()
    res = bench(tmp_path, "--iterations", "2", "--no-report")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "bench.json").exists() and not (tmp_path / "bench.html").exists()
    assert "report written" not in res.stderr

    (tmp_path / "bench.json").unlink()
    res = bench(tmp_path, "--iterations", "2", "--report", "/proc/bench.html")
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert res.stderr.startswith("error: cannot write the report /proc/bench.html")
    assert not (tmp_path / "bench.json").exists()  # refused before any point ran


# --- synthetic results ------------------------------------------------------------------

def stats(p50: float | None) -> dict[str, Any]:
    if p50 is None:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "count": 0}
    return {"mean": p50, "p50": p50, "p90": 1.5 * p50, "p99": 2 * p50, "count": 40}


def point(label: str, profile: str, offered: float | None, achieved: float, ttft: float, *,
          meets: bool, saturated: str | None = None) -> dict[str, Any]:
    return {
        "label": label, "profile": profile, "offered_rate": offered, "concurrency_limit": 8,
        "duration_s": 10.0, "warmup_s": 0.0, "cooldown_s": 0.0, "requests": 40,
        "completed": 40, "failed": 0, "error_rate": 0.0, "request_rate": achieved,
        "output_tokens": 400.0, "prompt_tokens": 800.0, "output_throughput": 10 * achieved,
        "total_token_throughput": 30 * achieved, "mean_concurrency": 1.5,
        "max_concurrency": 3, "dropped": 0, "ttft_ms": stats(ttft),
        "tpot_ms": stats(None),  # no samples anywhere: said, never drawn as 0
        "itl_ms": stats(10.0), "e2el_ms": stats(ttft + 100),
        "schedule_delay_ms": stats(None), "token_counts": "usage",
        "goodput": achieved if meets else achieved / 2,
        "slo": [{"slo": "ttft:p99<500ms", "value": 2 * ttft, "ok": meets}],
        "meets_slo": meets, "exit_code": 0, "interrupted": False, "saturated": saturated,
    }


def results(mode: str, points: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"tool": "indigo-loadtest bench", "version": "0.1.0", "mode": mode,
            "spec": {"model": "synthetic-model", "endpoint": "chat", "stream": True,
                     "profile": "synchronous", "duration": "10s", "max_concurrency": 8},
            "workload": "synthetic: input 20 tokens, output 10 tokens, seed 0",
            "target": "http://user:secret@127.0.0.1:8000", "started_at": 1_700_000_000.0,
            "ended_at": 1_700_000_060.0, "verdict": {"exit_code": 0, "text": "passed"},
            "slos": ["ttft:p99<500ms"], "points": points, "knee": None, "max_rate": None,
            **extra}


def render(tmp_path: Path, doc: dict[str, Any], chromium: Browser) -> tuple[str, str]:
    src, out = tmp_path / "bench_x.json", tmp_path / "bench_x.html"
    src.write_text(json.dumps(doc))
    res = run_cli("report", str(src), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"report written to {out}" in res.stderr
    html = out.read_text()
    assert_offline(html)
    return html, chromium_render(chromium, out, tmp_path / "bench_x.png")


SATURATION = "median TTFT 700 ms, over 10x the unloaded 50 ms"


def test_a_search_with_a_saturated_point_states_its_answer_and_marks(
        tmp_path: Path, chromium: Browser) -> None:
    doc = results("find", [
        point("synchronous", "synchronous", None, 2.0, 50, meets=True),
        point("throughput", "throughput", None, 12.0, 900, meets=False),
        point("search-1", "poisson", 7.0, 6.9, 120, meets=True),
        point("search-2", "poisson", 9.5, 8.1, 700, meets=False, saturated=SATURATION),
        point("search-3", "poisson", 8.25, 8.2, 200, meets=True),
    ], max_rate={"max_rate": 8.25, "point": "search-3", "above": 9.5,
                 "above_point": "search-2", "uncertainty": 0.625,
                 "reason": "meets the SLO at 8.25/s, misses it at 9.5/s"})
    html, dom = render(tmp_path, doc, chromium)
    assert "secret" not in html  # the target's credentials are not shown
    assert ("The highest rate meeting the SLOs (ttft:p99&lt;500ms) is 8.25 req/s (search-3: "
            "offered 8.25 req/s, achieved 8.2 req/s over 40 requests); missed at 9.5 req/s "
            "(search-2: offered 9.5 req/s, achieved 8.1 req/s over 40 requests); ±0.62 is "
            "half the last bisection step, not a confidence interval") in dom
    assert ("Warning: search-3: ttft:p99&lt;500ms rests on 40 values, too few for a p99 "
            "(it needs 500") in dom
    assert f"search-2: over-saturated, stopped early ({SATURATION})" in dom
    row = row_of(dom, "search-2")
    assert row.startswith('<tr class="bad"') and "saturated, stopped early" in row
    # TPOT has no samples: a note in place of its charts and in its cells, never 0
    for vs in ("offered rate", "achieved throughput"):
        assert (f"<figcaption>TPOT (time per output token) vs {vs}</figcaption>"
                '<p class="nodata">no samples</p>') in dom
    assert row.count('<td data-v="">no samples</td>') == 2  # TPOT p50, p99
    points = chart_points(dom)
    assert len(points) == 9 and all(n >= 5 for n in points.values()), points
    marks = chart_marks(dom)
    for chart in ("sweep-0", "sweep-3"):  # request throughput and TTFT vs offered rate
        assert "max rate meeting the SLOs" in marks[chart]
        assert "search-2: saturated, stopped early" in marks[chart]
    assert "SLO ttft:p99<500ms" in marks["sweep-3"]


def test_a_sweep_marks_its_knee_and_brackets_the_slo_answer(tmp_path: Path,
                                                            chromium: Browser) -> None:
    doc = results("sweep", [
        point("synchronous", "synchronous", None, 2.0, 50, meets=True),
        point("throughput", "throughput", None, 12.0, 900, meets=False),
        point("rate-1", "poisson", 5.3, 5.2, 60, meets=True),
        point("rate-2", "poisson", 8.7, 8.5, 300, meets=False),
    ], knee=5.3)
    _, dom = render(tmp_path, doc, chromium)
    assert ("Knee: 5.3 req/s (rate-1); the next rate, 8.7 req/s (rate-2), did not keep up: "
            "median TTFT 300 ms, over 2x the unloaded 50 ms. The knee is the highest") in dom
    assert ("The highest rate meeting the SLOs (ttft:p99&lt;500ms) is 5.3 req/s, ± 1.7 "
            "req/s: met at 5.3 req/s (rate-1), missed at 8.7 req/s (rate-2)") in dom
    assert "judged: ttft:p99&lt;500ms over 40 values. Warning: rate-1:" in dom
    points = chart_points(dom)
    assert len(points) == 9 and all(n >= 4 for n in points.values()), points
    marks = chart_marks(dom)
    assert all("knee" in m and "max rate meeting the SLOs" in m for m in marks.values()), marks


@pytest.mark.parametrize("points", ["none", [{"label": "x"}], [{"label": "x", "ttft_ms": 5}]])
def test_a_damaged_results_file_is_one_line_not_a_traceback(tmp_path: Path,
                                                            points: Any) -> None:
    src = tmp_path / "bench.json"
    src.write_text(json.dumps({"tool": "indigo-loadtest bench", "mode": "sweep",
                               "points": points}))
    res = run_cli("report", str(src), cwd=tmp_path)
    assert "Traceback" not in res.stderr
    assert res.returncode == ExitCode.USAGE, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")

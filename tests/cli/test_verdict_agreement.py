"""Every verdict of `bench` and `compare` agrees with what was measured (docs/guarantees.md,
"Benchmarks and comparisons (audit)"): the real CLI against the embedded simulator and
small loopback servers, each case a way an artefact or an exit code said "passed" or
"within noise" when the measurement said otherwise."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cli_helpers import run_cli, serve_in_thread
from test_bench import bench, one_point
from test_bench_verdict import sse

from indigo_loadtest.scenario.errors import ExitCode

FAST = {"ttft_ms": "2", "tokens_per_sec": "0"}


def exported(tmp_path: Path, name: str = "run") -> tuple[dict[str, Any], dict[str, Any]]:
    """The summary export's verdict and the run record's, of the export `name`.json."""
    export = json.loads((tmp_path / f"{name}.json").read_text())
    record = json.loads(gzip.decompress((tmp_path / f"{name}.timeseries.json.gz")
                                        .read_bytes()))
    return export["indigo_verdict"], record["verdict"]


def chat_server(ttft_ms: Callable[[float], float]) -> web.Application:
    """A streamed chat answer of two tokens whose first comes after `ttft_ms(t)`, t the
    seconds since the server's first request."""
    first: list[float] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        if not first:
            first.append(now)
        await asyncio.sleep(ttft_ms(now - first[0]) / 1000)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunks = [{"choices": [{"index": 0, "delta": {"content": f" t{k}"}}]}
                  for k in range(2)]
        await resp.write(sse(*chunks, {"choices": [], "usage": {"completion_tokens": 2}}))
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


# --- 1. a single point's --slo is the verdict of every file of its run ------------------

@pytest.mark.parametrize("slo,code", [("ttft:p99<1ms", ExitCode.THRESHOLDS_FAILED),
                                      ("ttft:p99<10s", ExitCode.OK)])
def test_a_missed_slo_is_the_verdict_of_every_file(tmp_path: Path, slo: str,
                                                   code: int) -> None:
    """The bench exited 99 and its results file said so, but the point's summary export,
    run record and HTML report said "passed"."""
    proc, doc = bench(tmp_path, "--iterations", "3", "--output-tokens", "2", "--slo", slo,
                      "--summary-export", str(tmp_path / "run.json"), ttft_ms="30",
                      tokens_per_sec="0")
    assert proc.returncode == code, proc.stderr
    assert doc is not None
    export, record = exported(tmp_path)
    assert export["exit_code"] == record["exit_code"] == doc["verdict"]["exit_code"] == code
    assert export["passed"] is (code == ExitCode.OK)
    assert export["text"] == record["text"] == doc["verdict"]["text"]
    report = (tmp_path / "run.html").read_text()
    if code:
        missed = f"point synchronous misses the SLO: {slo}"
        assert export["text"] == f"failed (exit code 99): {missed}"
        assert export["errors"] == [missed]
        assert proc.stderr.splitlines().count(f"error: {missed}") == 1
        assert missed.replace("<", "&lt;") in report or missed in report
    else:
        assert export["text"] == "passed" and one_point(doc)["meets_slo"]


# --- 3. --threshold judges the samples the bench reports ----------------------------------

def test_thresholds_judge_the_steady_phase_as_the_figures_do(tmp_path: Path) -> None:
    """A server slow for its first 0.6 s (a cold start): the point's figures, between
    warm-up and cool-down, were fast, but the thresholds judged the warm-up too and
    failed the run."""
    app = chat_server(lambda t: 300.0 if t < 0.6 else 5.0)
    with serve_in_thread(app) as url:
        proc, doc = bench(tmp_path, "--base", url, "--model", "m", "-d", "3s",
                          "--warmup", "1s", "--threshold", "llm_ttft_ms=max<150",
                          "--threshold", "http_req_duration=max<150",
                          "--threshold", "vus_max=value<5",
                          "--summary-export", str(tmp_path / "run.json"))
    assert proc.returncode == 0, proc.stderr
    p = one_point(doc)
    assert p["completed"] > 10 and p["ttft_ms"]["p99"] < 150
    metrics = json.loads((tmp_path / "run.json").read_text())["metrics"]
    assert metrics["llm_ttft_ms"]["max"] >= 300  # the warm-up's, measured but not judged
    steady = metrics["llm_ttft_ms{bench_phase:steady}"]
    assert steady["thresholds"] == {"max<150": False} and steady["max"] < 150
    assert metrics["http_req_duration{bench_phase:steady}"]["thresholds"] == {
        "max<150": False}
    assert metrics["vus_max"]["thresholds"] == {"value<5": False}  # of the whole point


# --- 2. compare fails when the candidate's own run failed ---------------------------------

@pytest.fixture(scope="module")
def points(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Records of three real points: passed, failed its threshold, measured nothing."""
    tmp = tmp_path_factory.mktemp("points")
    runs = {"passed": ([], {}, 0), "crossed": (["--threshold", "llm_ttft_ms=max<1"], {}, 99),
            "nothing": ([], {"error_rate": "1"}, 113)}

    def one(name: str) -> Path:
        args, sim, code = runs[name]
        (tmp / name).mkdir()
        proc, _ = bench(tmp / name, "--iterations", "3", "--output-tokens", "2",
                        "--no-report", "--summary-export", str(tmp / f"{name}.json"), *args,
                        **{**FAST, **sim})
        assert proc.returncode == code, proc.stderr
        return tmp / f"{name}.json"

    with ThreadPoolExecutor(3) as pool:  # independent runs: side by side
        return dict(zip(runs, pool.map(one, runs), strict=True))


@pytest.mark.parametrize("candidate,code,verdict", [
    ("crossed", ExitCode.THRESHOLDS_FAILED, "failed: thresholds crossed"),
    ("nothing", ExitCode.NOTHING_MEASURED,
     "failed (exit code 113): no request completed in point synchronous"),
])
def test_compare_fails_with_a_candidate_that_failed_its_own_run(
        points: dict[str, Path], candidate: str, code: int, verdict: str) -> None:
    """The candidate's verdict was only shown in the header: exit 0 in CI."""
    proc = run_cli("compare", str(points["passed"]), str(points[candidate]), "--no-color",
                   cwd=points["passed"].parent)
    assert proc.returncode == code, proc.stdout + proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert errors == [f"error: the candidate run did not pass ({verdict}): compare exits "
                      f"with its exit code, {code}"]
    assert "llm_ttft_ms" in proc.stdout  # the comparison is still shown


def test_compare_passes_a_passed_candidate_against_a_failed_baseline(
        points: dict[str, Path]) -> None:
    proc = run_cli("compare", str(points["crossed"]), str(points["passed"]), "--no-color",
                   cwd=points["passed"].parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stderr


# --- 4. compare's noise test also judges the whole run ------------------------------------

def verdicts(stdout: str, metric: str) -> dict[str, str]:
    """{stat: the row's verdict} of `metric`'s rows in compare's table."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(rf"\s+{re.escape(metric)}\s+(med|p95|p99)\s.*?\s(worse|better|"
                     r"same|~ within noise)?$", line)
        if m:
            out[m[1]] = m[2] or ""
    return out


def test_a_tail_regression_in_a_few_intervals_is_worse(tmp_path: Path) -> None:
    """TTFT 10 ms, but 300 ms in 2 of 6 intervals: the whole run's p99 is many times the
    baseline's, its median the same. The per-interval test read "within noise": the two
    slow intervals widen its error as much as they move its mean. The two runs go side by
    side, so a busy machine slows both alike; its outliers in the baseline's tail widen
    that p99's error (read up to its max), so the regression is large (and 4 requests in
    flight give each run about a thousand samples, which narrows it): a baseline outlier
    under about 350 ms leaves it "worse"."""
    def run(name: str) -> Any:
        slow = name == "cand"
        app = chat_server(lambda t: 300.0 if slow and 2 <= t < 4 else 10.0)
        with serve_in_thread(app) as url:
            return bench(tmp_path / name, "--base", url, "--model", "m", "-d", "6s",
                         "--profile", "concurrency", "--vus", "4", "--no-report",
                         "--summary-export", str(tmp_path / f"{name}.json"))[0]

    for name in ("base", "cand"):
        (tmp_path / name).mkdir()
    with ThreadPoolExecutor(2) as pool:
        for proc in pool.map(run, ("base", "cand")):
            assert proc.returncode == 0, proc.stderr
    proc = run_cli("compare", str(tmp_path / "base.json"), str(tmp_path / "cand.json"),
                   "--no-color", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for metric in ("llm_ttft_ms", "http_req_duration"):
        rows = verdicts(proc.stdout, metric)
        assert rows["p99"] == "worse", proc.stdout

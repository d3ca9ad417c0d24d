"""The verdict of `bench` cannot be fooled (docs/guarantees.md, "Benchmarks and
comparisons (audit)"): the real CLI against the embedded simulator and small loopback
servers, each case a way it passed, met an SLO or hung when it should not have."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cli_helpers import serve_in_thread
from test_bench import bench, one_point

from indigo_loadtest.scenario.errors import ExitCode

FAST = {"ttft_ms": "2", "tokens_per_sec": "0"}  # the simulator answers at once



def terminated_after(proc: subprocess.Popen[str], delay: float) -> tuple[str, str]:
    """SIGTERM `delay` seconds after the start; its output once it has ended."""
    try:
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=30)
    finally:
        proc.kill()

def test_an_slo_is_judged_at_its_own_percentile(tmp_path: Path) -> None:
    """p95 (the documented example) and p99.9 were never computed: always missed."""
    proc, doc = bench(tmp_path, "--iterations", "6", "--output-tokens", "4",
                      "--slo", "e2el:p95<10s,ttft:p99.9<10s", **FAST)
    assert proc.returncode == 0, proc.stderr
    p = one_point(doc)
    assert [v["ok"] for v in p["slo"]] == [True, True] and p["meets_slo"]
    assert p["slo"][0]["value"] == p["e2el_ms"]["p95"] is not None
    assert "synchronous: meets the SLO" in proc.stdout


def test_failed_requests_miss_the_slo_and_fail_a_single_point(tmp_path: Path) -> None:
    """Half the requests answered 500: the point met the SLO on the others, exit 0."""
    proc, doc = bench(tmp_path, "--iterations", "10", "--output-tokens", "4",
                      "--slo", "ttft:p99<10s", error_rate="0.5", seed="1", **FAST)
    p = one_point(doc)
    assert 0 < p["failed"] < 10 and p["slo"][0]["ok"] and not p["meets_slo"]
    assert proc.returncode == ExitCode.THRESHOLDS_FAILED, proc.stderr
    line = f"error: point synchronous misses the SLO: {p['failed']} failed request(s)"
    assert line in proc.stderr.splitlines()
    assert doc is not None and doc["verdict"]["exit_code"] == ExitCode.THRESHOLDS_FAILED


def test_a_single_point_missing_its_slo_fails(tmp_path: Path) -> None:
    proc, doc = bench(tmp_path, "--iterations", "3", "--output-tokens", "2",
                      "--slo", "ttft:p99<1ms", ttft_ms="30", tokens_per_sec="0")
    assert proc.returncode == ExitCode.THRESHOLDS_FAILED, proc.stderr
    assert "error: point synchronous misses the SLO: ttft:p99<1ms" in proc.stderr
    assert not one_point(doc)["meets_slo"]


@pytest.mark.parametrize("args,message", [
    (["--no-stream", "--slo", "e2el:p99<5s,ttft:p99<1s"],
     "--slo ttft:p99<1s: --no-stream measures no TTFT, TPOT or ITL"),
    (["--profile", "constant", "--rate", "inf"], "--profile constant needs --rate above 0"),
    (["--profile", "gamma", "--rate", "5", "--burstiness", "nan"],
     "--burstiness: must be a finite number above 0"),
    (["--find", "max-rate", "--slo", "ttft:1s", "--fail-below", "nan"],
     "--fail-below: a rate of 0 or more"),
])
def test_flags_that_could_only_pass_are_refused(tmp_path: Path, args: list[str],
                                                message: str) -> None:
    """A TTFT SLO without streaming counted every request as good; --rate inf was a
    traceback; a NaN burstiness blamed the generated scenario; --fail-below nan never
    failed."""
    proc, doc = bench(tmp_path, *args)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert proc.stderr.startswith(f"error: {message}") and proc.stderr.count("\n") == 1
    assert doc is None


# --- a server that lies in its headers and usage ----------------------------------------

def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + \
        b"data: [DONE]\n\n"


async def lying_chat(request: web.Request) -> web.StreamResponse:
    """Three tokens, a usage of -5 and an infinite queue time."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "X-Queue-Time": request.query.get("q", "inf")})
    await resp.prepare(request)
    chunks = [{"choices": [{"index": 0, "delta": {"content": f" t{k}"}}]} for k in range(3)]
    await resp.write(sse(*chunks, {"choices": [], "usage": {"completion_tokens": -5}}))
    return resp


def test_a_lying_server_cannot_break_or_bend_the_figures(tmp_path: Path) -> None:
    """`X-Queue-Time: inf` broke the metric's sketch (a traceback per request, nothing
    completed); a negative usage gave a negative throughput. The API key and the
    password of the base URL stay out of every file."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", lying_chat)
    with serve_in_thread(app) as url:
        base = url.replace("http://", "http://user:base-pass-7781@")
        proc, doc = bench(tmp_path, "--base", base, "--model", "m", "--iterations", "3",
                          "--api-key", "sk-audit-4242")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    p = one_point(doc)
    assert (p["completed"], p["output_tokens"], p["token_counts"]) == (3, 9, "estimate")
    assert p["output_throughput"] > 0
    written = [f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()]
    for secret in (b"base-pass-7781", b"sk-audit-4242"):
        assert not any(secret in data for data in written), secret
    assert doc is not None and doc["target"].startswith("http://[MASKED]@127.0.0.1:")


def test_a_model_list_that_drips_cannot_hold_the_run(tmp_path: Path) -> None:
    """GET /v1/models answered one byte every 0.3 s: the lookup's timeout applied to each
    read only, so the run waited for ever before it started."""
    async def models(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for _ in range(1000):
            await resp.write(b" ")
            await asyncio.sleep(0.3)
        return resp

    app = web.Application()
    app.router.add_get("/v1/models", models)
    with serve_in_thread(app) as url:
        started = time.monotonic()
        proc, doc = bench(tmp_path, "--base", url, "--timeout", "1s", "--iterations", "1",
                          timeout=30)
    assert time.monotonic() - started < 15  # 1 s, plus the start of the CLI
    assert proc.returncode == ExitCode.INVALID_CONFIG
    assert proc.stderr.splitlines() == [f"error: {url}/v1/models: request timeout; give "
                                        "--model (and check --base / API_KEY)"]
    assert doc is None


@pytest.mark.parametrize("answer", [{}, {"choices": []}, {"choices": 5},
                                    {"choices": [{"message": {"content": ""}}]}])
def test_a_non_streamed_answer_with_nothing_in_it_is_a_failure(tmp_path: Path,
                                                              answer: Any) -> None:
    """200 and `{}` to every non-streamed request: all completed, the SLO met, exit 0."""
    async def chat(_: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    with serve_in_thread(app) as url:
        proc, doc = bench(tmp_path, "--base", url, "--model", "m", "--no-stream",
                          "--iterations", "2", "--slo", "e2el:p99<5s")
    assert proc.returncode == ExitCode.NOTHING_MEASURED, proc.stderr
    p = one_point(doc)
    assert (p["completed"], p["failed"], p["meets_slo"]) == (0, 2, False)


def test_an_interrupted_point_does_not_meet_the_slo(tmp_path: Path) -> None:
    """SIGTERM 3 s into a 20 s point: its results said 'meets the SLO'."""

    from cli_helpers import clean_env, cli_argv

    results = tmp_path / "bench.json"
    proc = subprocess.Popen(
        cli_argv("bench", "-q", "--no-summary", "-d", "20s", "--slo", "ttft:p99<10s",
                 "--output-tokens", "2", "--results-file", str(results), "--results-dir",
                 str(tmp_path)), cwd=tmp_path, env=clean_env(INDIGO_SIM_TTFT_MS="5"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = terminated_after(proc, 3)  # the simulator is up and requests are answered
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    p = one_point(json.loads(results.read_text()))
    assert p["interrupted"] and p["completed"] > 0 and p["slo"][0]["ok"]
    assert not p["meets_slo"]
    assert "synchronous: misses interrupted before its end" in out


def test_a_results_file_that_cannot_be_written_fails_the_run(tmp_path: Path) -> None:
    """A full disk at the end (/dev/full): a traceback, exit 1, no table, no report."""
    from cli_helpers import clean_env, run_cli

    report = tmp_path / "bench.html"
    proc = run_cli("bench", "-q", "--no-summary", "--results-dir", str(tmp_path),
                   "--results-file", "/dev/full", "--report", str(report), "--iterations",
                   "2", "--output-tokens", "2", cwd=tmp_path,
                   env=clean_env(INDIGO_SIM_TTFT_MS="2", INDIGO_SIM_TOKENS_PER_SEC="0"))
    assert proc.returncode == ExitCode.OUTPUT_FAILED, proc.stderr
    line = "error: cannot write the results file /dev/full: No space left on device"
    assert line in proc.stderr.splitlines() and "Traceback" not in proc.stderr
    assert "synchronous" in proc.stdout  # the table of the points measured
    assert "exit code 112): cannot write the results file" in report.read_text()


def test_a_signal_before_a_point_starts_is_not_lost(tmp_path: Path) -> None:
    """SIGTERM while the model is looked up (as between two points of a sweep, where no
    run's handler is installed): the process died of it, with no results file."""

    from cli_helpers import clean_env, cli_argv

    async def models(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"data": [{"id": "m"}]})

    async def chat(_: web.Request) -> web.Response:
        chunk = {"choices": [{"index": 0, "delta": {"content": "x"}}]}
        return web.Response(body=sse(chunk), content_type="text/event-stream")

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    results = tmp_path / "bench.json"
    with serve_in_thread(app) as url:
        proc = subprocess.Popen(
            cli_argv("bench", "-q", "--no-summary", "--base", url, "-d", "20s",
                     "--results-file", str(results), "--results-dir", str(tmp_path)),
            cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        _, err = terminated_after(proc, 1.2)  # the CLI is up and waiting for /v1/models
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    p = one_point(json.loads(results.read_text()))
    assert p["interrupted"]  # stopped at once, not after its 20 s
    assert p["duration_s"] is None or p["duration_s"] < 5


def test_a_conversation_that_cannot_be_created_counts_with_a_warmup(tmp_path: Path) -> None:
    """--endpoint conv --multi-turn: a failed POST /v1/conversations was recorded without
    the phase tag, so with --warmup the point's figures (the steady phase) missed every
    such failure: no error, the SLO met."""
    async def no_conversation(_: web.Request) -> web.Response:
        return web.Response(status=500)

    async def chat(_: web.Request) -> web.Response:
        chunk = {"choices": [{"index": 0, "delta": {"content": "x"}}]}
        return web.Response(body=sse(chunk), content_type="text/event-stream")

    dataset = tmp_path / "talks.json"
    turns = [{"from": f, "value": v} for f, v in
             (("human", "hi"), ("gpt", "hello there"), ("human", "and?"), ("gpt", "so"))]
    dataset.write_text(json.dumps([{"conversations": turns}] * 3))
    app = web.Application()
    app.router.add_post("/v1/conversations", no_conversation)
    app.router.add_post("/v1/conv/chat/completions", chat)
    with serve_in_thread(app) as url:
        proc, doc = bench(tmp_path, "--base", url, "--model", "m", "--endpoint", "conv",
                          "--multi-turn", "--dataset", str(dataset), "-d", "1.5s",
                          "--warmup", "0.2s", "--slo", "e2el:p99<5s")
    p = one_point(doc)
    assert p["failed"] > 0 and p["completed"] == 0 and not p["meets_slo"]
    assert proc.returncode == ExitCode.NOTHING_MEASURED, proc.stderr


@pytest.mark.parametrize("odd", [{"choices": 5},
                                 {"choices": [{"delta": {"content": "y", "tool_calls": 5}}]},
                                 {"type": "response.completed", "response": "done"}])
def test_an_event_of_an_unexpected_shape_fails_its_request(tmp_path: Path,
                                                           odd: dict[str, Any]) -> None:
    """One stream in two carried such an event: the meter raised, the iteration ended
    uncounted, and the point met the SLO on the others with exit 0."""
    served = []

    async def chat(_: web.Request) -> web.Response:
        served.append(1)
        good = {"choices": [{"index": 0, "delta": {"content": "x"}}]}
        events = [good, odd, good] if len(served) % 2 else [good, good]
        return web.Response(body=sse(*events), content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    with serve_in_thread(app) as url:
        proc, doc = bench(tmp_path, "--base", url, "--model", "m", "--iterations", "4",
                          "--slo", "ttft:p99<5s")
    assert "error in scenario" not in proc.stderr and "Traceback" not in proc.stderr
    p = one_point(doc)
    assert (p["requests"], p["completed"], p["failed"], p["meets_slo"]) == (4, 2, 2, False)
    assert proc.returncode == ExitCode.THRESHOLDS_FAILED, proc.stderr


def test_a_sweep_killed_midway_keeps_the_points_it_measured(tmp_path: Path) -> None:
    """SIGKILL cannot be caught: the results file was written only at the end, so a
    sweep killed after some points (the OOM killer, a CI runner) left none of them."""

    from cli_helpers import clean_env, cli_argv

    results = tmp_path / "bench.json"
    proc = subprocess.Popen(
        cli_argv("bench", "-q", "--no-summary", "--profile", "sweep", "-d", "1s",
                 "--output-tokens", "2", "--results-file", str(results), "--results-dir",
                 str(tmp_path)), cwd=tmp_path,
        env=clean_env(INDIGO_SIM_TTFT_MS="5", INDIGO_SIM_TOKENS_PER_SEC="0"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not whole_json(results) and time.monotonic() < deadline:
            time.sleep(0.05)  # the first point's end
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    doc = json.loads(results.read_text())
    assert doc["points"][0]["label"] == "synchronous" and doc["points"][0]["completed"] > 0
    assert doc["verdict"]["exit_code"] is None
    assert doc["verdict"]["text"].startswith("incomplete: written after point ")


def whole_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True

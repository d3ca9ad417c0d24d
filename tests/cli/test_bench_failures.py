"""A benchmark that mostly fails does not pass, and says why (docs/benchmark.md, "When
requests fail"): the real CLI against small loopback servers and the embedded simulator."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from cli_helpers import clean_env, run_cli, serve_in_thread
from test_bench import bench, one_point

from indigo_loadtest.scenario.errors import ExitCode

SECRET = "bench-failures-secret-4f9a1c"
FOREIGN_KEY = "sk-proj-0123456789abcdefABCDEF"  # a key the server quotes, not ours
CHUNK = {"choices": [{"delta": {"content": "hi"}}]}


def sse_answer() -> web.Response:
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in (CHUNK, CHUNK))
    return web.Response(body=body + b"data: [DONE]\n\n", content_type="text/event-stream")


def refusing_app(status: int, every: int) -> web.Application:
    """Answers `status` to one request in `every` (1: all), its error body echoing the
    bearer it was sent (a server that quotes the key must not leak it through us)."""
    count = itertools.count()

    async def chat(request: web.Request) -> web.Response:
        if next(count) % every == 0:
            echoed = request.headers.get("Authorization", "")
            key = echoed.removeprefix("Bearer ")
            message = f"refused ({echoed}): key {key}, not {FOREIGN_KEY}"
            return web.json_response({"error": {"message": message}}, status=status)
        return sse_answer()

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def run_against(tmp_path: Path, app: web.Application, *args: str) -> tuple[Any, dict | None]:
    with serve_in_thread(app) as url:
        return bench(tmp_path, "--base", url, "--model", "m", "--api-key", SECRET, *args)


def assert_no_secret(tmp_path: Path, proc: Any) -> None:
    for secret in (SECRET, FOREIGN_KEY):
        assert secret not in proc.stdout + proc.stderr
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret not in path.read_text(errors="replace"), path


def test_half_the_requests_refused_fails_the_run_and_says_why(tmp_path: Path) -> None:
    """Before: exit 0, verdict passed, no status anywhere."""
    proc, doc = run_against(tmp_path, refusing_app(503, 2), "--iterations", "20")
    assert proc.returncode == ExitCode.TOO_MANY_FAILURES, proc.stderr
    p = one_point(doc)
    assert (p["failed"], p["requests"]) == (10, 20)
    assert p["failures"]["statuses"] == {"503": 10}
    assert p["failures"]["reasons"] == {"http_status": 10}
    sample = p["failures"]["sample"]
    assert sample["status"] == "503" and sample["text"].startswith('{"error"')
    assert doc["verdict"]["exit_code"] == ExitCode.TOO_MANY_FAILURES
    assert "10 of 20 requests failed (50.0%)" in doc["verdict"]["text"]
    assert "HTTP 503 ×10" in proc.stdout and "e.g. HTTP 503: {" in proc.stdout
    report = Path(str(tmp_path / "bench.json")).with_suffix(".html").read_text()
    assert "HTTP 503 ×10" in report and "10 of 20 failed" in report  # answer, state
    assert "Traceback" not in proc.stderr
    assert_no_secret(tmp_path, proc)


def test_the_bound_is_an_option(tmp_path: Path) -> None:
    proc, doc = run_against(tmp_path, refusing_app(503, 2), "--iterations", "20",
                            "--max-error-rate", "0.5", "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert one_point(doc)["failures"]["statuses"] == {"503": 10}  # still said
    proc, _ = run_against(tmp_path, refusing_app(503, 2), "--iterations", "2",
                          "--max-error-rate", "1.5")
    assert proc.returncode == ExitCode.USAGE and "--max-error-rate" in proc.stderr


def test_all_unauthorized_sweep_stops_after_its_first_point(tmp_path: Path) -> None:
    """Before: no status anywhere, and the sweep went on to its 256-VU point."""
    proc, doc = run_against(tmp_path, refusing_app(401, 1), "--profile", "sweep", "-d", "1s",
                            "--no-report")
    assert proc.returncode == ExitCode.NOTHING_MEASURED, proc.stderr
    assert doc is not None and [p["label"] for p in doc["points"]] == ["synchronous"]
    assert set(doc["points"][0]["failures"]["statuses"]) == {"401"}
    hints = [x for x in proc.stdout.splitlines() if "hint:" in x]
    assert len(hints) == 1 and "API_KEY" in hints[0] and "--api-key" in hints[0]
    assert "every request of point synchronous failed: the sweep stops there" in proc.stderr
    assert_no_secret(tmp_path, proc)


def test_a_wrong_model_stops_early_with_its_reason(tmp_path: Path) -> None:
    """The embedded simulator answers 404 for a model it does not serve: every request
    of the first 2 s failed alike, so the 20 s point stops there (the bound, 10 s, leaves
    the early stop 8 s of a busy machine's lateness)."""
    proc, doc = bench(tmp_path, "--model", "no-such-model", "-d", "20s", "--no-report",
                      timeout=90, ttft_ms="2", tokens_per_sec="0")
    assert proc.returncode == ExitCode.NOTHING_MEASURED, proc.stderr
    p = one_point(doc)
    assert p["stopped_early"] and "HTTP 404" in p["stopped_early"]
    assert p["duration_s"] is not None and p["duration_s"] < 10
    assert "model_not_found" in p["failures"]["sample"]["text"]
    early = [x for x in proc.stdout.splitlines() if "stopped early" in x]
    assert len(early) == 1 and "the same way: HTTP 404" in early[0]


def test_a_point_with_some_successes_is_not_stopped_early(tmp_path: Path) -> None:
    proc, doc = run_against(tmp_path, refusing_app(503, 2), "-d", "3s", "--no-report",
                            "--max-error-rate", "1")
    assert proc.returncode == 0, proc.stderr
    p = one_point(doc)
    assert p["stopped_early"] is None and p["completed"] > 0


def test_the_benchmark_doc_example_runs_as_written(workdir: Path) -> None:
    """Before: every request 401 against the embedded simulator unless API_KEY was set."""
    from cli_helpers import REPO, write_scenario
    from test_doc_examples import python_block_after

    code = python_block_after(REPO / "docs" / "benchmark.md", "## From a scenario file")
    write_scenario(workdir, "my-bench", code)
    env = clean_env()
    env.pop("API_KEY", None)
    res = run_cli("run", "my-bench", "-q", "--summary-export", "out.json", cwd=workdir,
                  env=env)
    assert res.returncode == 0, res.stderr
    metrics = json.loads((workdir / "out.json").read_text())["metrics"]
    assert metrics["checks"]["fails"] == 0 and metrics["checks"]["passes"] > 3
    assert metrics["llm_request_failed"]["passes"] == 0

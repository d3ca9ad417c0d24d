"""`bench` and `run` against a real vLLM server (CPU build, a tiny random Llama built in
the session: vllm_server.py). Each test is a few short runs; the server's own counters
(/metrics) are the control the client's figures are checked against."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import clean_env, run_cli, write_scenario
from vllm_server import MODEL_NAME, START_TIMEOUT_S

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(START_TIMEOUT_S + 180)]

OUT = 8  # every answer runs to max_tokens: the model never draws a stop token


def server_counts(url: str) -> tuple[float, float, float]:
    """vLLM's own totals: prompt tokens, generated tokens, finished requests."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()

    def total(name: str) -> float:
        return sum(float(m) for m in re.findall(rf"^vllm:{name}\{{[^}}]*\}} (\S+)$", text, re.M))
    return total("prompt_tokens_total"), total("generation_tokens_total"), \
        total("request_success_total")


def bench(url: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """One `bench` run (model from /v1/models); its point, checked against the server's
    counters over the same run."""
    results = tmp_path / "bench.json"
    before = server_counts(url)
    proc = run_cli("bench", "-q", "--no-summary", "--base", url, "--results-dir",
                   str(tmp_path), "--results-file", str(results), "--input-tokens", "16",
                   "--output-tokens", str(OUT), *args, cwd=tmp_path, env=clean_env(),
                   timeout=90)
    after = server_counts(url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(results.read_text())
    point = doc["points"][-1]
    point["points"] = len(doc["points"])
    prompt, generated, finished = (a - b for a, b in zip(after, before, strict=True))
    n = sum(p["completed"] for p in doc["points"])
    assert finished == n and all(p["failed"] == 0 for p in doc["points"])
    assert sum(p["output_tokens"] for p in doc["points"]) == generated == n * OUT
    # The prompt as the server counted it, its chat template included (was the workload's
    # count of the text alone: 144 against the server's 154).
    assert sum(p["prompt_tokens"] for p in doc["points"]) == prompt
    assert (point["token_counts"], point["prompt_token_counts"]) == ("usage", "usage")
    assert MODEL_NAME in results.read_text()  # found in /v1/models: no --model given
    point["stdout"] = proc.stdout
    return point


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_bench_streams_with_usage(vllm_url: str, tmp_path: Path, endpoint: str) -> None:
    """Model detection, streamed chat and responses with usage, TTFT/ITL measured."""
    p = bench(vllm_url, tmp_path, "--endpoint", endpoint, "--iterations", "3")
    assert p["completed"] == 3 and p["ttft_ms"]["count"] == 3
    assert p["itl_ms"]["count"] > 0
    assert "tokens: output from usage, prompt from usage" in p["stdout"]


def test_tokenizer_sizes_prompts_as_the_server_counts_them(vllm_url: str, tmp_path: Path,
                                                           vllm_model_dir: Path) -> None:
    """--tokenizer with the model's own tokenizer.json: /v1/completions has no chat
    template, so every prompt is exactly the 16 tokens asked for, by the server's count."""
    p = bench(vllm_url, tmp_path, "--endpoint", "completions", "--iterations", "3",
              "--tokenizer", str(vllm_model_dir / "tokenizer.json"))
    assert p["prompt_tokens"] == 3 * 16


def test_a_sweep(vllm_url: str, tmp_path: Path) -> None:
    """A sweep's three points (synchronous, throughput, one rate between them), every
    request sent answered, the rate point open-loop (each request scheduled)."""
    p = bench(vllm_url, tmp_path, "--profile", "sweep", "--sweep-rates", "1", "-d", "2s",
              "--max-concurrency", "8", "--seed", "1")
    assert p["points"] == 3 and p["label"] == "rate-1"
    assert p["completed"] > 0 and p["schedule_delay_ms"]["count"] == p["requests"]


def test_bench_in_two_worker_processes(vllm_url: str, tmp_path: Path) -> None:
    """--workers 2: both shards' requests in one point, as the server counted them."""
    p = bench(vllm_url, tmp_path, "--profile", "concurrency", "--vus", "2",
              "--iterations", "4", "--workers", "2")
    assert p["completed"] == 4


SCENARIO = """
from indigo_loadtest import check
from indigo_loadtest.llm import measure_stream

options = {"vus": 1, "iterations": 3,
           "thresholds": {"llm_ttft_ms": ["p(95)<60000"], "checks": ["rate==1"]}}

async def default(vu):
    resp = await vu.http.post(vu.env["BASE"] + "/v1/chat/completions", json={
        "model": "MODEL", "stream": True, "max_tokens": OUT,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hello there"}]}, stream=True)
    res = await measure_stream(resp)
    check(res, {"200": lambda r: resp.status == 200, "completed": lambda r: r.completed,
                "all tokens": lambda r: r.output_tokens == OUT and r.usage_tokens})
""".replace("MODEL", MODEL_NAME).replace("OUT", str(OUT))


def test_run_scenario_measures_the_stream(vllm_url: str, tmp_path: Path) -> None:
    """A `run` scenario with measure_stream, checks and a threshold on llm_ttft_ms (which
    was an unknown metric unless the scenario called LLMMetrics() itself)."""
    (tmp_path / "scenarios").mkdir()
    path = write_scenario(tmp_path, "vllm_stream", SCENARIO)
    summary = tmp_path / "summary.json"
    proc = run_cli("run", str(path), "--summary-export", str(summary), cwd=tmp_path,
                   env=clean_env(BASE=vllm_url), timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads(summary.read_text())["metrics"]
    assert metrics["checks"]["passes"] == 9 and metrics["checks"]["fails"] == 0
    assert metrics["llm_output_tokens"]["avg"] == OUT

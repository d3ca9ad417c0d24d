"""What misled against real inference servers (issue 25 §2), each against a small loopback
server streaming as vLLM does: a role-only first chunk, an empty chunk mid-stream, chunks
of several words, no usage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from bench_helpers import make_tokenizer
from cli_helpers import clean_env, run_cli, serve_in_thread
from test_bench import bench as sim_bench
from test_bench import one_point

# Two content chunks of two words each, an empty chunk between them (vLLM sends those when
# a token decodes to no text yet), no usage.
CHUNKS = ({"role": "assistant", "content": ""}, {"content": "hello world"}, {"content": ""},
          {"content": " hello world"})
ITERATIONS = 2


@pytest.fixture(scope="module")
def vllm_like() -> Iterator[str]:
    async def chat(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for delta in CHUNKS:
            chunk = {"choices": [{"index": 0, "delta": delta}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    with serve_in_thread(app) as url:
        yield url


def bench(tmp_path: Path, url: str, *args: str, **env: str) -> tuple[Any, dict[str, Any]]:
    results = tmp_path / "bench.json"
    proc = run_cli("bench", "-q", "--no-summary", "--results-dir", str(tmp_path),
                   "--results-file", str(results), "--base", url, "--model", "m",
                   "--iterations", str(ITERATIONS), "--input-tokens", "8", *args,
                   cwd=tmp_path, env=clean_env(**env))
    assert proc.returncode == 0, proc.stderr
    return proc, one_point(json.loads(results.read_text()))


def test_the_output_estimate_says_it_counts_content_chunks(tmp_path: Path,
                                                           vllm_like: str) -> None:
    proc, p = bench(tmp_path, vllm_like)
    assert p["token_counts"] == "estimate"
    assert p["output_tokens"] == ITERATIONS * 2  # two content chunks, four words
    # was "ESTIMATE (one per word: ...)" for an output counted per chunk
    assert "  tokens: ESTIMATE (output: one per content chunk, prompt: one per word: " \
        "the server sent no usage and no --tokenizer was given)\n" in proc.stdout
    assert "output: one per content chunk" in (tmp_path / "bench.html").read_text()


def test_the_tokenizer_may_be_a_model_folder(tmp_path: Path, vllm_like: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    make_tokenizer(model)
    _, p = bench(tmp_path, vllm_like, "--tokenizer", str(model))  # was: no such file
    assert (p["token_counts"], p["prompt_token_counts"]) == ("tokenizer", "tokenizer")
    assert p["output_tokens"] == ITERATIONS * 4  # the tokenizer's: a token per word here

    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("bench", "--tokenizer", str(empty), "--iterations", "1", cwd=tmp_path,
                   env=clean_env())
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: --tokenizer {empty}: the folder holds no " \
        "tokenizer.json"


@pytest.mark.parametrize("pure", ["0", "1"], ids=["compiled", "pure-python"])
def test_itl_per_chunk_takes_vllms_gaps(tmp_path: Path, vllm_like: str, pure: str) -> None:
    _, ours = bench(tmp_path, vllm_like, INDIGO_PURE_PYTHON=pure)
    _, theirs = bench(tmp_path, vllm_like, "--itl-per-chunk", INDIGO_PURE_PYTHON=pure)
    assert ours["itl_ms"]["count"] == ITERATIONS * 1  # one gap per non-empty chunk
    # a gap per chunk from the first token on: to the empty one, then to the next
    assert theirs["itl_ms"]["count"] == ITERATIONS * 2
    # TTFT and the output count stay the first token's and the content chunks'
    assert theirs["ttft_ms"]["count"] == ours["ttft_ms"]["count"] == ITERATIONS
    assert theirs["output_tokens"] == ours["output_tokens"] == ITERATIONS * 2


def test_http_debug_help_and_behaviour_agree(tmp_path: Path) -> None:
    helped = run_cli("run", "--help", cwd=tmp_path, env=clean_env())
    assert "--http-debug [full]" not in helped.stdout  # the help showed a space form
    assert "(--http-debug=full: the bodies too" in " ".join(helped.stdout.split())
    for mode in ("full", "headers"):
        proc = run_cli("run", "--http-debug", mode, cwd=tmp_path, env=clean_env())
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"the mode takes '=' (--http-debug={mode}" in lines[0]
    proc = run_cli("run", "--http-debug=bodies", "x", cwd=tmp_path, env=clean_env())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--http-debug='bodies': expected nothing or 'full'" in proc.stderr


def test_an_open_loop_point_shows_the_rate_its_arrivals_came_to(tmp_path: Path) -> None:
    # A short Poisson point: the seed's arrivals, not the nominal rate, are what was sent.
    proc, doc = sim_bench(tmp_path, "--profile", "poisson", "--rate", "15", "-d", "1s",
                          "--output-tokens", "2", "--seed", "3", ttft_ms="5",
                          tokens_per_sec="0")
    assert proc.returncode == 0, proc.stderr
    p = one_point(doc)
    assert p["offered_rate"] == 15 and p["failed"] == 0
    assert p["sent_rate"] == pytest.approx(p["requests"] / p["duration_s"])
    assert f" 15 (sent {p['sent_rate']:.3g})→{p['request_rate']:.2f}" in proc.stdout
    assert f"15 (sent {p['sent_rate']:.3g})" in (tmp_path / "bench.html").read_text()

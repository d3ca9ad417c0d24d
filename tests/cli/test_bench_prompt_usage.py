"""Prompt tokens are the server's `usage.prompt_tokens` when it sends one (a chat
template's tokens included, as vLLM counted 154 where the prompt text had 144), and each
count says where it came from (issue 25 §2). A small loopback server streams the usage."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp import web
from cli_helpers import serve_in_thread
from test_bench import bench, one_point

TEMPLATE = 7  # the tokens a chat template adds around each prompt, by the server's count


def usage_server(prompt_usage: bool) -> web.Application:
    """Answers two tokens; its usage counts the prompt's words plus TEMPLATE."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        words = sum(len(m["content"].split()) for m in body["messages"])
        usage = {"completion_tokens": 2, **({"prompt_tokens": words + TEMPLATE}
                                            if prompt_usage else {})}
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in ({"choices": [{"delta": {"content": "a"}}]},
                      {"choices": [{"delta": {"content": " b"}}]},
                      {"choices": [], "usage": usage}):
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def run(tmp_path: Path, prompt_usage: bool) -> tuple[str, dict]:
    with serve_in_thread(usage_server(prompt_usage)) as url:
        proc, doc = bench(tmp_path, "--base", url, "--model", "m", "--iterations", "3",
                          "--input-tokens", "10", "--output-tokens", "2")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, one_point(doc)


def test_prompt_tokens_are_the_servers_usage(tmp_path: Path) -> None:
    out, p = run(tmp_path, prompt_usage=True)
    assert p["prompt_tokens"] == 3 * (10 + TEMPLATE)  # was 3 * 10, the text's estimate
    assert (p["token_counts"], p["prompt_token_counts"]) == ("usage", "usage")
    assert p["total_token_throughput"] == (p["prompt_tokens"] + p["output_tokens"]) \
        / p["duration_s"]
    assert "  tokens: output from usage, prompt from usage\n" in out


def test_a_prompt_the_server_did_not_count_is_labelled_an_estimate(tmp_path: Path) -> None:
    out, p = run(tmp_path, prompt_usage=False)
    assert p["prompt_tokens"] == 3 * 10
    assert (p["token_counts"], p["prompt_token_counts"]) == ("usage", "estimate")
    assert "  tokens: output from usage, prompt from estimate; prompt tokens: ESTIMATE (one " \
        "per word: the server sent no usage.prompt_tokens and no --tokenizer was given), so " \
        "is the total token throughput\n" in out
    assert "Prompt tokens: ESTIMATE" in (tmp_path / "bench.html").read_text()

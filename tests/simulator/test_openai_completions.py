"""The official `openai` client's `completions.create` (the legacy text completions API,
POST /v1/completions) against the simulator: whole and streamed answers, usage, the
latency overrides and faults, and 400s in OpenAI's error shape."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from sim_helpers import API_KEY, FAST

from indigo_loadtest.simulator import textgen

MODEL = "jan-v1-4b"
PROMPT = "Once upon a time a load test"
PROMPT_TOKENS = len(textgen.pieces(PROMPT))


def test_whole_completion_is_a_text_completion_with_usage(oai: openai.OpenAI) -> None:
    done = oai.completions.create(model=MODEL, prompt=PROMPT, max_tokens=5)
    assert done.object == "text_completion" and done.id.startswith("cmpl-")
    assert done.model == MODEL
    (choice,) = done.choices
    assert (choice.index, choice.logprobs, choice.finish_reason) == (0, None, "length")
    assert len(textgen.pieces(choice.text)) == 5
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens,
            done.usage.total_tokens) == (PROMPT_TOKENS, 5, PROMPT_TOKENS + 5)


def test_reply_shorter_than_max_tokens_stops(oai: openai.OpenAI) -> None:
    done = oai.completions.create(model=MODEL, prompt=PROMPT, max_tokens=100)
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.completion_tokens == FAST["reply_tokens"]


def test_max_tokens_defaults_to_16_as_openais(oai: openai.OpenAI) -> None:
    done = oai.completions.create(model=MODEL, prompt=PROMPT,
                                  extra_headers={"X-Sim-Reply-Tokens": "40"})
    assert done.choices[0].finish_reason == "length"
    assert done.usage is not None and done.usage.completion_tokens == 16


def test_streamed_text_chunks_and_usage_agree(oai: openai.OpenAI) -> None:
    stream = oai.completions.create(model=MODEL, prompt=PROMPT, max_tokens=7, stream=True,
                                    stream_options={"include_usage": True})
    texts, finishes, usage, objects = [], [], None, set()
    for chunk in stream:
        objects.add(chunk.object)
        if chunk.usage is not None:
            usage = chunk.usage
            assert chunk.choices == []  # the usage chunk carries no choice
        for choice in chunk.choices:
            assert choice.logprobs is None
            if choice.text:
                texts.append(choice.text)
                assert chunk.usage is None  # usage: null on every text chunk
            finishes.append(choice.finish_reason)
    assert objects == {"text_completion"}
    assert len(texts) == 7 and textgen.pieces("".join(texts)) == texts  # one token a chunk
    assert [f for f in finishes if f] == ["length"] and finishes[-1] == "length"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, 7)


def test_stream_without_include_usage_has_none(oai: openai.OpenAI) -> None:
    chunks = list(oai.completions.create(model=MODEL, prompt=PROMPT, max_tokens=3,
                                         stream=True))
    assert all(c.usage is None for c in chunks)
    assert sum(bool(c.choices[0].text) for c in chunks) == 3
    assert chunks[-1].choices[0].finish_reason == "length"


@pytest.mark.parametrize("prompt,tokens", [
    (["one two three four"], 4),  # a one-element list
    ([101, 7, 2023, 5, 9], 5),  # token ids, one token each
    ([[101, 7]], 2),
])
def test_prompt_as_a_list(oai: openai.OpenAI, prompt: Any, tokens: int) -> None:
    done = oai.completions.create(model=MODEL, prompt=prompt, max_tokens=2)
    assert done.usage is not None and done.usage.prompt_tokens == tokens


def test_stream_paces_tokens_as_the_overrides_say(oai: openai.OpenAI) -> None:
    # First token 150 ms after the request, then one every 25 ms (X-Sim-* headers).
    start = time.perf_counter()
    times = []
    for chunk in oai.completions.create(
            model=MODEL, prompt=PROMPT, max_tokens=5, stream=True,
            extra_headers={"X-Sim-TTFT-Ms": "150", "X-Sim-Tokens-Per-Sec": "40"}):
        if chunk.choices and chunk.choices[0].text:
            times.append(time.perf_counter() - start)
    assert len(times) == 5
    # Token deadlines run from the slot grant and are never missed early by more than
    # the simulator's 0.3 ms aim (lateness only adds); the settings' own timings
    # (5 ms, 2000 tokens/s) would end the whole stream within a few ms.
    assert times[0] >= 0.150 - 0.001
    assert times[-1] >= 0.150 + 4 * 0.025 - 0.002


@pytest.mark.parametrize("kwargs,param", [
    ({"n": 2}, "n"),
    ({"echo": True}, "echo"),
    ({"logprobs": 2}, "logprobs"),
    ({"temperature": 2.5}, "temperature"),
    ({"prompt": ["first prompt", "second prompt"]}, "prompt"),
])
def test_unsupported_options_are_400_in_openais_shape(oai: openai.OpenAI,
                                                      kwargs: dict[str, Any],
                                                      param: str) -> None:
    args = {"model": MODEL, "prompt": PROMPT, **kwargs}
    with pytest.raises(openai.BadRequestError) as info:
        oai.completions.create(**args)
    error = info.value.response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"] and error["code"] == "invalid_request"


def test_auth_model_and_faults_answer_in_openais_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        oai.with_options(api_key="not-a-jwt").completions.create(model=MODEL, prompt=PROMPT)
    with pytest.raises(openai.NotFoundError) as missing:
        oai.completions.create(model="no-such-model", prompt=PROMPT)
    with pytest.raises(openai.RateLimitError) as limited:
        oai.completions.create(model=MODEL, prompt=PROMPT,
                               extra_headers={"X-Sim-Fault": "rate_limit"})
    with pytest.raises(openai.InternalServerError) as failed:
        oai.completions.create(model=MODEL, prompt=PROMPT, stream=True,
                               extra_headers={"X-Sim-Fault": "error"})
    codes = {401: "unauthorized", 404: "model_not_found", 429: "rate_limit_exceeded",
             500: "internal_error"}
    for info in (auth, missing, limited, failed):
        exc = info.value
        error = exc.response.json()["error"]
        assert error["code"] == codes[exc.status_code]
        assert error["type"] == ("server_error" if exc.status_code == 500
                                 else "invalid_request_error")
    assert limited.value.response.headers["Retry-After"] == "1"


def test_api_key_works_as_for_chat(sim: Any) -> None:
    client = openai.OpenAI(base_url=sim.url + "/v1", api_key=API_KEY, max_retries=0,
                           http_client=openai.DefaultHttpxClient(trust_env=False))
    with client:
        done = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=2)
    assert done.usage is not None and done.usage.completion_tokens == 2

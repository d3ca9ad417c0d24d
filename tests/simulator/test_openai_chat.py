"""The official `openai` client against the simulator: chat, streaming, tools, errors."""

from __future__ import annotations

import json

import openai
import pytest
from sim_helpers import FAST

from indigo_loadtest.simulator import textgen

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "google_search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {
            "q": {"type": "string"}, "num": {"type": "integer"}}, "required": ["q"]},
    },
}


def test_models_list_has_the_default_model(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert ids[0] == "jan-v1-4b"
    assert len(ids) >= 3


def test_non_streaming_completion(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(
        model="jan-v1-4b", messages=[{"role": "user", "content": "Explain load tests"}])
    choice = done.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert done.usage is not None
    assert done.usage.completion_tokens == FAST["reply_tokens"]
    assert len(textgen.pieces(choice.message.content or "")) == FAST["reply_tokens"]
    assert done.usage.prompt_tokens == 3
    assert done.usage.total_tokens == 3 + FAST["reply_tokens"]


def test_max_tokens_cuts_the_reply(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(
        model="jan-v1-4b", max_tokens=4, messages=[{"role": "user", "content": "hello"}])
    assert done.choices[0].finish_reason == "length"
    assert done.usage is not None and done.usage.completion_tokens == 4


def test_streaming_usage_agrees_with_the_chunks(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="jan-v1-4b", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Tell me about queues"}])
    deltas, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == len(deltas) == FAST["reply_tokens"]
    assert textgen.pieces("".join(deltas)) == deltas


def test_streaming_without_include_usage_has_no_usage(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(
        model="jan-v1-4b", stream=True, messages=[{"role": "user", "content": "hi"}]))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_call_when_the_prompt_asks_to_search(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(
        model="jan-v1-4b", tools=[SEARCH_TOOL],
        messages=[{"role": "user", "content": "Search the latest news on GPUs"}])
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "google_search"
    assert json.loads(call.function.arguments) == {"q": "Search the latest news on GPUs"}


def test_no_tool_call_without_a_trigger_or_with_tool_choice_none(oai: openai.OpenAI) -> None:
    plain = oai.chat.completions.create(
        model="jan-v1-4b", tools=[SEARCH_TOOL], messages=[{"role": "user", "content": "hi"}])
    assert plain.choices[0].message.tool_calls is None
    refused = oai.chat.completions.create(
        model="jan-v1-4b", tools=[SEARCH_TOOL], tool_choice="none",
        messages=[{"role": "user", "content": "search for cats"}])
    assert refused.choices[0].finish_reason == "stop"


def test_streamed_tool_call_reassembles(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="jan-v1-4b", tools=[SEARCH_TOOL], tool_choice="required", stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "what now"}])
    name, args, deltas, usage = "", "", 0, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                deltas += 1
                name += call.function.name or ""
                args += call.function.arguments or ""
    assert name == "google_search"
    assert json.loads(args) == {"q": "what now"}
    assert usage is not None and usage.completion_tokens == deltas


def test_answer_after_a_tool_result_is_text(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(model="jan-v1-4b", tools=[SEARCH_TOOL], messages=[
        {"role": "user", "content": "search cats"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "google_search", "arguments": '{"q": "cats"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Cats are mammals."}])
    assert done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.content


def test_unknown_model_is_404_with_the_error_body(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        oai.chat.completions.create(model="no-such-model",
                                    messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404
    body = info.value.response.json()
    assert body["code"] == "model_not_found"
    assert "no-such-model" in body["error"]


def test_bad_token_is_401(sim, oai: openai.OpenAI) -> None:  # type: ignore[no-untyped-def]
    bad = oai.with_options(api_key="not-a-jwt")
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="jan-v1-4b",
                                    messages=[{"role": "user", "content": "hi"}])

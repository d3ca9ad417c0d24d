"""The official `openai` client's Responses API against the simulator."""

from __future__ import annotations

import json

import openai
import pytest
from sim_helpers import FAST

SEARCH_TOOL = {
    "type": "function", "name": "google_search", "description": "Search the web",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                   "required": ["q"]},
}


def test_response_round_trip(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(model="jan-v1-4b", input="Describe a queue")
    assert resp.status == "completed"
    assert resp.output_text
    assert resp.usage is not None
    assert resp.usage.output_tokens == FAST["reply_tokens"]
    assert resp.usage.input_tokens == 3
    again = oai.responses.retrieve(resp.id)
    assert again.output_text == resp.output_text
    items = oai.responses.input_items.list(resp.id)
    assert [i.id for i in items.data]  # one input item, listed


def test_streamed_response_events(oai: openai.OpenAI) -> None:
    kinds, deltas, final = [], [], None
    with oai.responses.stream(model="jan-v1-4b", input="Tell me a fact") as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.content_part.added",
                 "response.output_text.done", "response.output_item.done"):
        assert kind in kinds
    assert final.output_text == "".join(deltas)
    assert final.usage is not None and final.usage.output_tokens == len(deltas)
    assert oai.responses.retrieve(final.id).status == "completed"


def test_function_call_streamed_and_not(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(model="jan-v1-4b", input="search the news",
                                tools=[SEARCH_TOOL])
    (call,) = resp.output
    assert call.type == "function_call" and call.name == "google_search"
    assert json.loads(call.arguments) == {"q": "search the news"}
    stream = oai.responses.create(model="jan-v1-4b", input="search the news",
                                  tools=[SEARCH_TOOL], stream=True)
    args = "".join(e.delta for e in stream
                   if e.type == "response.function_call_arguments.delta")
    assert json.loads(args) == {"q": "search the news"}


def test_previous_response_adds_context(oai: openai.OpenAI) -> None:
    first = oai.responses.create(model="jan-v1-4b", input="one two three")
    second = oai.responses.create(model="jan-v1-4b", input="four",
                                  previous_response_id=first.id)
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens == 1 + 3 + first.usage.output_tokens


def test_background_response_can_be_cancelled(oai: openai.OpenAI) -> None:
    slow = oai.with_options(default_headers={"X-Sim-TTFT-Ms": "5000"})
    resp = slow.responses.create(model="jan-v1-4b", input="hi", background=True)
    assert resp.status == "pending"
    cancelled = oai.responses.cancel(resp.id)
    assert cancelled.status == "cancelled"
    assert oai.responses.retrieve(resp.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        oai.responses.cancel(resp.id)


def test_delete_then_404(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(model="jan-v1-4b", input="bye")
    oai.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(resp.id)


def test_unstored_response_is_not_retrievable(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(model="jan-v1-4b", input="private", store=False)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(resp.id)

"""Where the simulator follows the real Jan server's code rather than only the Swagger
(issue 10, items 1-6), checked over real sockets."""

from __future__ import annotations

import json

import httpx2 as httpx
import openai
import pytest
from sim_helpers import bearer

MODEL = "jan-v1-4b"


def _sse_data(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    return [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]


def test_streamed_response_ends_with_done_after_the_completed_event(
        http: httpx.Client, token: str) -> None:
    resp = http.post("/v1/responses", headers=bearer(token),
                     json={"model": MODEL, "input": "hi", "stream": True})
    datas = _sse_data(resp.text)
    assert datas[-1] == "[DONE]"
    assert datas.count("[DONE]") == 1
    kinds = [json.loads(d)["type"] for d in datas[:-1]]
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]
    assert resp.text.endswith("data: [DONE]\n\n")


def test_official_client_reads_the_stream_up_to_the_final_response(oai: openai.OpenAI) -> None:
    """[DONE] must not hide response.completed from the official client."""
    with oai.responses.stream(model=MODEL, input="hello") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed"
    assert final.status == "completed" and final.output_text


def test_stored_exchange_reads_back_in_the_real_servers_shape(
        http: httpx.Client, token: str) -> None:
    auth = bearer(token)
    conv = http.post("/v1/conversations", headers=auth, json={}).json()
    for stream in (False, True):
        http.post("/v1/conv/chat/completions", headers=auth, json={
            "model": MODEL, "conversation": conv["id"], "store": True, "stream": stream,
            "messages": [{"role": "user", "content": f"question {stream}"}]})
    http.post("/v1/responses", headers=auth, json={
        "model": MODEL, "input": "via responses", "conversation": conv["id"]})
    items = http.get(f"/v1/conversations/{conv['id']}/items", headers=auth,
                     params={"order": "asc"}).json()["data"]
    users = [i["content"] for i in items if i["role"] == "user"]
    assert users == [[{"type": "text", "text": {"value": text}}]
                     for text in ("question False", "question True", "via responses")]
    for item in items:
        (part,) = item["content"]
        assert part["type"] == "text" and isinstance(part["text"]["value"], str)


@pytest.mark.parametrize("metadata", [{"k": True}, {"n": None}, {"x": 1}, {"o": {"a": "b"}},
                                      {"l": ["a"]}, "not-an-object"])
def test_metadata_values_must_be_strings(http: httpx.Client, token: str,
                                         metadata: object) -> None:
    auth = bearer(token)
    created = http.post("/v1/conversations", headers=auth, json={"metadata": metadata})
    assert created.status_code == 400 and set(created.json()) == {"code", "error"}
    conv = http.post("/v1/conversations", headers=auth, json={"metadata": {"k": "v"}}).json()
    assert conv["metadata"] == {"k": "v"}
    patched = http.patch(f"/v1/conversations/{conv['id']}", headers=auth,
                         json={"metadata": metadata})
    assert patched.status_code == 400
    assert http.get(f"/v1/conversations/{conv['id']}", headers=auth).json()["metadata"] == {
        "k": "v"}
    for path in ("/v1/chat/completions", "/v1/conv/chat/completions"):
        chat = http.post(path, headers=auth, json={
            "model": MODEL, "metadata": metadata,
            "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 400, path


def test_models_retrieve_with_the_official_client(oai: openai.OpenAI) -> None:
    model = oai.models.retrieve(MODEL)
    assert (model.id, model.object, model.owned_by) == (MODEL, "model", "menlo")
    assert isinstance(model.created, int)
    with pytest.raises(openai.NotFoundError) as info:
        oai.models.retrieve("no-such-model")
    assert info.value.response.json()["code"] == "model_not_found"


def test_models_retrieve_is_public_too(http: httpx.Client) -> None:
    resp = http.get(f"/v1/models/{MODEL}")
    assert resp.status_code == 200 and resp.json()["id"] == MODEL


FN = {"name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}
BAD_CHAT_TOOLS = [
    {"tools": [{"type": "function", "function": FN}], "tool_choice": {"function": "f"}},
    {"tools": [{"type": "function", "function": {**FN, "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": 5}}}]},
    {"tools": [{"type": "function", "function": {**FN, "parameters": "q"}}]},
    {"tools": [{"type": "function", "function": {**FN, "parameters": {"properties": 3}}}]},
    {"tools": [{"type": "function", "function": {"description": "no name"}}]},
    {"tools": [{"type": "function", "function": "f"}]},
    {"tools": [{"type": "function", "function": FN}], "tool_choice": 7},
    {"tools": [{"type": "function", "function": FN}], "tool_choice": "sometimes"},
    {"tools": [{"type": "function", "function": FN}],
     "tool_choice": {"type": "function", "function": {"name": 7}}},
    {"tools": "f"},
    {"tools": [3]},
]
BAD_RESPONSES_TOOLS = [
    {"tools": [{"type": "function", **FN}], "tool_choice": {"type": "function", "function": 7}},
    {"tools": [{"type": "function", **FN}], "tool_choice": {"type": "function", "name": 7}},
    {"tools": [{"type": "function", **FN, "parameters": {"required": 5}}]},
    {"tools": [{"type": "function"}]},
]


@pytest.mark.parametrize("extra", BAD_CHAT_TOOLS, ids=range(len(BAD_CHAT_TOOLS)))
def test_malformed_chat_tools_are_400(http: httpx.Client, token: str,
                                      extra: dict[str, object]) -> None:
    for stream in (False, True):
        resp = http.post("/v1/chat/completions", headers=bearer(token), json={
            "model": MODEL, "stream": stream,
            "messages": [{"role": "user", "content": "search the news"}], **extra})
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert set(body) == {"code", "error"} and body["code"] == "invalid_request"


@pytest.mark.parametrize("extra", BAD_RESPONSES_TOOLS, ids=range(len(BAD_RESPONSES_TOOLS)))
def test_malformed_responses_tools_are_400(http: httpx.Client, token: str,
                                           extra: dict[str, object]) -> None:
    resp = http.post("/v1/responses", headers=bearer(token),
                     json={"model": MODEL, "input": "search the news", **extra})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "invalid_request"


def test_well_formed_tool_choices_still_call_the_tool(http: httpx.Client, token: str) -> None:
    tools = [{"type": "function", "function": {**FN, "parameters": {
        **FN["parameters"], "required": ["q"]}}}]
    for choice in ("required", {"type": "function", "function": {"name": "f"}}):
        resp = http.post("/v1/chat/completions", headers=bearer(token), json={
            "model": MODEL, "tools": tools, "tool_choice": choice,
            "messages": [{"role": "user", "content": "hello"}]})
        assert resp.status_code == 200
        assert resp.json()["choices"][0]["finish_reason"] == "tool_calls"


def test_conversation_completion_names_its_stored_items(http: httpx.Client, token: str) -> None:
    auth = bearer(token)
    conv = http.post("/v1/conversations", headers=auth, json={"title": "t"}).json()
    body = {"model": MODEL, "conversation": conv["id"],
            "messages": [{"role": "user", "content": "hello"}]}
    stored = http.post("/v1/conv/chat/completions", headers=auth,
                       json={**body, "store": True}).json()
    meta = stored["metadata"]
    assert (meta["conversation_id"], meta["conversation_title"], meta["store"]) == (
        conv["id"], "t", True)
    assert stored["id"] == meta["completion_item_id"]
    base = f"/v1/conversations/{conv['id']}/items"
    ask = http.get(f"{base}/{meta['ask_item_id']}", headers=auth).json()
    answer = http.get(f"{base}/{meta['completion_item_id']}", headers=auth).json()
    assert ask["content"][0]["text"]["value"] == "hello"
    assert answer["content"][0]["text"]["value"] == stored["choices"][0]["message"]["content"]
    unstored = http.post("/v1/conv/chat/completions", headers=auth, json=body).json()
    assert unstored["metadata"]["store"] is False
    assert "completion_item_id" not in unstored["metadata"]
    plain = http.post("/v1/chat/completions", headers=auth, json=body).json()
    assert "metadata" not in plain

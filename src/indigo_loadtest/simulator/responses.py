"""The Responses API: POST /v1/responses (plain, streamed, background), GET, DELETE,
cancel and input_items.

Response objects follow the Swagger's `Response` (status pending/running/completed/
cancelled/failed, `created`) and carry OpenAI's fields too (`created_at`, `output`,
`usage`), so the official client reads them. Streams use the Responses-API event types.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from . import textgen
from .chat import DONE
from .conversations import conversation_id_of, exchange_items
from .generation import (
    Reply,
    check_tools,
    generation_slot,
    make_reply,
    open_stream,
    plain_answer,
    raise_early_fault,
    raise_if_dropped,
    wait_for_all,
    write_tokens,
)
from .http_util import (
    ApiError,
    bad_request,
    json_object,
    json_response,
    list_body,
    not_found,
    optional,
    positive_int,
    query_limit,
)
from .latency import Plan, Timeline
from .state import SIM, Simulator
from .store import new_id

FINAL_STATES = ("completed", "cancelled", "failed")


@dataclass
class ResponseRequest:
    model: str
    input: Any
    input_items: list[dict[str, Any]]
    prompt_texts: list[str]
    last_user: str
    stream: bool
    background: bool
    store: bool
    max_tokens: int | None
    conversation: str | None
    body: dict[str, Any]


def _input_items(raw: Any) -> list[dict[str, Any]]:
    """The request's `input` as the spec's InputItem list (one per message or item)."""
    entries = [raw] if isinstance(raw, str) else raw
    now = int(time.time())
    items = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"role": "user", "content": entry}
        if not isinstance(entry, dict):
            raise bad_request("every input item must be a string or an object")
        text = " ".join(textgen.texts_of(entry))
        item = {"id": new_id("msg"), "object": "input_item", "created": now, "type": "text",
                "text": text, "role": entry.get("role") or "user",
                "content": [{"type": "input_text", "text": text}]}
        if entry.get("type") not in (None, "message"):
            item["item_type"] = entry["type"]  # e.g. function_call_output
        items.append(item)
    return items


def parse_response_request(body: dict[str, Any], sim: Simulator, user: str) -> ResponseRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required")
    sim.model(model)
    raw_input = body.get("input")
    if not isinstance(raw_input, str | list) or not raw_input:
        raise bad_request("'input' must be a non-empty string or array")
    check_tools(optional(body, "tools", list), body.get("tool_choice"))
    items = _input_items(raw_input)
    context: list[str] = []
    previous = optional(body, "previous_response_id", str)
    if previous:
        prior = sim.store.response(previous, user)
        if prior is None:
            raise not_found("previous response")
        context += [i["text"] for i in sim.store.input_items(previous, user) or ()]
        context += textgen.texts_of(prior.get("output"))
    for key in ("instructions", "system_prompt"):
        context += textgen.texts_of(optional(body, key, str, ""))
    conversation = conversation_id_of(body)
    if conversation is not None and sim.store.conversation(conversation, user) is None:
        raise not_found("conversation")
    user_texts = [i["text"] for i in items if i["role"] == "user"]
    max_tokens = positive_int(body, "max_output_tokens") or positive_int(body, "max_tokens")
    return ResponseRequest(
        model=model, input=raw_input, input_items=items,
        prompt_texts=context + [i["text"] for i in items],
        last_user=user_texts[-1] if user_texts else "",
        stream=bool(optional(body, "stream", bool, False)),
        background=bool(optional(body, "background", bool, False)),
        store=bool(optional(body, "store", bool, True)), max_tokens=max_tokens,
        conversation=conversation, body=body)


# --- response objects ---------------------------------------------------------------------


def new_response(req: ResponseRequest, status: str) -> dict[str, Any]:
    body = req.body
    now = int(time.time())
    resp: dict[str, Any] = {
        "id": new_id("resp"), "object": "response", "created": now, "created_at": now,
        "status": status, "model": req.model, "input": req.input, "output": [],
        "instructions": body.get("instructions") or body.get("system_prompt"),
        "metadata": optional(body, "metadata", dict, {}),
        "tools": body.get("tools") or [],
        "parallel_tool_calls": True, "temperature": optional(body, "temperature", (int, float),
                                                              1.0),
        "top_p": optional(body, "top_p", (int, float), 1.0),
        "text": {"format": {"type": "text"}}, "response_format": {"type": "text"},
        "truncation": "disabled", "store": req.store, "stream": req.stream,
        "background": req.background, "incomplete_details": None}
    if req.max_tokens is not None:
        resp["max_output_tokens"] = req.max_tokens
    if body.get("tool_choice") is not None:  # echoed as given; absent when not given
        resp["tool_choice"] = body["tool_choice"]
    for key in ("previous_response_id", "user"):
        if isinstance(body.get(key), str):
            resp[key] = body[key]
    if req.conversation:
        resp["conversation"] = {"id": req.conversation}
    return resp


def _item_id(reply: Reply) -> str:
    return new_id("fc" if reply.is_tool_call else "msg")


def output_item(reply: Reply, item_id: str, status: str, text: str | None = None
                ) -> dict[str, Any]:
    done = reply.text if text is None else text
    if reply.is_tool_call:
        return {"type": "function_call", "id": item_id, "call_id": reply.call_id,
                "name": reply.tool_name, "arguments": done, "status": status}
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [] if text == "" else [_text_part(done)]}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def complete(resp: dict[str, Any], reply: Reply, item_id: str) -> dict[str, Any]:
    resp["status"] = "completed"
    resp["completed_at"] = int(time.time())
    resp["output"] = [output_item(reply, item_id, "completed")]
    if reply.finish_reason == "length":
        resp["incomplete_details"] = {"reason": "max_output_tokens"}
    resp["usage"] = {
        "input_tokens": reply.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens}
    return resp


def _save(sim: Simulator, user: str, req: ResponseRequest, resp: dict[str, Any],
          reply: Reply | None, first: bool) -> None:
    """Store the response (and, once finished, its exchange in the conversation)."""
    if not req.store:
        return
    sim.store.put_response(resp, user, req.input_items if first else None)
    if reply is not None and req.conversation:
        sim.store.add_items(req.conversation, exchange_items(req.last_user, reply))


# --- POST /v1/responses -------------------------------------------------------------------


async def create_response(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    user = sim.user(request)
    req = parse_response_request(await json_object(request), sim, user)
    plan = sim.plan(request)
    raise_early_fault(plan, sim.config.retry_after_s)
    reply = make_reply(req.prompt_texts, req.last_user, plan, req.max_tokens,
                       req.body.get("tools"), req.body.get("tool_choice"))
    if req.background and not req.stream:
        return _start_background(sim, user, req, plan, reply)
    async with generation_slot(sim.latency, plan, reply.prompt_tokens) as (timeline, queue_ms):
        if req.stream:
            return await _stream(request, sim, user, req, reply, plan, timeline, queue_ms)
        await wait_for_all(timeline, reply.completion_tokens)
        raise_if_dropped(request, plan)
        resp = complete(new_response(req, "running"), reply, _item_id(reply))
        _save(sim, user, req, resp, reply, first=True)
        return plain_answer(resp, plan, queue_ms)


def _start_background(sim: Simulator, user: str, req: ResponseRequest, plan: Plan,
                      reply: Reply) -> web.Response:
    """202 now; the generation runs in a task that can be cancelled."""
    if not req.store:
        raise bad_request("background responses must be stored (store=true)")
    resp = new_response(req, "pending")
    _save(sim, user, req, resp, None, first=True)

    async def run() -> None:
        try:
            async with generation_slot(sim.latency, plan, reply.prompt_tokens) as (timeline, _):
                await wait_for_all(timeline, reply.completion_tokens)
            complete(resp, reply, _item_id(reply))
            _save(sim, user, req, resp, reply, first=False)
        finally:
            sim.background.pop(resp["id"], None)

    sim.background[resp["id"]] = asyncio.get_running_loop().create_task(run())
    return json_response(resp, status=202)


def _event(kind: str, seq: int, **fields: Any) -> bytes:
    return (b"event: " + kind.encode() + b"\ndata: "
            + orjson.dumps({"type": kind, "sequence_number": seq, **fields}) + b"\n\n")


class _Events:
    """Numbers the events of one stream."""

    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, kind: str, **fields: Any) -> bytes:
        self.seq += 1
        return _event(kind, self.seq - 1, **fields)


async def _stream(request: web.Request, sim: Simulator, user: str, req: ResponseRequest,
                  reply: Reply, plan: Plan, timeline: Timeline,
                  queue_ms: str) -> web.StreamResponse:
    ev = _Events()
    resp = new_response(req, "in_progress")
    item_id = _item_id(reply)
    out = await open_stream(request, queue_ms)
    await out.write(ev("response.created", response=resp)
                    + ev("response.in_progress", response=resp))
    tool = reply.is_tool_call
    opening = ev("response.output_item.added", output_index=0,
                 item=output_item(reply, item_id, "in_progress", ""))
    if not tool:
        opening += ev("response.content_part.added", item_id=item_id, output_index=0,
                      content_index=0, part=_text_part(""))

    def chunks() -> Iterator[bytes]:
        for i, token in enumerate(reply.tokens):
            if tool:
                chunk = ev("response.function_call_arguments.delta", item_id=item_id,
                           output_index=0, delta=token)
            else:
                chunk = ev("response.output_text.delta", item_id=item_id, output_index=0,
                           content_index=0, delta=token, logprobs=[])
            yield opening + chunk if i == 0 else chunk

    if not await write_tokens(request, out, plan, timeline, chunks(), reply.completion_tokens):
        return out
    complete(resp, reply, item_id)
    _save(sim, user, req, resp, reply, first=True)
    if tool:
        tail = ev("response.function_call_arguments.done", item_id=item_id, output_index=0,
                  name=reply.tool_name, arguments=reply.text)
    else:
        tail = (ev("response.output_text.done", item_id=item_id, output_index=0,
                   content_index=0, text=reply.text, logprobs=[])
                + ev("response.content_part.done", item_id=item_id, output_index=0,
                     content_index=0, part=_text_part(reply.text)))
    tail += ev("response.output_item.done", output_index=0, item=resp["output"][0])
    tail += ev("response.completed", response=resp)
    # The real server ends the stream with `data: [DONE]` too; it writes it just before
    # response.completed, which the official clients then never read (they stop at
    # [DONE]), so here it comes last (docs/simulator.md, departures).
    await out.write(tail + DONE)
    await out.write_eof()
    return out


# --- GET / DELETE / cancel / input_items --------------------------------------------------


def _owned(request: web.Request) -> tuple[Simulator, str, dict[str, Any]]:
    sim = request.app[SIM]
    user = sim.user(request)
    resp = sim.store.response(request.match_info["response_id"], user)
    if resp is None:
        raise not_found("response")
    return sim, user, resp


async def get_response(request: web.Request) -> web.StreamResponse:
    return json_response(_owned(request)[2])


async def delete_response(request: web.Request) -> web.StreamResponse:
    sim, user, resp = _owned(request)
    task = sim.background.pop(resp["id"], None)
    if task is not None:
        task.cancel()
    sim.store.delete_response(resp["id"], user)
    return json_response({**resp, "deleted": True})


async def cancel_response(request: web.Request) -> web.StreamResponse:
    sim, user, resp = _owned(request)
    task = sim.background.pop(resp["id"], None)
    if task is None or resp["status"] in FINAL_STATES:
        raise ApiError(400, "invalid_request",
                       f"response is {resp['status']}; only a pending background response "
                       "can be cancelled")
    task.cancel()
    resp["status"] = "cancelled"
    resp["cancelled_at"] = int(time.time())
    sim.store.put_response(resp, user)
    return json_response(resp)


async def input_items(request: web.Request) -> web.StreamResponse:
    sim, user, resp = _owned(request)
    items = sim.store.input_items(resp["id"], user) or []
    ids = [i["id"] for i in items]
    for cursor, keep_after in (("after", True), ("before", False)):
        value = request.query.get(cursor)
        if value:
            if value not in ids:
                raise bad_request(f"'{cursor}' is not an item of this response")
            cut = ids.index(value)
            items, ids = (items[cut + 1:], ids[cut + 1:]) if keep_after else (
                items[:cut], ids[:cut])
    limit = query_limit(request)
    return json_response(list_body(items[:limit], len(items) > limit))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/responses", create_response)
    r.add_get("/v1/responses/{response_id}", get_response)
    r.add_delete("/v1/responses/{response_id}", delete_response)
    r.add_post("/v1/responses/{response_id}/cancel", cancel_response)
    r.add_get("/v1/responses/{response_id}/input_items", input_items)

"""POST /v1/chat/completions and /v1/conv/chat/completions (OpenAI chat completions)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from . import textgen
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
from .http_util import bad_request, json_object, optional, positive_int, string_map
from .latency import Timeline
from .state import SIM, Simulator
from .store import fast_id

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class ChatRequest:
    model: str
    stream: bool
    include_usage: bool
    max_tokens: int | None
    prompt_texts: list[str]
    last_user: str
    tools: Any
    tool_choice: Any


def parse_chat(body: dict[str, Any], sim: Simulator) -> ChatRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array")
    if not all(isinstance(m, dict) for m in messages):
        raise bad_request("every message must be an object")
    model = sim.model(optional(body, "model", str, sim.config.default_model))
    stream_options = optional(body, "stream_options", dict, {})
    tools = optional(body, "tools", list)
    check_tools(tools, body.get("tool_choice"))
    string_map(body, "metadata")
    max_tokens = positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens")
    user_texts = [t for m in messages if m.get("role") == "user"
                  for t in textgen.texts_of(m.get("content"))]
    last_user = user_texts[-1] if user_texts else ""
    # After a tool result, the model answers in text rather than calling again.
    after_tool_result = messages[-1].get("role") == "tool"
    return ChatRequest(
        model=model, stream=bool(optional(body, "stream", bool, False)),
        include_usage=bool(stream_options.get("include_usage")), max_tokens=max_tokens,
        prompt_texts=[t for m in messages for t in textgen.texts_of(m.get("content"))],
        last_user=last_user, tools=None if after_tool_result else tools,
        tool_choice=body.get("tool_choice"))


def usage(reply: Reply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


def completion_body(cid: str, created: int, model: str, reply: Reply) -> dict[str, Any]:
    # Empty fields are left out rather than null, as the real server's Go types
    # (`omitempty`) write them and as its Swagger types them.
    message: dict[str, Any] = {"role": "assistant"}
    if reply.is_tool_call:
        message["tool_calls"] = [{"id": reply.call_id, "type": "function",
                                  "function": {"name": reply.tool_name,
                                               "arguments": reply.text}}]
    else:
        message["content"] = reply.text
    return {"id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": reply.finish_reason}],
            "usage": usage(reply), "system_fingerprint": "indigo-simulator"}


# Called with the finished reply before the response ends (conversation storage); what it
# returns is merged into a non-streamed answer's body.
OnDone = Callable[[Reply], Awaitable[dict[str, Any]]] | None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    sim.user(request)
    req = parse_chat(await json_object(request), sim)
    return await run_chat(request, sim, req, None)


async def run_chat(request: web.Request, sim: Simulator, req: ChatRequest,
                   on_done: OnDone) -> web.StreamResponse:
    plan = sim.plan(request)
    raise_early_fault(plan, sim.config.retry_after_s)
    reply = make_reply(req.prompt_texts, req.last_user, plan, req.max_tokens, req.tools,
                       req.tool_choice)
    cid = fast_id("chatcmpl")
    created = int(time.time())
    async with generation_slot(sim.latency, plan, reply.prompt_tokens) as (timeline, queue_ms):
        if req.stream:
            return await _stream(request, req, reply, plan, timeline, queue_ms, cid, created,
                                 on_done)
        await wait_for_all(timeline, reply.completion_tokens)
        raise_if_dropped(request, plan)
        body = completion_body(cid, created, req.model, reply)
        if on_done is not None:
            body.update(await on_done(reply))
        return plain_answer(body, plan, queue_ms)


def _chunk(cid: str, created: int, model: str, delta: dict[str, Any],
           finish: str | None, with_usage: bool) -> bytes:
    chunk: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created,
                             "model": model, "system_fingerprint": "indigo-simulator",
                             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]}
    if with_usage:
        chunk["usage"] = None
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _delta(reply: Reply, index: int) -> dict[str, Any]:
    token = reply.tokens[index]
    if not reply.is_tool_call:
        return {"role": "assistant", "content": token} if index == 0 else {"content": token}
    call: dict[str, Any] = {"index": 0, "function": {"arguments": token}}
    if index == 0:  # the first delta names the call, so every delta is one token
        call.update(id=reply.call_id, type="function")
        call["function"]["name"] = reply.tool_name
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"tool_calls": [call]}


async def _stream(request: web.Request, req: ChatRequest, reply: Reply, plan: Any,
                  timeline: Timeline, queue_ms: str, cid: str, created: int,
                  on_done: OnDone) -> web.StreamResponse:
    resp = await open_stream(request, queue_ms)
    n = reply.completion_tokens
    chunks = (_chunk(cid, created, req.model, _delta(reply, i), None, req.include_usage)
              for i in range(n))
    if not await write_tokens(request, resp, plan, timeline, chunks, n):
        return resp
    if on_done is not None:
        await on_done(reply)
    tail = _chunk(cid, created, req.model, {}, reply.finish_reason, req.include_usage)
    if req.include_usage:
        tail += b"data: " + orjson.dumps({
            "id": cid, "object": "chat.completion.chunk", "created": created,
            "model": req.model, "system_fingerprint": "indigo-simulator", "choices": [],
            "usage": usage(reply)}) + b"\n\n"
    await resp.write(tail + DONE)
    await resp.write_eof()
    return resp


__all__ = ["ChatRequest", "chat_completions", "parse_chat", "run_chat"]

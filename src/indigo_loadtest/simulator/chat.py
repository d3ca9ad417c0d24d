"""POST /v1/chat/completions and /v1/conv/chat/completions (OpenAI chat completions)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from aiohttp import web

from . import textgen
from .generation import (
    DONE,
    OnDone,
    Reply,
    check_tools,
    make_reply,
    raise_early_fault,
    serve_reply,
)
from .http_util import bad_request, json_object, optional, positive_int, string_map
from .state import SIM, Simulator
from .store import fast_id


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


@dataclass(frozen=True)
class OpenAIFormat:
    """OpenAI's chunk envelope (id, object, created, model), shared by chat and text
    completions; with include_usage, each chunk says `usage: null` and a last chunk with
    no choices carries the usage."""

    cid: str
    created: int
    model: str
    include_usage: bool

    kind: ClassVar[str] = "chat.completion.chunk"  # the chunks' `object`

    def envelope(self, choices: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        return {"id": self.cid, "object": self.kind, "created": self.created,
                "model": self.model, "system_fingerprint": "indigo-simulator",
                "choices": choices, **fields}

    def sse(self, choice: dict[str, Any]) -> bytes:
        chunk = self.envelope([choice], **({"usage": None} if self.include_usage else {}))
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def usage_chunk(self, reply: Reply) -> bytes:
        if not self.include_usage:
            return b""
        return b"data: " + orjson.dumps(self.envelope([], usage=usage(reply))) + b"\n\n"


class ChatFormat(OpenAIFormat):
    """A chat completion and its `chat.completion.chunk` stream."""

    def body(self, reply: Reply) -> dict[str, Any]:
        return completion_body(self.cid, self.created, self.model, reply)

    def chunk(self, reply: Reply, index: int) -> bytes:
        return self.sse({"index": 0, "delta": _delta(reply, index), "logprobs": None,
                         "finish_reason": None})

    def tail(self, reply: Reply) -> bytes:
        finish = self.sse({"index": 0, "delta": {}, "logprobs": None,
                           "finish_reason": reply.finish_reason})
        return finish + self.usage_chunk(reply)


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
    fmt = ChatFormat(fast_id("chatcmpl"), int(time.time()), req.model, req.include_usage)
    return await serve_reply(request, sim.latency, plan, reply, req.stream, fmt, on_done)


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


__all__ = ["DONE", "ChatFormat", "ChatRequest", "OpenAIFormat", "chat_completions",
           "parse_chat", "run_chat", "usage"]

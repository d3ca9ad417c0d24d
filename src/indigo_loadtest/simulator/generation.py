"""One simulated generation: what the model answers and when each token is due."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from . import textgen
from .http_util import ApiError, bad_request
from .latency import QUEUE_TIME, LatencyModel, Plan, QueueFull, Timeline, sleep_until
from .store import fast_id

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Reply:
    """The model's answer as tokens: content pieces, or a function call's argument pieces."""

    tokens: list[str]
    finish_reason: str  # "stop" | "length" | "tool_calls"
    prompt_tokens: int
    tool_name: str = ""
    call_id: str = ""

    @property
    def is_tool_call(self) -> bool:
        return bool(self.tool_name)

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)


def make_reply(prompt_texts: list[str], last_user: str, plan: Plan, max_tokens: int | None,
               tools: Any = None, tool_choice: Any = None) -> Reply:
    """Text of plan.reply_tokens tokens (capped by max_tokens), or a function call when the
    tool rule fires; finish_reason "length" when max_tokens cut the answer."""
    prompt_tokens = textgen.count_tokens(prompt_texts)
    fn = textgen.choose_tool(tools, tool_choice, last_user)
    if fn is not None:
        tokens = textgen.pieces(textgen.tool_arguments(fn, last_user))
        finish = "tool_calls"
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
        return Reply(tokens, finish, prompt_tokens, fn["name"], fast_id("call", "_"))
    wanted = plan.reply_tokens
    finish = "stop"
    if max_tokens is not None and max_tokens < wanted:
        wanted, finish = max_tokens, "length"
    return Reply(textgen.reply_tokens(last_user, wanted), finish, prompt_tokens)


TOOL_CHOICES = ("none", "auto", "required")


def check_tools(tools: Any, tool_choice: Any) -> None:
    """400 for `tools` / `tool_choice` the model could not use (the real server rejects
    them when decoding; here they would otherwise fail deep inside generation)."""
    if tools is not None:
        if not isinstance(tools, list):
            raise bad_request("'tools' must be an array")
        for tool in tools:
            _check_tool(tool)
    if tool_choice is None or tool_choice in TOOL_CHOICES:
        return
    if not isinstance(tool_choice, dict):
        raise bad_request(f"'tool_choice' must be one of {', '.join(TOOL_CHOICES)} "
                          "or an object")
    fn = tool_choice.get("function")
    if fn is not None and not (isinstance(fn, dict) and _optional_str(fn, "name")):
        raise bad_request("'tool_choice.function' must be an object with a 'name'")
    if not _optional_str(tool_choice, "name") or not _optional_str(tool_choice, "type"):
        raise bad_request("'tool_choice.name' and 'tool_choice.type' must be strings")


def _optional_str(obj: dict[str, Any], key: str) -> bool:
    return obj.get(key) is None or isinstance(obj[key], str)


def _check_tool(tool: Any) -> None:
    if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
        raise bad_request("every tool must be an object with a 'type'")
    if tool["type"] != "function":
        return
    # Chat nests the definition under "function"; the Responses API puts it on the tool.
    fn = tool.get("function", tool)
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise bad_request("a function tool needs a 'name'")
    params = fn.get("parameters")
    if params is None:
        return
    if not isinstance(params, dict):
        raise bad_request("a function's 'parameters' must be a JSON Schema object")
    props, required = params.get("properties"), params.get("required")
    if props is not None and not isinstance(props, dict):
        raise bad_request("'parameters.properties' must be an object")
    if required is not None and not (isinstance(required, list)
                                     and all(isinstance(r, str) for r in required)):
        raise bad_request("'parameters.required' must be an array of strings")


def raise_early_fault(plan: Plan, retry_after_s: int) -> None:
    """Faults answered before any generation: a 500 or a 429 with Retry-After."""
    if plan.fault == "error":
        raise ApiError(500, "internal_error", "simulated inference failure")
    if plan.fault == "rate_limit":
        raise ApiError(429, "rate_limit_exceeded", "simulated rate limit; retry later",
                       {"Retry-After": str(retry_after_s)})


@asynccontextmanager
async def generation_slot(latency: LatencyModel, plan: Plan,
                          prompt_tokens: int) -> AsyncIterator[tuple[Timeline, str]]:
    """Hold a generation slot; yields the generation's token times (from when the slot
    was granted) and the X-Queue-Time value."""
    asked = time.perf_counter()
    try:
        await latency.slots.acquire()
    except QueueFull:
        raise ApiError(429, "queue_full", "too many requests waiting for a generation slot",
                       {"Retry-After": "1"}) from None
    granted = time.perf_counter()
    try:
        yield (latency.timeline(plan, granted, prompt_tokens),
               f"{(granted - asked) * 1000.0:.3f}")
    finally:
        latency.slots.release()


async def wait_for_all(timeline: Timeline, count: int) -> None:
    """A non-streamed answer is ready when its last token would have been generated."""
    await timeline.finish(count)


async def open_stream(request: web.Request, queue_ms: str) -> web.StreamResponse:
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no", QUEUE_TIME: queue_ms})
    await resp.prepare(request)
    return resp


def drop_connection(request: web.Request) -> None:
    """The injected failure: close the socket without ending the response."""
    if request.transport is not None:
        request.transport.abort()


MALFORMED_EVENT = b'data: {"id": "broken", "choices": [{"delta": {"content": \n\n'


def raise_if_dropped(request: web.Request, plan: Plan) -> None:
    """A non-streamed answer under the `drop` fault: no response at all."""
    if plan.fault == "drop":
        drop_connection(request)
        raise ConnectionResetError("dropped by fault injection")


def plain_answer(obj: Any, plan: Plan, queue_ms: str) -> web.Response:
    """A non-streamed JSON answer (truncated under the `malformed` fault)."""
    body = orjson.dumps(obj)
    if plan.fault == "malformed":
        body = body[: len(body) // 2]
    return web.Response(body=body, content_type="application/json",
                        headers={QUEUE_TIME: queue_ms})


async def mid_stream_fault(request: web.Request, out: web.StreamResponse, plan: Plan,
                           index: int, count: int) -> bool:
    """Halfway through a stream: drop the connection (True: stop now) or slip in one
    malformed event."""
    if index != count // 2:
        return False
    if plan.fault == "drop":
        drop_connection(request)
        return True
    if plan.fault == "malformed":
        await out.write(MALFORMED_EVENT)
    return False


async def write_tokens(request: web.Request, out: web.StreamResponse, plan: Plan,
                       timeline: Timeline, chunks: Iterable[bytes], count: int) -> bool:
    """Write one chunk per token as each falls due, with the mid-stream fault halfway;
    False when the fault dropped the connection (the stream must end there)."""
    for index, chunk in enumerate(chunks):
        if await mid_stream_fault(request, out, plan, index, count):
            return False
        await sleep_until(timeline.next())
        await out.write(chunk)
    return True


class ReplyFormat(Protocol):
    """How one API writes a reply: whole (not streamed), one SSE chunk per token, and
    what ends the stream before `data: [DONE]`."""

    def body(self, reply: Reply) -> dict[str, Any]: ...

    def chunk(self, reply: Reply, index: int) -> bytes: ...

    def tail(self, reply: Reply) -> bytes: ...


# Called with the finished reply before the response ends (conversation storage); what it
# returns is merged into a non-streamed answer's body.
OnDone = Callable[[Reply], Awaitable[dict[str, Any]]] | None


async def serve_reply(request: web.Request, latency: LatencyModel, plan: Plan, reply: Reply,
                      stream: bool, fmt: ReplyFormat,
                      on_done: OnDone = None) -> web.StreamResponse:
    """One generation in a slot, answered in `fmt`: streamed token by token as each falls
    due (then the tail and `data: [DONE]`), or whole once its last token is due."""
    async with generation_slot(latency, plan, reply.prompt_tokens) as (timeline, queue_ms):
        n = reply.completion_tokens
        if not stream:
            await wait_for_all(timeline, n)
            raise_if_dropped(request, plan)
            body = fmt.body(reply)
            if on_done is not None:
                body.update(await on_done(reply))
            return plain_answer(body, plan, queue_ms)
        resp = await open_stream(request, queue_ms)
        chunks = (fmt.chunk(reply, i) for i in range(n))
        if not await write_tokens(request, resp, plan, timeline, chunks, n):
            return resp
        if on_done is not None:
            await on_done(reply)
        await resp.write(fmt.tail(reply) + DONE)
        await resp.write_eof()
        return resp

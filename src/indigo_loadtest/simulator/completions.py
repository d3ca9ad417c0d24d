"""POST /v1/completions: OpenAI's legacy text completions (what `vllm bench serve` and
guidellm send by default), on the same generation, latency model and faults as chat.

One prompt and one choice per request (`n` 1, no `echo`, no `logprobs`); anything else
is a 400 in OpenAI's error shape, as are all of this endpoint's errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .chat import OpenAIFormat, usage
from .generation import Reply, make_reply, raise_early_fault, serve_reply
from .http_util import ApiError, OpenAIError, json_object, optional, positive_int
from .state import SIM, Simulator
from .store import fast_id

# OpenAI's (and vLLM's) default `max_tokens` for text completions.
DEFAULT_MAX_TOKENS = 16


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompt: str
    stream: bool
    include_usage: bool
    max_tokens: int


def invalid(param: str, message: str) -> OpenAIError:
    return OpenAIError(400, "invalid_request", message, param=param)


def prompt_text(raw: Any) -> str:
    """The one prompt as text: a string, a list of token ids (counted one token each), or
    a one-element list of either."""
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str | list):
        raw = raw[0]
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and raw and all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in raw):
        return " ".join(str(t) for t in raw)  # one word piece per id: the count holds
    if isinstance(raw, list) and len(raw) > 1:
        raise invalid("prompt", "the simulator answers one prompt per request; send a "
                      "string (or a one-element list)")
    raise invalid("prompt", "'prompt' must be a string, a list of token ids, or a "
                  "one-element list of either")


def parse_completion(body: dict[str, Any], sim: Simulator) -> CompletionRequest:
    if "prompt" not in body:
        raise invalid("prompt", "'prompt' is required")
    prompt = prompt_text(body["prompt"])
    model = sim.model(optional(body, "model", str, sim.config.default_model))
    if optional(body, "n", int, 1) != 1:
        raise invalid("n", "only n=1 is supported: one choice per request")
    if optional(body, "echo", bool, False):
        raise invalid("echo", "echo=true is not supported")
    if body.get("logprobs") is not None:
        raise invalid("logprobs", "logprobs are not simulated; send null or leave it out")
    temperature = optional(body, "temperature", (int, float), 1.0)
    if not 0 <= temperature <= 2:
        raise invalid("temperature", "'temperature' must be between 0 and 2")
    stream_options = optional(body, "stream_options", dict, {})
    return CompletionRequest(
        model=model, prompt=prompt, stream=bool(optional(body, "stream", bool, False)),
        include_usage=bool(stream_options.get("include_usage")),
        max_tokens=positive_int(body, "max_tokens") or DEFAULT_MAX_TOKENS)


class TextFormat(OpenAIFormat):
    """A `text_completion` object, streamed as `text_completion` chunks of one token."""

    kind = "text_completion"

    def body(self, reply: Reply) -> dict[str, Any]:
        return self.envelope([self._choice(reply.text, reply.finish_reason)],
                             usage=usage(reply))

    def chunk(self, reply: Reply, index: int) -> bytes:
        return self.sse(self._choice(reply.tokens[index], None))

    def tail(self, reply: Reply) -> bytes:
        return self.sse(self._choice("", reply.finish_reason)) + self.usage_chunk(reply)

    @staticmethod
    def _choice(text: str, finish: str | None) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}


async def completions(request: web.Request) -> web.StreamResponse:
    try:
        return await _complete(request)
    except ApiError as exc:  # auth, model, faults: all in OpenAI's shape here
        raise OpenAIError.of(exc) from None


async def _complete(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    sim.user(request)
    req = parse_completion(await json_object(request), sim)
    plan = sim.plan(request)
    raise_early_fault(plan, sim.config.retry_after_s)
    reply = make_reply([req.prompt], req.prompt, plan, req.max_tokens)
    fmt = TextFormat(fast_id("cmpl"), int(time.time()), req.model, req.include_usage)
    return await serve_reply(request, sim.latency, plan, reply, req.stream, fmt)


__all__ = ["CompletionRequest", "TextFormat", "completions", "parse_completion"]

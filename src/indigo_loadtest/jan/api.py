"""The Indigo (Jan) Server API calls of the scenarios, one method per step.

Each step refreshes the session as configured, times itself into its Trend, checks
the response under the original scripts' check names, counts a success or an error,
and, for LLM calls, records the llm_* metrics tagged scenario/status/prompt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..api import check
from ..llm.stream_metrics import StreamResult, measure_response, measure_stream
from .metrics import FlowMetrics
from .session import JanConfig, Session, failure_line, log

Checks = Mapping[str, Callable[[Any], Any]]


def _body(r: Any) -> Any:
    """The response parsed as JSON, or None."""
    try:
        return r.json()
    except ValueError:
        return None


def status_is(code: int) -> Callable[[Any], bool]:
    return lambda r: r.status == code


def is_2xx(r: Any) -> bool:
    return 200 <= r.status < 300


def is_list(r: Any) -> bool:
    body = _body(r)
    return isinstance(body, dict) and body.get("object") == "list" and isinstance(
        body.get("data"), list)


def has_data_array(r: Any) -> bool:
    body = _body(r)
    return isinstance(body, dict) and isinstance(body.get("data"), list)


def has_id(r: Any) -> bool:
    body = _body(r)
    return isinstance(body, dict) and isinstance(body.get("id"), str) and bool(body["id"])


def has_id_and_title(r: Any) -> bool:
    body = _body(r)
    return isinstance(body, dict) and bool(body.get("id")) and bool(body.get("title"))


def has_choices(r: Any) -> bool:
    body = _body(r)
    return isinstance(body, dict) and isinstance(body.get("choices"), list) and bool(
        body["choices"])


def has_message_content(r: Any) -> bool:
    body = _body(r)
    try:
        return bool(body["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        return False


def has_output(r: Any) -> bool:
    """A Responses-API body with output (or, from chat-style servers, choices)."""
    body = _body(r)
    return isinstance(body, dict) and bool(body.get("output") or body.get("choices"))


@dataclass
class StreamReply:
    """A streamed call's outcome: the HTTP response (headers, status) and what streamed."""

    response: Any
    result: StreamResult

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Any:
        return self.response.headers

    @property
    def is_event_stream(self) -> bool:
        return "text/event-stream" in (self.headers.get("Content-Type") or "")

    @property
    def has_content(self) -> bool:
        """At least one content or tool-call delta arrived."""
        return bool(self.result.token_times)


def stream_checks(label: str) -> dict[str, Callable[[StreamReply], Any]]:
    """The original scripts' three checks of a streamed call."""
    return {
        f"{label} status 200": status_is(200),
        f"{label} has content": lambda r: r.has_content,
        f"{label} is event-stream": lambda r: r.is_event_stream,
    }


# The google_search function tool of the original Responses flow (full and short forms).
GOOGLE_SEARCH_DESCRIPTION = (
    "Tool to perform web searches via Serper API and retrieve rich results. It is able to "
    "retrieve organic search results, people also ask, related searches, and knowledge graph."
)


def google_search_tool(full: bool = True) -> dict[str, Any]:
    props: dict[str, Any] = {
        "q": {"description": "Search query string", "type": "string"},
        "num": {"description": "Number of search results to return (1-100, default 10)",
                "type": "integer", "minimum": 1, "maximum": 100},
    }
    if full:
        props = {
            "autocorrect": {"description": "Whether to autocorrect spelling in query",
                            "type": "boolean"},
            "gl": {"description": "Optional region code for search results in ISO 3166-1 "
                                  "alpha-2 format (e.g. us, uk)", "type": "string"},
            "hl": {"description": "Optional language code for search results in ISO 639-1 "
                                  "format (e.g. en, es)", "type": "string"},
            **props,
        }
    else:
        props["num"] = {"description": "Number of search results to return",
                        "type": "integer", "minimum": 1, "maximum": 10}
    description = GOOGLE_SEARCH_DESCRIPTION if full else GOOGLE_SEARCH_DESCRIPTION.split(".")[
        0] + "."
    return {"type": "function", "function": {
        "name": "google_search", "description": description,
        "parameters": {"type": "object", "properties": props, "required": ["q"]},
    }}


class JanAPI:
    """The API calls of one iteration: a session's identity over a VU's HTTP client."""

    def __init__(self, http: Any, session: Session, metrics: FlowMetrics) -> None:
        self.http = http
        self.session = session
        self.metrics = metrics
        self.config: JanConfig = session.config

    # --- plumbing -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.config.base + path

    def _log(self, message: str) -> None:
        log(self.config, message)

    async def _request(self, method: str, path: str, *, trend: str, checks: Checks,
                       json: Any = None, name: str | None = None,
                       llm: Mapping[str, str] | None = None) -> tuple[bool, Any]:
        """One plain request: refresh, time, check, count; llm tags → llm_* metrics."""
        await self.session.ensure_fresh(self.http)
        started = time.perf_counter()
        resp = await self.http.request(method, self._url(path), json=json,
                                       headers=self.session.headers(), name=name or path)
        self.metrics.time(trend, started)
        if llm is not None:
            measure_response(resp, llm, self.metrics.llm)
        ok = self.metrics.outcome(check(resp, checks))
        return ok, resp

    async def _stream(self, path: str, *, trend: str, label: str, payload: Any,
                      llm: Mapping[str, str]) -> tuple[bool, StreamReply]:
        """One streamed request, read to its end with each event's arrival time."""
        await self.session.ensure_fresh(self.http)
        started = time.perf_counter()
        resp = await self.http.post(self._url(path), json=payload,
                                    headers=self.session.headers(), name=path, stream=True)
        result = await measure_stream(resp, llm, self.metrics.llm)
        self.metrics.time(trend, started)
        reply = StreamReply(resp, result)
        ok = self.metrics.outcome(check(reply, stream_checks(label)))
        return ok, reply

    def _report(self, tag: str, ok: bool, resp: Any, detail: str = "") -> None:
        if ok:
            self._log(f"[{tag}] ✅ Success!{' ' + detail if detail else ''}")
        else:
            self._log(failure_line(tag, resp))

    def _report_stream(self, tag: str, ok: bool, reply: StreamReply) -> None:
        res = reply.result
        self._report(tag, ok, reply.response,
                     f"{res.events} events, {res.output_tokens} tokens, "
                     f"TTFT {res.ttft_ms or 0:.0f} ms, completed: {res.completed}")
        if ok and not res.completed:
            self._log(f"[{tag}] ⚠️ Warning: the stream ended without its completion signal")

    # --- models -------------------------------------------------------------------------

    async def models(self, trend: str = "models_time_ms") -> bool:
        """GET /v1/models: a list that contains MODEL."""
        self._log("[MODELS] Testing models endpoint...")
        model = self.config.model
        ok, resp = await self._request("GET", "/v1/models", trend=trend, checks={
            "models status 200": status_is(200),
            "models has data": is_list,
            "models includes target model": lambda r: any(
                m.get("id") == model for m in _body(r)["data"]),
        })
        self._report("MODELS", ok, resp, f"target model {model} is available" if ok else "")
        return ok

    # --- chat completions ---------------------------------------------------------------

    def chat_payload(self, prompt: str, *, temperature: float, max_tokens: int, stream: bool,
                     **extra: Any) -> dict[str, Any]:
        return {"model": self.config.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": temperature, "max_tokens": max_tokens, "stream": stream, **extra}

    async def chat(self, prompt: str, *, trend: str = "completion_time_ms",
                   label: str = "completion", path: str = "/v1/chat/completions",
                   temperature: float = 0.7, max_tokens: int = 150,
                   llm: Mapping[str, str] | None = None, require_content: bool = True,
                   **extra: Any) -> tuple[bool, Any]:
        """A non-streamed chat completion: choices[0].message.content and usage."""
        self._log(f"[NON-STREAMING] {label}...")
        checks: dict[str, Callable[[Any], Any]] = {
            f"{label} status 200": status_is(200),
            f"{label} has choices": has_choices,
        }
        if require_content:
            checks[f"{label} has content"] = has_message_content
        payload = self.chat_payload(prompt, temperature=temperature, max_tokens=max_tokens,
                                    stream=False, **extra)
        ok, resp = await self._request(
            "POST", path, trend=trend, checks=checks, json=payload,
            llm=llm or {"scenario": "completion_nonstream", "prompt": "standard"})
        self._report("NON-STREAMING", ok, resp)
        return ok, resp

    async def chat_stream(self, prompt: str, *, trend: str = "streaming_time_ms",
                          label: str = "streaming", path: str = "/v1/chat/completions",
                          temperature: float = 0.8, max_tokens: int = 100,
                          llm: Mapping[str, str] | None = None,
                          **extra: Any) -> tuple[bool, StreamReply]:
        """A streamed chat completion: `data:` chunks with choices[0].delta, then [DONE]."""
        self._log(f"[STREAMING] {label}...")
        payload = self.chat_payload(prompt, temperature=temperature, max_tokens=max_tokens,
                                    stream=True, **extra)
        ok, reply = await self._stream(
            path, trend=trend, label=label, payload=payload,
            llm=llm or {"scenario": "completion_stream", "prompt": "standard"})
        self._report_stream("STREAMING", ok, reply)
        return ok, reply

    # --- conversations ------------------------------------------------------------------

    async def create_conversation(self, title: str,
                                  trend: str = "conversation_time_ms") -> str | None:
        """POST /v1/conversations {title}: the new conversation's id (None on failure)."""
        self._log("[CREATE CONV] Creating new conversation...")
        ok, resp = await self._request(
            "POST", "/v1/conversations", trend=trend, json={"title": title}, checks={
                "create conversation status 2xx": is_2xx,
                "create conversation has id": has_id,
            })
        conversation_id = _body(resp)["id"] if ok else None
        self._report("CREATE CONV", ok, resp, f"conversation {conversation_id}" if ok else "")
        return conversation_id

    def _conv_extra(self, conversation_id: str) -> dict[str, Any]:
        return {"conversation": conversation_id, "store": True}

    async def conversation_chat(self, conversation_id: str, prompt: str,
                                trend: str = "completion_time_ms") -> bool:
        """POST /v1/conv/chat/completions, non-streamed, stored in the conversation."""
        ok, _ = await self.chat(
            prompt, trend=trend, label="conversation completion",
            path="/v1/conv/chat/completions", require_content=False,
            llm={"scenario": "conversation_nonstream", "prompt": "conversation"},
            **self._conv_extra(conversation_id))
        return ok

    async def conversation_chat_stream(self, conversation_id: str, prompt: str,
                                       trend: str = "completion_time_ms") -> bool:
        """POST /v1/conv/chat/completions, streamed, stored in the conversation."""
        ok, _ = await self.chat_stream(
            prompt, trend=trend, label="streaming completion",
            path="/v1/conv/chat/completions", temperature=0.7, max_tokens=150,
            llm={"scenario": "conversation_stream", "prompt": "conversation"},
            **self._conv_extra(conversation_id))
        return ok

    async def get_conversation(self, conversation_id: str,
                               trend: str = "conversation_time_ms") -> bool:
        self._log("[GET CONV] Loading conversation details...")
        ok, resp = await self._request(
            "GET", f"/v1/conversations/{conversation_id}", trend=trend,
            name="/v1/conversations/{id}", checks={
                "get conversation status 200": status_is(200),
                "get conversation has data": has_id_and_title,
            })
        self._report("GET CONV", ok, resp)
        return ok

    async def list_conversations(self, conversation_id: str | None = None,
                                 trend: str = "list_conversations_time_ms") -> bool:
        self._log("[LIST CONV] Loading conversations list...")
        ok, resp = await self._request("GET", "/v1/conversations", trend=trend, checks={
            "list conversations status 200": status_is(200),
            "list conversations has data": is_list,
        })
        found = ok and any(c.get("id") == conversation_id for c in _body(resp)["data"])
        self._report("LIST CONV", ok, resp, "found our conversation" if found else "")
        return ok

    async def conversation_items(self, conversation_id: str,
                                 trend: str = "conversation_items_time_ms") -> bool:
        self._log("[GET ITEMS] Loading conversation items...")
        ok, resp = await self._request(
            "GET", f"/v1/conversations/{conversation_id}/items", trend=trend,
            name="/v1/conversations/{id}/items", checks={
                "get items status 200": status_is(200),
                "get items has data": has_data_array,
            })
        self._report("GET ITEMS", ok, resp, f"{len(_body(resp)['data'])} items" if ok else "")
        return ok

    # --- responses ----------------------------------------------------------------------

    def response_payload(self, prompt: str, *, stream: bool,
                         tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.config.model,
                                   "input": [{"role": "user", "content": prompt}],
                                   "stream": stream}
        if tools:
            payload["tools"] = tools
        return payload

    async def response(self, prompt: str, *, trend: str, label: str,
                       tools: list[dict[str, Any]] | None = None) -> bool:
        """POST /v1/responses, not streamed."""
        self._log(f"[RESPONSE] {label}...")
        ok, resp = await self._request(
            "POST", "/v1/responses", trend=trend,
            json=self.response_payload(prompt, stream=False, tools=tools),
            llm={"scenario": "response_nonstream",
                 "prompt": "with_tools" if tools else "no_tools"},
            checks={
                f"{label} status 200": status_is(200),
                f"{label} has content": has_output,
            })
        self._report("RESPONSE", ok, resp)
        return ok

    async def response_stream(self, prompt: str, *, trend: str, label: str,
                              tools: list[dict[str, Any]] | None = None) -> bool:
        """POST /v1/responses with stream: Responses-API events (or chat chunks)."""
        self._log(f"[RESPONSE STREAM] {label}...")
        ok, reply = await self._stream(
            "/v1/responses", trend=trend, label=label,
            payload=self.response_payload(prompt, stream=True, tools=tools),
            llm={"scenario": "response_stream", "prompt": "with_tools" if tools else "no_tools"})
        self._report_stream("RESPONSE STREAM", ok, reply)
        if tools:
            self._log(f"[RESPONSE STREAM] tool calls: {reply.result.tool_calls}")
        return ok

"""LLM latency metrics from timed stream events (definitions: docs/metrics.md).

`StreamMeter` folds the server-sent events of one streamed response, each with its
arrival time, into time to first token, inter-token gaps, output tokens and the
problems seen. It understands OpenAI chat-completion chunks (`choices[].delta`,
`data: [DONE]`) and Responses-API events (`response.output_text.delta`,
`response.completed`, ...), and treats tool-call deltas as output. `measure_stream`
reads a streamed response of the HTTP client through a meter and records the
`llm_*` metrics; `measure_response` does the same for a non-streamed one.

Every time is a `time.perf_counter()` value in seconds; metrics are milliseconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol

import orjson

try:
    import cython
except ImportError:  # no Cython: the module runs as Python (as it does uncompiled)
    from .. import _cython_shim as cython

from ..http.limits import ERR_DECOMPRESSION, LIMIT_ERROR_CODES
from ..http.sse import SSELimitError, SSEParser
from ..http.transport import PieceSink
from ..metrics.registry import Registry, active_registry, current_tags

# Metric names (kept from the original dashboard: ttfb, receiving, total, queue,
# tokens_per_sec, errors; added: ttft, itl, tpot, output_tokens).
TTFT, ITL, TPOT = "llm_ttft_ms", "llm_itl_ms", "llm_tpot_ms"
TTFB, RECEIVING, TOTAL, QUEUE = "llm_ttfb_ms", "llm_receiving_ms", "llm_total_ms", "llm_queue_ms"
TOKENS_PER_SEC, OUTPUT_TOKENS, ERRORS = "llm_tokens_per_sec", "llm_output_tokens", "llm_errors"

TIME_TRENDS = (TTFT, ITL, TPOT, TTFB, RECEIVING, TOTAL, QUEUE)
VALUE_TRENDS = (TOKENS_PER_SEC, OUTPUT_TOKENS)

QUEUE_TIME_HEADER = "X-Queue-Time"

# Reasons tagged on llm_errors (one sample per reason per request).
INCOMPLETE = "incomplete"  # ended without [DONE] / response.completed
ERROR_EVENT = "error_event"  # an error object or event inside the stream
MALFORMED = "malformed_json"  # an event whose data is not a JSON object
HTTP_ERROR = "http_status"  # the response status was not 2xx
NETWORK = "network"  # no response at all (connection refused, timeout, ...)
LIMIT = "limit_exceeded"  # the response crossed a limit of http.limits (body, headers, events)

DONE_MARKER = "[DONE]"
_DONE_BYTES = DONE_MARKER.encode()
# Responses-API event types.
_TEXT_DELTAS = frozenset({
    "response.output_text.delta", "response.refusal.delta",
    "response.reasoning_text.delta", "response.reasoning_summary_text.delta",
})
_TOOL_DELTAS = frozenset({
    "response.function_call_arguments.delta", "response.custom_tool_call_input.delta",
    "response.mcp_call_arguments.delta",
})
_TERMINAL = frozenset({"response.completed", "response.incomplete"})
_FAILED = frozenset({"response.failed", "error", "response.error"})
_TOOL_ITEMS = frozenset({"function_call", "custom_tool_call", "mcp_call"})


@dataclass(slots=True)
class StreamResult:
    """What one streamed LLM response delivered, and when (times in perf_counter s)."""

    request_start: float
    headers_at: float | None
    end_at: float
    token_times: list[float]  # arrival of each event carrying content or a tool-call delta
    output_tokens: int
    usage_tokens: bool  # output_tokens came from the server's usage, not counted
    completed: bool  # [DONE] or response.completed arrived
    text: str  # the content deltas joined
    tool_calls: int
    events: int
    errors: list[str] = field(default_factory=list)
    error_message: str = ""  # the first error event's message or the transport error
    error_code: int = 0  # the request's error_code (k6's), 0 when it did not fail
    # the server's usage.prompt_tokens (input_tokens): the prompt as it counted it, chat
    # template included; None when it sent no usage
    prompt_tokens: int | None = None
    # --itl-per-chunk (vLLM's bench): the arrival of every chunk from the first token on,
    # empty ones included, whose gaps are the ITL; None: the gaps of token_times
    chunk_times: list[float] | None = None

    @property
    def ttft_ms(self) -> float | None:
        if not self.token_times:
            return None
        return (self.token_times[0] - self.request_start) * 1000.0

    @property
    def itl_ms(self) -> list[float]:
        t = self.token_times if self.chunk_times is None else self.chunk_times
        return [(b - a) * 1000.0 for a, b in pairwise(t)]

    @property
    def total_ms(self) -> float:
        return (self.end_at - self.request_start) * 1000.0

    @property
    def ttfb_ms(self) -> float | None:
        if self.headers_at is None:
            return None
        return (self.headers_at - self.request_start) * 1000.0

    @property
    def receiving_ms(self) -> float | None:
        if self.headers_at is None:
            return None
        return (self.end_at - self.headers_at) * 1000.0

    @property
    def tpot_ms(self) -> float | None:
        """(total − TTFT) / (output tokens − 1), as vLLM's benchmark defines TPOT."""
        ttft = self.ttft_ms
        if ttft is None or self.output_tokens < 2:
            return None
        return (self.total_ms - ttft) / (self.output_tokens - 1)

    @property
    def tokens_per_sec(self) -> float | None:
        if self.output_tokens <= 0 or self.end_at <= self.request_start:
            return None
        return self.output_tokens / (self.end_at - self.request_start)

    @property
    def ok(self) -> bool:
        return self.completed and not self.errors


# JSON of an unexpected shape (`"choices": 5`, `"tool_calls": 5`, a list as an id): a
# malformed event of that request, never an exception out of the meter, which would end
# the iteration and leave the request uncounted.
_SHAPE_ERRORS = (TypeError, AttributeError, ValueError)
UNEXPECTED_SHAPE = "stream event of an unexpected shape"


class StreamMeter:
    """Folds the events of one streamed response; `feed` each, then `finish` once."""

    __slots__ = (
        "_errors", "_events", "_parts", "_prompt", "_tool_ids", "_usage", "completed",
        "error_message", "headers_at", "request_start", "token_times",
    )

    def __init__(self, request_start: float, headers_at: float | None = None) -> None:
        self.request_start = request_start
        self.headers_at = headers_at
        self.token_times: list[float] = []
        self.completed = False
        self.error_message = ""
        self._parts: list[str] = []
        self._tool_ids: set[Any] = set()
        self._usage: int | None = None
        self._prompt: int | None = None
        self._errors: list[str] = []
        self._events = 0

    def feed(self, event: str | None, data: str, t: float) -> None:
        """One SSE event: its `event:` name (or None), its data, its arrival time."""
        self._events += 1
        if data == DONE_MARKER:
            self.completed = True
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error(MALFORMED, "malformed JSON in stream event")
            return
        try:
            self._judge(event, obj, t)
        except _SHAPE_ERRORS:
            self._error(MALFORMED, UNEXPECTED_SHAPE)

    def feed_data(self, data: bytes, t: float) -> None:
        """`feed` of an event of the default type, given as its raw UTF-8 data
        (`SSEParser.single_data`): the usual token event, parsed without decoding it
        to text first."""
        if data == _DONE_BYTES:
            self._events += 1
            self.completed = True
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:  # maybe only its UTF-8: judged as the text
            self.feed(None, data.decode("utf-8", "replace"), t)
            return
        self._events += 1
        # The usual chat chunk: straight to it (what _judge decides for it, inline).
        try:
            if type(obj) is dict and "type" not in obj and not obj.get("error"):
                self._chat_chunk(obj, t)
            else:
                self._judge(None, obj, t)
        except _SHAPE_ERRORS:
            self._error(MALFORMED, UNEXPECTED_SHAPE)

    def _judge(self, event: str | None, obj: Any, t: float) -> None:
        if not isinstance(obj, dict):
            self._error(MALFORMED, "stream event data is not a JSON object")
            return
        kind = obj.get("type")
        if isinstance(kind, str) and kind.startswith(("response.", "error")):
            self._responses_event(kind, obj, t)
        elif event == "error" or obj.get("error"):
            self._error(ERROR_EVENT, _error_text(obj.get("error", obj)))
        else:
            self._chat_chunk(obj, t)

    def _chat_chunk(self, obj: dict[str, Any], t: float) -> None:
        produced = False
        for choice in obj.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                # A legacy /v1/completions chunk carries its output as `text`.
                text = choice.get("text") if isinstance(choice, dict) else None
                if isinstance(text, str) and text:
                    self._parts.append(text)
                    produced = True
                continue
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._parts.append(content)
                produced = True
            # Reasoning tokens are output tokens too (vLLM's benchmark counts them).
            elif delta.get("reasoning_content") or delta.get("reasoning"):
                produced = True
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    # Deltas of one call share its index; only the first carries the id.
                    index = call.get("index")
                    self._tool_ids.add((choice.get("index", 0), index) if index is not None
                                       else call.get("id"))
                    produced = True
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._take_usage(usage, "completion_tokens", "prompt_tokens")
        if produced:
            self.token_times.append(t)

    def _responses_event(self, kind: str, obj: dict[str, Any], t: float) -> None:
        if kind in _TEXT_DELTAS:
            delta = obj.get("delta")
            if isinstance(delta, str) and delta:
                if kind == "response.output_text.delta":
                    self._parts.append(delta)
                self.token_times.append(t)
        elif kind in _TOOL_DELTAS:
            self._tool_ids.add(obj.get("item_id") or ("output", obj.get("output_index", 0)))
            self.token_times.append(t)
        elif kind == "response.output_item.added":
            item = obj.get("item")
            if isinstance(item, dict) and item.get("type") in _TOOL_ITEMS:
                self._tool_ids.add(item.get("id") or ("output", obj.get("output_index", 0)))
        elif kind in _TERMINAL:
            self.completed = True
            usage = (obj.get("response") or {}).get("usage")
            if isinstance(usage, dict):
                self._take_usage(usage, "output_tokens", "input_tokens")
        elif kind in _FAILED:
            response = obj.get("response") or {}
            self._error(ERROR_EVENT, _error_text(response.get("error") or obj.get("error") or obj))

    def _take_usage(self, usage: dict[str, Any], output_key: str, prompt_key: str) -> None:
        if (count := token_count(usage.get(output_key))) is not None:
            self._usage = count
        if (count := token_count(usage.get(prompt_key))) is not None:
            self._prompt = count

    def _error(self, reason: str, message: str) -> None:
        if reason not in self._errors:
            self._errors.append(reason)
        if not self.error_message:
            self.error_message = message

    def finish(self, end_at: float | None = None, transport_error: str = "") -> StreamResult:
        """The result; a stream that ended before its terminal event counts as incomplete."""
        if end_at is None:
            end_at = time.perf_counter()
        if transport_error and not self.error_message:
            self.error_message = transport_error
        errors = list(self._errors)
        if not self.completed:
            errors.append(INCOMPLETE)
        counted = len(self.token_times)
        return StreamResult(
            request_start=self.request_start,
            headers_at=self.headers_at,
            end_at=end_at,
            token_times=self.token_times,
            output_tokens=self._usage if self._usage is not None else counted,
            usage_tokens=self._usage is not None,
            completed=self.completed,
            text="".join(self._parts),
            tool_calls=len(self._tool_ids),
            events=self._events,
            errors=errors,
            error_message=self.error_message,
            prompt_tokens=self._prompt,
        )


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        msg = err.get("message") or err.get("error") or err.get("code")
        if msg:
            return str(msg)[:200]
    return str(err)[:200]


# --- non-streamed responses -------------------------------------------------------------

def usage_output_tokens(body: Any) -> int | None:
    """Output tokens from a chat-completion (`completion_tokens`) or Responses
    (`output_tokens`) usage object."""
    return _usage_count(body, ("completion_tokens", "output_tokens"))


def usage_prompt_tokens(body: Any) -> int | None:
    """Prompt tokens from a chat-completion (`prompt_tokens`) or Responses
    (`input_tokens`) usage object: the server's count, its chat template included."""
    return _usage_count(body, ("prompt_tokens", "input_tokens"))


def _usage_count(body: Any, keys: tuple[str, ...]) -> int | None:
    """The first of `keys` in the body's usage object that holds a token count."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    for key in keys:
        value = token_count(usage.get(key))
        if value is not None:
            return value
    return None


def token_count(value: Any) -> int | None:
    """A usage count the server may be trusted with: a whole number, 0 or more (a
    negative one would make throughputs negative and TPOT meet any bound)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def parse_queue_ms(headers: Mapping[str, str] | Any) -> float | None:
    """The X-Queue-Time header (milliseconds), if present and numeric."""
    raw = headers.get(QUEUE_TIME_HEADER) if headers is not None else None
    if raw is None:
        return None
    try:
        value = float(str(raw).strip().removesuffix("ms"))
    except ValueError:
        return None
    # "inf" would break the metric's sketch (and fail the request's recording), "nan"
    # its statistics: a header the server may send, so only a real duration counts.
    return value if 0 <= value < math.inf else None


# --- recording --------------------------------------------------------------------------

class LLMMetrics:
    """The llm_* metrics of one registry, and the recording of one response's samples."""

    def __init__(self, registry: Registry | None = None) -> None:
        reg = registry or active_registry()
        self.registry = reg
        self.trends = {n: reg.metric(n, "trend", True) for n in TIME_TRENDS}
        self.trends.update({n: reg.metric(n, "trend", False) for n in VALUE_TRENDS})
        self.errors = reg.metric(ERRORS, "counter")

    def _tags(self, tags: Mapping[str, Any] | None, status: int):
        """The running code's tags + the caller's (scenario, prompt) + status, as the
        original scripts tagged their LLM samples."""
        return current_tags.get().with_tags(tags).with_pairs(("status", str(status)))

    def record_stream(
        self, res: StreamResult, tags: Mapping[str, Any] | None = None,
        queue_ms: float | None = None, status: int = 200,
    ) -> None:
        ts = self._tags(tags, status)
        rec, m = self.registry.record, self.trends
        for name, value in (
            (TTFT, res.ttft_ms), (TPOT, res.tpot_ms), (TTFB, res.ttfb_ms),
            (RECEIVING, res.receiving_ms), (TOTAL, res.total_ms), (QUEUE, queue_ms),
            (TOKENS_PER_SEC, res.tokens_per_sec),
        ):
            if value is not None:
                rec(m[name], value, ts)
        if res.output_tokens or res.completed:
            rec(m[OUTPUT_TOKENS], float(res.output_tokens), ts)
        itl, gaps = m[ITL], res.itl_ms
        if self.registry.listeners:  # raw-sample outputs see every gap
            for gap in gaps:
                rec(itl, gap, ts)
        elif gaps:  # folded into the sketch once per stream, not once per token gap
            itl.sink(ts).add_many(gaps)
        self._record_errors(ts, _status_reasons(status, res.error_code) or res.errors)

    def record_response(
        self, *, status: int, ttfb_ms: float | None, receiving_ms: float | None,
        total_ms: float, body: Any = None, queue_ms: float | None = None,
        tags: Mapping[str, Any] | None = None, malformed: bool = False,
        error_code: int = 0,
    ) -> None:
        """A non-streamed completion: ttfb/receiving/total, tokens/s from usage.
        `error_code` is the request's (k6's), when it failed."""
        ts = self._tags(tags, status)
        rec, m = self.registry.record, self.trends
        for name, value in ((TTFB, ttfb_ms), (RECEIVING, receiving_ms), (QUEUE, queue_ms)):
            if value is not None:
                rec(m[name], value, ts)
        rec(m[TOTAL], total_ms, ts)
        tokens = usage_output_tokens(body) if 200 <= status < 300 else None
        if tokens:
            rec(m[OUTPUT_TOKENS], float(tokens), ts)
            if total_ms > 0:
                rec(m[TOKENS_PER_SEC], tokens / (total_ms / 1000.0), ts)
        reasons = _status_reasons(status, error_code)
        if not reasons and error_code:  # a 2xx whose body did not arrive whole
            reasons = [MALFORMED if error_code == ERR_DECOMPRESSION else INCOMPLETE]
        elif not reasons and malformed:
            reasons = [MALFORMED]
        elif not reasons and isinstance(body, dict) and body.get("error"):
            reasons = [ERROR_EVENT]
        self._record_errors(ts, reasons)

    def _record_errors(self, ts, reasons: list[str]) -> None:
        for reason in reasons:
            self.registry.record(self.errors, 1.0, ts.with_pairs(("reason", reason)))


def _status_reasons(status: int, error_code: int = 0) -> list[str]:
    """A failed response has no stream to judge: its status (or the limit it crossed)
    is the problem."""
    if error_code in LIMIT_ERROR_CODES:
        return [LIMIT]
    if status == 0:
        return [NETWORK]
    if not 200 <= status < 300:
        return [HTTP_ERROR]
    return []


# --- the HTTP client's streamed responses -----------------------------------------------

class SSEEventLike(Protocol):
    event: str | None
    data: str
    t: float


async def read_stream(resp: Any, meter_type: Any = StreamMeter) -> StreamResult:
    """Consume a streamed response (`stream=True`) of the HTTP client through a meter
    (a StreamMeter, or a subclass such as ChunkGapMeter)."""
    meter = meter_type(resp.request_start, getattr(resp, "headers_at", None))
    if 200 <= resp.status < 300:
        iter_chunks = getattr(resp, "iter_chunks", None)
        if iter_chunks is None:
            async for ev in resp.sse():
                meter.feed(ev.event, ev.data, ev.t)
        else:
            await _read_events(resp, iter_chunks, meter)
    result = meter.finish(_stream_end(resp), str(resp.error or ""))
    result.error_code = code = getattr(resp, "error_code", 0) or 0
    status_reasons = _status_reasons(resp.status, code)
    if status_reasons:
        result.errors = status_reasons  # no stream to judge: the status is the problem
    elif code == ERR_DECOMPRESSION:
        result.errors = [MALFORMED]  # the body did not decode: no event to judge
    return result


def _stream_end(resp: Any) -> float:
    """When the stream ended: the arrival of its last bytes, as the HTTP timings see
    it, never the time our parsing of them finished (a response without that stamp,
    not the HTTP client's, ends now)."""
    ended_at = getattr(resp, "ended_at", None)
    return ended_at if ended_at else time.perf_counter()


async def _read_events(resp: Any, iter_chunks: Any, meter: StreamMeter) -> None:
    sse_parser = getattr(resp, "sse_parser", None)
    parser = sse_parser() if sse_parser is not None else SSEParser()
    consume = getattr(resp, "consume", None)
    if consume is not None:
        await _consume_events(resp, consume, parser, meter)
        return
    # The events of each received chunk in one batch: no async-generator step per event
    # (about 10% of the per-event cost at high token rates).
    feed, parse = meter.feed, parser.feed
    t = 0.0
    try:
        async for data, t in iter_chunks():
            for ev in parse(data, t):
                feed(ev.event, ev.data, ev.t)
        for ev in parser.end(t):
            feed(ev.event, ev.data, ev.t)
    except SSELimitError as exc:
        _over_limit(resp, exc, feed)


class EventSink(PieceSink):
    """A consumed stream's pieces, parsed into events and metered as they are handed
    over. A PieceSink: in the compiled build, the transport's call per piece and this
    one's calls of the parser and the meter are C calls."""

    __slots__ = ("meter", "parser", "resp")

    def __init__(self, resp: Any, parser: SSEParser, meter: StreamMeter) -> None:
        self.resp = resp
        self.parser = parser
        self.meter = meter

    @cython.locals(parser=SSEParser, meter=StreamMeter)
    def take(self, data: bytes, t: float) -> None:
        parser, meter = self.parser, self.meter
        try:
            one = parser.single_data(data)  # the usual read: one token event, no object
            if one is not None:
                meter.feed_data(one, t)
                return
            for event, text, _id, at in parser.feed(data, t):
                meter.feed(event, text, at)
        except SSELimitError as exc:
            _over_limit(self.resp, exc, meter.feed)


async def _consume_events(resp: Any, consume: Any, parser: SSEParser,
                          meter: StreamMeter) -> None:
    """The HTTP client's fast path (`StreamResponse.consume`): the events of each loop
    pass's reads are parsed and metered by one plain callback after all of that pass's
    reads are stamped, so one event per read, the usual LLM stream, costs no task
    wake-up, no future and no async-generator step."""
    await consume(EventSink(resp, parser, meter))
    feed = meter.feed
    try:
        for ev in parser.end(_stream_end(resp)):
            feed(ev.event, ev.data, ev.t)
    except SSELimitError as exc:
        _over_limit(resp, exc, feed)


def _over_limit(resp: Any, exc: SSELimitError, feed: Any) -> None:
    """An event or the stream too large: the request fails; the events still within the
    limit are measured."""
    for ev in exc.events:
        feed(ev.event, ev.data, ev.t)
    resp.fail(exc.code, str(exc))


def measure_response(
    resp: Any, tags: Mapping[str, Any] | None = None, metrics: LLMMetrics | None = None,
) -> Any:
    """Record a non-streamed completion's llm_* samples; returns its parsed body (or None).

    TTFB and total run from the request's start (connection wait included), as for
    streams, so the two kinds compare.
    """
    t = resp.timings
    ttfb = t.blocked + t.connecting + t.tls_handshaking + t.sending + t.waiting
    body, malformed = None, False
    if 200 <= resp.status < 300:
        try:
            body = resp.json()
        except ValueError:
            malformed = True
        else:
            malformed = not isinstance(body, dict)
    (metrics or LLMMetrics()).record_response(
        status=resp.status, ttfb_ms=ttfb if resp.status else None,
        receiving_ms=t.receiving if resp.status else None, total_ms=ttfb + t.receiving,
        body=body, queue_ms=parse_queue_ms(resp.headers), tags=tags, malformed=malformed,
        error_code=resp.error_code if resp.error else 0,
    )
    return body


async def measure_stream(
    resp: Any, tags: Mapping[str, Any] | None = None, metrics: LLMMetrics | None = None,
) -> StreamResult:
    """Read a streamed response and record its llm_* samples with `tags`."""
    res = await read_stream(resp)
    (metrics or LLMMetrics()).record_stream(
        res, tags, queue_ms=parse_queue_ms(resp.headers), status=resp.status,
    )
    return res

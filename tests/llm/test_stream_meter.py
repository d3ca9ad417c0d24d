"""StreamMeter on event sequences with known arrival times (OpenAI chat chunks,
Responses-API events, tool calls, errors), and the recording of llm_* samples."""

from __future__ import annotations

from itertools import pairwise

import orjson
import pytest

from indigo_loadtest.llm.stream_metrics import (
    ERROR_EVENT,
    HTTP_ERROR,
    INCOMPLETE,
    MALFORMED,
    NETWORK,
    LLMMetrics,
    StreamMeter,
    parse_queue_ms,
    usage_output_tokens,
)
from indigo_loadtest.metrics import Registry

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


def chunk(content: str | None = None, **delta: object) -> str:
    d = dict(delta)
    if content is not None:
        d["content"] = content
    return orjson.dumps({"object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": d}]}).decode()


def event(kind: str, **fields: object) -> str:
    return orjson.dumps({"type": kind, **fields}).decode()


def feed_all(meter: StreamMeter, events: list[tuple[float, str]], name: str = "message"):
    for t, data in events:
        meter.feed(name, data, t)


def test_chat_stream_timings_follow_event_arrivals() -> None:
    start, headers = 10.0, 10.02
    arrivals = [10.1, 10.13, 10.17, 10.2]
    meter = StreamMeter(start, headers)
    meter.feed("message", chunk(role="assistant"), 10.05)  # role only: not a token
    feed_all(meter, [(t, chunk(f"tok{i} ")) for i, t in enumerate(arrivals)])
    meter.feed("message", "[DONE]", 10.21)
    res = meter.finish(10.25)

    assert res.completed and res.ok and res.errors == []
    assert res.ttft_ms == pytest.approx((arrivals[0] - start) * 1000)
    gaps = [(b - a) * 1000 for a, b in pairwise(arrivals)]
    assert res.itl_ms == pytest.approx(gaps)
    assert res.output_tokens == len(arrivals) and not res.usage_tokens
    total = (10.25 - start) * 1000
    assert res.total_ms == pytest.approx(total)
    assert res.tpot_ms == pytest.approx((total - res.ttft_ms) / (len(arrivals) - 1))
    assert res.ttfb_ms == pytest.approx((headers - start) * 1000)
    assert res.receiving_ms == pytest.approx((10.25 - headers) * 1000)
    assert res.tokens_per_sec == pytest.approx(len(arrivals) / (10.25 - start))
    assert res.text == "".join(f"tok{i} " for i in range(len(arrivals)))


def test_usage_chunk_gives_the_output_token_count() -> None:
    meter = StreamMeter(0.0, 0.01)
    feed_all(meter, [(0.1, chunk("a")), (0.2, chunk("bc"))])
    usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
    meter.feed("message", orjson.dumps(usage).decode(), 0.21)
    meter.feed("message", "[DONE]", 0.22)
    res = meter.finish(0.3)
    assert res.output_tokens == 7 and res.usage_tokens
    assert res.tpot_ms == pytest.approx((res.total_ms - res.ttft_ms) / 6)


def test_tool_call_deltas_count_as_first_output() -> None:
    meter = StreamMeter(0.0)
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "google_search", "arguments": ""}}
    meter.feed("message", chunk(tool_calls=[call]), 0.4)
    meter.feed("message", chunk(tool_calls=[{"index": 0, "function": {"arguments": "{\"q\""}}]),
               0.45)
    meter.feed("message", chunk(tool_calls=[{"index": 0, "function": {"arguments": ":1}"}}]),
               0.5)
    meter.feed("message", "[DONE]", 0.5)
    res = meter.finish(0.5)
    assert res.ttft_ms == pytest.approx(400)
    assert res.tool_calls == 1
    assert res.itl_ms == pytest.approx([50, 50])


def test_reasoning_deltas_are_output_tokens_but_not_text() -> None:
    meter = StreamMeter(0.0)
    meter.feed("message", chunk(reasoning_content="thinking"), 0.1)
    meter.feed("message", chunk("answer"), 0.2)
    meter.feed("message", "[DONE]", 0.2)
    res = meter.finish(0.2)
    assert res.ttft_ms == pytest.approx(100) and res.output_tokens == 2
    assert res.text == "answer"


def test_conversation_metadata_event_is_not_a_token() -> None:
    meter = StreamMeter(0.0)
    meter.feed("message", orjson.dumps({"conversation": {"id": "conv_1"}}).decode(), 0.05)
    meter.feed("message", chunk("hi"), 0.3)
    meter.feed("message", "[DONE]", 0.3)
    res = meter.finish(0.3)
    assert res.ttft_ms == pytest.approx(300) and res.ok


def test_responses_api_events() -> None:
    meter = StreamMeter(1.0, 1.01)
    meter.feed("response.created", event("response.created", response={"id": "r1"}), 1.02)
    meter.feed("response.output_item.added", event(
        "response.output_item.added", output_index=0,
        item={"type": "function_call", "id": "fc_1", "name": "google_search"}), 1.05)
    meter.feed("response.function_call_arguments.delta", event(
        "response.function_call_arguments.delta", item_id="fc_1", delta="{\"q\":"), 1.2)
    for i, t in enumerate((1.3, 1.35, 1.4)):
        meter.feed("response.output_text.delta",
                   event("response.output_text.delta", delta=f"w{i}"), t)
    meter.feed("response.completed", event(
        "response.completed", response={"id": "r1", "usage": {"output_tokens": 9}}), 1.45)
    res = meter.finish(1.5)
    assert res.completed and res.ok
    assert res.ttft_ms == pytest.approx(200)
    assert res.itl_ms == pytest.approx([100, 50, 50])
    assert res.tool_calls == 1
    assert res.output_tokens == 9 and res.usage_tokens
    assert res.text == "w0w1w2"


def test_responses_failed_event_is_an_error() -> None:
    meter = StreamMeter(0.0)
    meter.feed("response.output_text.delta", event("response.output_text.delta", delta="a"), 0.1)
    meter.feed("response.failed", event(
        "response.failed", response={"error": {"message": "model overloaded"}}), 0.2)
    res = meter.finish(0.2)
    assert ERROR_EVENT in res.errors and INCOMPLETE in res.errors
    assert res.error_message == "model overloaded"


def test_error_object_in_chat_stream() -> None:
    meter = StreamMeter(0.0)
    meter.feed("message", chunk("a"), 0.1)
    meter.feed("message", orjson.dumps({"error": {"message": "boom"}}).decode(), 0.2)
    meter.feed("message", "[DONE]", 0.3)
    res = meter.finish(0.3)
    assert res.errors == [ERROR_EVENT] and res.completed and not res.ok


def test_malformed_chunk_is_counted_once_and_the_stream_goes_on() -> None:
    meter = StreamMeter(0.0)
    meter.feed("message", chunk("a"), 0.1)
    meter.feed("message", '{"choices": [', 0.15)
    meter.feed("message", "[1, 2]", 0.16)
    meter.feed("message", chunk("b"), 0.2)
    meter.feed("message", "[DONE]", 0.25)
    res = meter.finish(0.25)
    assert res.errors == [MALFORMED]
    assert res.output_tokens == 2 and res.completed


def test_stream_without_terminal_event_is_incomplete() -> None:
    meter = StreamMeter(0.0)
    meter.feed("message", chunk("a"), 0.1)
    res = meter.finish(0.2, transport_error="connection reset by peer")
    assert res.errors == [INCOMPLETE] and not res.completed
    assert res.error_message == "connection reset by peer"
    assert res.tpot_ms is None  # one token: no time per *following* token


def test_empty_stream_has_no_ttft() -> None:
    res = StreamMeter(0.0).finish(0.1)
    assert res.ttft_ms is None and res.itl_ms == [] and res.tokens_per_sec is None


def test_usage_and_queue_header_helpers() -> None:
    assert usage_output_tokens({"usage": {"completion_tokens": 12}}) == 12
    assert usage_output_tokens({"usage": {"output_tokens": 3}}) == 3
    assert usage_output_tokens({"usage": {"completion_tokens": True}}) is None
    assert usage_output_tokens([]) is None
    assert parse_queue_ms({"X-Queue-Time": "12.5"}) == 12.5
    assert parse_queue_ms({"X-Queue-Time": "7ms"}) == 7.0
    assert parse_queue_ms({"X-Queue-Time": "soon"}) is None
    assert parse_queue_ms({}) is None


def _samples(reg: Registry, name: str):
    return {ts: sink for ts, sink in reg.get(name).sinks.items()}


def test_record_stream_tags_and_counts() -> None:
    reg = Registry()
    llm = LLMMetrics(reg)
    meter = StreamMeter(0.0, 0.01)
    feed_all(meter, [(0.1, chunk("a")), (0.12, chunk("b")), (0.15, chunk("c"))])
    meter.feed("message", '{"bad', 0.16)
    res = meter.finish(0.2)  # malformed and no [DONE]
    llm.record_stream(res, {"scenario": "completion_stream", "status": "200",
                            "prompt": "standard"}, queue_ms=4.0)

    itl = reg.get("llm_itl_ms").aggregate()
    assert itl.count == 2
    ttft = reg.get("llm_ttft_ms").aggregate()
    assert ttft.count == 1 and ttft.max == pytest.approx(100, rel=1e-2)
    assert reg.get("llm_queue_ms").aggregate().max == pytest.approx(4.0, rel=1e-2)
    assert reg.get("llm_output_tokens").aggregate().max == pytest.approx(3, rel=1e-2)
    (ts,) = reg.get("llm_ttft_ms").sinks
    assert ts.as_dict() == {"scenario": "completion_stream", "status": "200",
                            "prompt": "standard"}
    errors = {t.get("reason"): s.value for t, s in reg.get("llm_errors").sinks.items()}
    assert errors == {MALFORMED: 1.0, INCOMPLETE: 1.0}


def test_record_response_for_statuses() -> None:
    reg = Registry()
    llm = LLMMetrics(reg)
    body = {"choices": [{"message": {"content": "x"}}], "usage": {"completion_tokens": 50}}
    llm.record_response(status=200, ttfb_ms=400.0, receiving_ms=100.0, total_ms=500.0, body=body)
    llm.record_response(status=429, ttfb_ms=3.0, receiving_ms=0.1, total_ms=3.1, body=None)
    llm.record_response(status=0, ttfb_ms=None, receiving_ms=None, total_ms=1.0)
    tps = reg.get("llm_tokens_per_sec").aggregate()
    assert tps.count == 1 and tps.max == pytest.approx(100.0, rel=1e-2)  # 50 tokens / 0.5 s
    assert reg.get("llm_total_ms").aggregate().count == 3
    assert reg.get("llm_ttfb_ms").aggregate().count == 2
    errors = {t.get("reason"): s.value for t, s in reg.get("llm_errors").sinks.items()}
    assert errors == {HTTP_ERROR: 1.0, NETWORK: 1.0}


def test_completions_text_chunks_are_output_tokens() -> None:
    # Legacy /v1/completions streams carry `choices[].text`, not a delta.
    meter = StreamMeter(0.0)
    meter.feed(None, '{"choices": [{"index": 0, "text": "Hello"}]}', 0.1)
    meter.feed(None, '{"choices": [{"index": 0, "text": ""}]}', 0.15)
    meter.feed(None, '{"choices": [{"index": 0, "text": " world"}]}', 0.2)
    meter.feed(None, '{"choices": [], "usage": {"completion_tokens": 2}}', 0.21)
    meter.feed(None, "[DONE]", 0.22)
    res = meter.finish(0.25)
    assert res.text == "Hello world" and res.token_times == [0.1, 0.2]
    assert res.ttft_ms == pytest.approx(100.0) and res.output_tokens == 2 and res.ok


RAW_EVENTS = [
    b'{"choices":[{"index":0,"delta":{"content":"hi"}}]}',
    b'{"choices":[{"index":0,"delta":{"content":"caf\xc3\xa9"}}]}',
    b'{"choices":[{"index":0,"delta":{"content":"bad \xff utf-8"}}]}',  # not UTF-8
    b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1"}]}}]}',
    b'{"choices":[],"usage":{"completion_tokens":7}}',
    b'{"type":"response.output_text.delta","delta":"x"}',
    b'{"error":{"message":"overloaded"}}',
    b'not json', b'[1, 2]', b'\xff\xfe', b'[DONE]',
]


@pytest.mark.parametrize("order", [list(range(len(RAW_EVENTS))),
                                   list(reversed(range(len(RAW_EVENTS))))])
def test_feed_data_of_raw_bytes_equals_feed_of_the_decoded_text(order: list[int]) -> None:
    # The fast path hands the meter an event's undecoded bytes; whatever they hold
    # (invalid UTF-8 included), the result is that of the text the parser decodes.
    raw, text = StreamMeter(0.0), StreamMeter(0.0)
    for n, i in enumerate(order):
        raw.feed_data(RAW_EVENTS[i], float(n + 1))
        text.feed("message", RAW_EVENTS[i].decode("utf-8", "replace"), float(n + 1))
    assert raw.finish(20.0) == text.finish(20.0)

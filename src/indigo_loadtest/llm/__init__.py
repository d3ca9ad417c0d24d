"""LLM streaming metrics: TTFT, inter-token latency, TPOT, tokens/s (docs/metrics.md)."""

from .stream_metrics import (
    LLMMetrics,
    StreamMeter,
    StreamResult,
    measure_response,
    measure_stream,
    parse_queue_ms,
    read_stream,
    usage_output_tokens,
)

__all__ = [
    "LLMMetrics", "StreamMeter", "StreamResult", "measure_response", "measure_stream",
    "parse_queue_ms", "read_stream", "usage_output_tokens",
]

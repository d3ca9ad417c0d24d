"""`bench --itl-per-chunk`: ITL as `vllm bench serve` takes it, one gap per chunk.

vLLM's server sends chunks with an empty delta mid-stream (e.g. a token that decodes to
no text yet); vLLM's bench takes a gap at every chunk carrying `choices`, the default
meter only at a chunk carrying output. This meter, a subclass, records every such chunk
from the first token on, so the default meter's per-event path costs nothing more.
"""

from __future__ import annotations

from typing import Any

from .stream_metrics import StreamMeter, StreamResult


class ChunkGapMeter(StreamMeter):
    """A StreamMeter whose ITL gaps run between chunks, empty ones included."""

    __slots__ = ("chunk_times",)

    def __init__(self, request_start: float, headers_at: float | None = None) -> None:
        super().__init__(request_start, headers_at)
        self.chunk_times: list[float] = []

    def _chat_chunk(self, obj: dict[str, Any], t: float) -> None:
        StreamMeter._chat_chunk(self, obj, t)
        # From the first token on (TTFT stays the first token's), as vLLM's bench from
        # its first chunk; a usage-only chunk (no choices) is not a gap.
        if self.token_times and obj.get("choices"):
            self.chunk_times.append(t)

    def finish(self, end_at: float | None = None, transport_error: str = "") -> StreamResult:
        result = StreamMeter.finish(self, end_at, transport_error)
        # /v1/responses events have no chunks: their gaps stay the token events'
        result.chunk_times = self.chunk_times or None
        return result

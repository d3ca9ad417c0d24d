"""Target 2: SSE events parsed and timed per generator core, ours against a plain
aiohttp stream reader (the way LLM benchmark tools read streams).

nginx (one worker, target core) serves a static text/event-stream of OpenAI-style
chat-completion chunks; it is not the bottleneck. Both readers, pinned to the
generator core, keep STREAMS streams going for a fixed time; each event is parsed
(SSE framing and the chunk's JSON), timestamped and its inter-token gap kept. Ours
goes through the product's own LLM stream metrics (`measure_stream`), which also
record TTFT, every inter-token gap, TPOT, tokens/s and the output tokens.

    python bench/bench_streaming.py [--runs 3] [--duration 10]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench_vs_peers import from_summary
from common import (
    GEN_CORE,
    PEERS_DIR,
    PYTHON,
    Row,
    bench_main,
    interleaved,
    nginx,
    ours_cmd,
    per_second,
    pinned,
    run,
)

STREAMS = 20
EVENTS_PER_STREAM = 500
EVENT = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"bench","choices":[{"index":0,"delta":{"content":" tok"},'
    b'"finish_reason":null}]}\n\n'
)
DONE = b"data: [DONE]\n\n"

OURS_SCENARIO = '''"""Bench: read an SSE stream through the LLM stream metrics."""
from indigo_loadtest import Counter, env
from indigo_loadtest.llm.stream_metrics import LLMMetrics, measure_stream

options = {"vus": %(vus)d, "duration": "%(duration)ss"}
URL = env["BENCH_URL"]
events = Counter("sse_events")
llm = LLMMetrics()


async def default(vu):
    # Every event: SSE framing, its JSON chunk, its arrival time; then TTFT, every
    # inter-token gap, TPOT, tokens/s and the token count go into llm_* metrics.
    resp = await vu.http.get(URL, stream=True)
    result = await measure_stream(resp, metrics=llm)
    events.add(result.events - int(result.completed))  # [DONE] is not an event of data
'''


def sse_body() -> tuple[bytes, int]:
    """The static stream nginx serves: (one repeated unit, repetitions)."""
    return EVENT, EVENTS_PER_STREAM


def ours_events_per_s(url: str, duration: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d:
        tmp = Path(d)
        script = tmp / "bench_stream.py"
        script.write_text(OURS_SCENARIO % {"vus": STREAMS, "duration": duration})
        export = tmp / "summary.json"
        cmd = ours_cmd("run", str(script), "--workers", "1", "--env", f"BENCH_URL={url}/sse",
                       "--summary-export", str(export), "--quiet")
        res = run(pinned(cmd, GEN_CORE), timeout=duration + 60, cwd=tmp)
        return from_summary(export, res, "sse_events")


def aiohttp_events_per_s(url: str, duration: float) -> tuple[float, float]:
    cmd = [PYTHON, str(PEERS_DIR / "aiohttp_stream_reader.py"), f"{url}/sse", str(STREAMS),
           str(duration)]
    res = run(pinned(cmd, GEN_CORE), timeout=duration + 60)
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    return per_second(stats["events"], stats["seconds"], res)


def bench(runs: int, duration: float) -> list[Row]:
    unit, count = sse_body()
    # The [DONE] sentinel ends each stream, so both readers stop at the same place.
    with nginx(sse_events=count, sse_bytes=unit, tail=DONE) as url:
        results = interleaved(runs, {
            "ours": (lambda: ours_events_per_s(url, duration), "events/s"),
            "aiohttp reader": (lambda: aiohttp_events_per_s(url, duration), "events/s"),
        })
    rows = []
    for per_cpu in (False, True):
        ours, ref = results["ours"], results["aiohttp reader"]
        if per_cpu:
            ours, ref = ours.per_cpu(), ref.per_cpu()
        what = "per CPU-second" if per_cpu else "1 core"
        row = Row(f"2. SSE events parsed+timed, {what}, {STREAMS} streams", ours, ref, "≥ 3×")
        if row.ratio is not None:
            row.verdict = row.ratio >= 3.0
        rows.append(row)
    return rows


def main() -> None:
    bench_main(__doc__, bench)


if __name__ == "__main__":
    main()

"""What the standard library's event loop costs against uvloop (Windows has no uvloop;
docs/platforms.md): the same runs with `INDIGO_EVENT_LOOP=asyncio` and without,
interleaved, ours on the generator core.

- requests per CPU-second: bench_vs_peers' scenario (50 VUs, trivial keep-alive GETs
  from nginx), where the loop's per-request work shows most;
- SSE events parsed and timed per CPU-second: bench_streaming's scenario (20 streams
  read through the LLM stream metrics from nginx);
- timing overhead, the measured request duration minus the server's own time (median):
  bench_overhead's scenario (one VU, keep-alive GETs to the timing server).

    python bench/bench_event_loop.py [--runs 3] [--duration 10]
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from bench_overhead import ours_overhead_us
from bench_streaming import DONE, STREAMS, ours_events_per_s, sse_body
from bench_vs_peers import CONNECTIONS, ours_rate
from common import (
    PEERS_DIR,
    PYTHON,
    TARGET_CORE,
    Figure,
    Row,
    background,
    bench_main,
    free_port,
    interleaved,
    nginx,
    pinned,
)

LOOPS = ("uvloop", "asyncio")
OVERHEAD_DURATION = 5.0  # s: bench_overhead's own default


@contextlib.contextmanager
def event_loop(name: str) -> Iterator[None]:
    """INDIGO_EVENT_LOOP for the commands started meanwhile (they inherit os.environ)."""
    before = os.environ.get("INDIGO_EVENT_LOOP")
    os.environ["INDIGO_EVENT_LOOP"] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("INDIGO_EVENT_LOOP", None)
        else:
            os.environ["INDIGO_EVENT_LOOP"] = before


def on(name: str, fn: Callable[[], Figure]) -> Callable[[], Figure]:
    def measured() -> Figure:
        with event_loop(name):
            return fn()

    return measured


def bench(runs: int, duration: float) -> list[Row]:
    with nginx() as url:
        requests = interleaved(runs, {
            name: (on(name, lambda: ours_rate(url, duration)), "req/s") for name in LOOPS})
    unit, count = sse_body()
    with nginx(sse_events=count, sse_bytes=unit, tail=DONE) as url:
        streams = interleaved(runs, {
            name: (on(name, lambda: ours_events_per_s(url, duration)), "events/s")
            for name in LOOPS})
    port = free_port()
    server = pinned([PYTHON, str(PEERS_DIR / "servers.py"), "timing", str(port)], TARGET_CORE)
    with background(server, port=port):
        target = f"http://127.0.0.1:{port}"
        overhead = interleaved(runs, {
            name: (on(name, lambda: ours_overhead_us(target, OVERHEAD_DURATION)), "µs")
            for name in LOOPS})
    # "ours" is uvloop, the reference the standard loop: "× better" is uvloop's advantage.
    return [
        Row(f"requests per CPU-second, {CONNECTIONS} VUs, keep-alive GETs",
            requests["uvloop"].per_cpu(), requests["asyncio"].per_cpu()),
        Row(f"SSE events parsed+timed per CPU-second, {STREAMS} streams",
            streams["uvloop"].per_cpu(), streams["asyncio"].per_cpu()),
        Row("timing overhead (duration − server time), median", overhead["uvloop"],
            overhead["asyncio"], higher_is_better=False),
    ]


def main() -> None:
    bench_main(__doc__, bench)


if __name__ == "__main__":
    main()

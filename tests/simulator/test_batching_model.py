"""The batching latency model (docs/simulator.md), observed from the client over real
sockets: prefill grows with the prompt and queues behind other prefills, each decode step
grows with the sequences in the batch, and requests beyond the batch wait for a slot."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import aiohttp
import pytest
from sim_helpers import API_KEY, bearer

from indigo_loadtest.simulator.process import SimulatorProcess, start_simulator_process

# prefill = 20 ms + 2 ms per prompt token; step = 20 ms + 10 ms per sequence in the batch
PREFILL_MS, PER_TOKEN_MS, STEP_MS, PER_SEQ_MS = 20.0, 2.0, 20.0, 10.0
SLOTS = 2
REPLY = 6
# A time seen by the client is never early (the server's timers wait for absolute
# deadlines) but may be late when a busy machine runs the server's timer or the client's
# read a little after it was due: a tight bound below, a stated margin above. The exact
# figures on an idle core are bench/'s (bench_ttft_stamps.py).
EARLY_MS = 3.0
LATE_MS = 25.0
pytestmark = pytest.mark.needs_idle_core  # step medians within 3 ms: timer precision


def near(measured: float, expected: float) -> bool:
    return expected - EARLY_MS <= measured <= expected + LATE_MS


def prefill_ms(prompt_tokens: int) -> float:
    return PREFILL_MS + PER_TOKEN_MS * prompt_tokens


def step_ms(active: int) -> float:
    return STEP_MS + PER_SEQ_MS * active


@pytest.fixture(scope="module")
def batching() -> Iterator[SimulatorProcess]:
    proc = start_simulator_process(
        api_key=API_KEY, latency_model="batching", prefill_ms=PREFILL_MS,
        prefill_ms_per_token=PER_TOKEN_MS, step_ms=STEP_MS, step_ms_per_seq=PER_SEQ_MS,
        slots=SLOTS, reply_tokens=REPLY)
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Timed:
    ttft_ms: float
    gaps_ms: list[float]  # between content events
    total_ms: float
    queue_ms: float
    started: float  # perf_counter when the request was sent: the real stagger


def prompt(tokens: int) -> str:
    return " ".join(["word"] * tokens)  # one simulator token per word


async def timed(session: aiohttp.ClientSession, url: str, tokens: int, stream: bool = True,
                headers: Mapping[str, str] | None = None) -> Timed:
    body = {"model": "jan-v1-4b", "stream": stream,
            "messages": [{"role": "user", "content": prompt(tokens)}]}
    started = time.perf_counter()
    async with session.post(url + "/v1/chat/completions", json=body,
                            headers={**bearer(API_KEY), **(headers or {})}) as resp:
        assert resp.status == 200
        arrivals = [time.perf_counter() async for line in resp.content
                    if line.startswith(b"data: {") and b'"content"' in line]
        ended = time.perf_counter()
        queue_ms = float(resp.headers["X-Queue-Time"])
    first = arrivals[0] if arrivals else ended
    return Timed((first - started) * 1000, [(b - a) * 1000 for a, b in
                                            itertools.pairwise(arrivals)],
                 (ended - started) * 1000, queue_ms, started)


def run_together(url: str, *tokens: int, stagger_s: float = 0.0) -> list[Timed]:
    async def main() -> list[Timed]:
        async with aiohttp.ClientSession() as session:
            async def one(k: int, n: int) -> Timed:
                await asyncio.sleep(k * stagger_s)
                return await timed(session, url, n)
            return await asyncio.gather(*(one(k, n) for k, n in enumerate(tokens)))
    return asyncio.run(main())


def test_prefill_grows_with_the_prompt_and_a_lone_stream_steps_at_batch_one(
        batching: SimulatorProcess) -> None:
    short, = run_together(batching.url, 5)
    long, = run_together(batching.url, 30)
    assert near(short.ttft_ms, prefill_ms(5) + step_ms(1)), short
    assert near(long.ttft_ms, prefill_ms(30) + step_ms(1)), long
    # either may be the late one
    assert abs(long.ttft_ms - short.ttft_ms - PER_TOKEN_MS * 25) <= LATE_MS, (short, long)
    assert len(short.gaps_ms) == REPLY - 1
    assert statistics.median(short.gaps_ms) == pytest.approx(step_ms(1), abs=3)


def test_steps_slow_down_as_the_batch_fills_and_requests_beyond_it_wait(
        batching: SimulatorProcess) -> None:
    # Three requests 5 ms apart with two slots: the first two share the batch (their
    # prefills one after the other), the third waits for the first one's slot.
    first, second, third = run_together(batching.url, 5, 5, 5, stagger_s=0.005)
    assert first.queue_ms < 5 and second.queue_ms < 5
    # The first's first step holds both sequences if the second arrived before it began
    # (as planned) or one if a busy machine sent the second late: either is the model.
    assert (prefill_ms(5) + step_ms(1) - EARLY_MS <= first.ttft_ms
            <= prefill_ms(5) + step_ms(2) + LATE_MS), first
    # The second's prefill starts when the first's ends, `sent_ms` after it was sent (5 ms
    # as planned; what the client really waited is measured, a busy machine's is longer).
    sent_ms = (second.started - first.started) * 1000
    assert sent_ms < prefill_ms(5), second
    assert near(second.ttft_ms, 2 * prefill_ms(5) - sent_ms + step_ms(2)), second
    assert statistics.median(first.gaps_ms) == pytest.approx(step_ms(2), abs=3)
    # The server's queue time against the first's end as the client saw it, which a late
    # read can make later: off either way.
    first_done = first.ttft_ms + (REPLY - 1) * step_ms(2)
    waited = first_done - (third.started - first.started) * 1000
    assert abs(third.queue_ms - waited) <= LATE_MS, (first, third)


def test_a_request_that_sets_its_timing_keeps_it_and_a_plain_answer_waits_for_all(
        batching: SimulatorProcess) -> None:
    async def main() -> tuple[Timed, Timed]:
        async with aiohttp.ClientSession() as session:
            pinned = await timed(session, batching.url, 5, headers={
                "X-Sim-TTFT-Ms": "50", "X-Sim-Tokens-Per-Sec": "100"})
            plain = await timed(session, batching.url, 5, stream=False)
            return pinned, plain
    pinned, plain = asyncio.run(main())
    assert near(pinned.ttft_ms, 50), pinned
    assert statistics.median(pinned.gaps_ms) == pytest.approx(10, abs=3)
    assert near(plain.total_ms, prefill_ms(5) + REPLY * step_ms(1)), plain

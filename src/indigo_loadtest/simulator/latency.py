"""The latency models (generation slots, TTFT, decode speed) and fault injection.

A generation first waits for one of `slots` concurrent slots (FIFO; the wait is the
`X-Queue-Time` header). With the fixed-speed model (the default) its first token is then
due `ttft_ms` later and each next token 1/`tokens_per_sec` after the previous one. With
the batching model (`latency_model="batching"`, docs/simulator.md) the prompt's prefill
takes `prefill_ms + prefill_ms_per_token * prompt_tokens` behind the prefills queued before
it, and each token takes one decode step of `step_ms + step_ms_per_seq * active`, `active`
being the slots in use when the step starts. Token times are absolute deadlines (on
`time.perf_counter`) chained from the moment the slot was granted, so timer lateness never
accumulates over a stream.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import FAULT_KINDS, SimulatorConfig

# Per-request overrides (documented in docs/simulator.md).
H_TTFT = "X-Sim-TTFT-Ms"
H_TPS = "X-Sim-Tokens-Per-Sec"
H_REPLY = "X-Sim-Reply-Tokens"
H_FAULT = "X-Sim-Fault"
# The accepted range of each override: outside it, 400. They bound what one client can
# make the server hold (a slot, memory for the reply, a timer) however it sets them.
TTFT_MS_RANGE = (0.0, 60_000.0)
TPS_RANGE = (1.0, 1_000_000.0)  # or exactly 0: every token at once
REPLY_TOKENS_RANGE = (1, 4096)
QUEUE_TIME = "X-Queue-Time"
# The event loop's timers have millisecond granularity and fire up to ~1 ms late (about
# +0.35 ms on average); aiming 0.3 ms early centres the error of each token time on zero.
TIMER_BIAS_S = 0.0003


class QueueFull(Exception):
    """More requests wait for a slot than `queue_limit` allows."""


class HeaderError(ValueError):
    """An X-Sim-* header with an unusable value (answered 400)."""


@dataclass(frozen=True)
class Plan:
    """How one generation behaves: its timings and its injected fault (or None)."""

    ttft_s: float
    interval_s: float
    reply_tokens: int
    fault: str | None
    # Timed by the batching model: then ttft_s is only the slow-start delay, and
    # interval_s is unused (the decode steps set the pace).
    batched: bool = False


class Slots:
    """N concurrent generation slots with a FIFO queue in front."""

    def __init__(self, count: int, queue_limit: int = 0) -> None:
        self.count = count
        self.free = count
        self.queue_limit = queue_limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def in_use(self) -> int:
        return self.count - self.free

    async def acquire(self) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        if self.queue_limit and len(self._waiters) >= self.queue_limit:
            raise QueueFull
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted and cancelled at once: pass the slot on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class LatencyModel:
    """Turns the settings and a request's X-Sim-* headers into a `Plan`."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.slots = Slots(config.slots, config.queue_limit)
        self.batch = Batch(config, self.slots)
        self.rng = random.Random(config.seed)
        c = config
        self._fault_edges = []
        edge = 0.0
        for kind, rate in zip(FAULT_KINDS, (c.error_rate, c.rate_limit_rate, c.slow_start_rate,
                                            c.drop_rate, c.malformed_rate), strict=True):
            if rate > 0:
                edge += rate
                self._fault_edges.append((edge, kind))

    def plan(self, headers: Mapping[str, str]) -> Plan:
        """The request's plan; its X-Sim-* headers count unless overrides are disabled."""
        c = self.config
        if c.no_overrides:
            headers = {}
        ttft_ms = _override(headers, H_TTFT, c.ttft_ms, TTFT_MS_RANGE)
        tps = _override(headers, H_TPS, c.tokens_per_sec, TPS_RANGE, zero_ok=True)
        reply = _override(headers, H_REPLY, c.reply_tokens, REPLY_TOKENS_RANGE, kind=int)
        fault = self._fault(headers.get(H_FAULT))
        slow_s = c.slow_start_ms / 1000.0 if fault == "slow_start" else 0.0
        # A request that sets its own timing keeps it under the batching model too.
        if c.latency_model == "batching" and H_TTFT not in headers and H_TPS not in headers:
            return Plan(slow_s, 0.0, reply, fault, batched=True)
        ttft_s = ttft_ms / 1000.0 + slow_s
        interval_s = 1.0 / tps if tps > 0 else 0.0
        if c.jitter:
            ttft_s *= 1.0 + self.rng.uniform(-c.jitter, c.jitter)
            interval_s *= 1.0 + self.rng.uniform(-c.jitter, c.jitter)
        return Plan(ttft_s, interval_s, reply, fault)

    def timeline(self, plan: Plan, start: float, prompt_tokens: int) -> Timeline:
        """The token times of a generation whose slot was granted at `start`."""
        if plan.batched:
            return BatchTimeline(plan, start, self.batch, prompt_tokens)
        return Timeline(plan, start)

    def _fault(self, forced: str | None) -> str | None:
        if forced is not None:
            forced = forced.strip().lower()
            if forced in ("", "none"):
                return None
            if forced not in FAULT_KINDS:
                raise HeaderError(f"{H_FAULT} must be one of none, {', '.join(FAULT_KINDS)}")
            return forced
        if not self._fault_edges:
            return None
        draw = self.rng.random()
        for edge, kind in self._fault_edges:
            if draw < edge:
                return kind
        return None


class Batch:
    """The batching model's shared state: one prefill lane (prompts are prefilled one
    after another) and the batch, whose size sets the length of every decode step."""

    def __init__(self, config: SimulatorConfig, slots: Slots) -> None:
        self.slots = slots
        self.prefill_s = config.prefill_ms / 1000.0
        self.prefill_per_token_s = config.prefill_ms_per_token / 1000.0
        self.step_s_base = config.step_ms / 1000.0
        self.step_s_per_seq = config.step_ms_per_seq / 1000.0
        self.lane_free = 0.0  # perf_counter when the prefills queued so far are done

    def prefill_end(self, now: float, prompt_tokens: int) -> float:
        """When a prompt arriving `now` is prefilled, after those queued before it."""
        begin = max(now, self.lane_free)
        self.lane_free = begin + self.prefill_s + self.prefill_per_token_s * prompt_tokens
        return self.lane_free

    def step_s(self) -> float:
        """One decode step with the batch as it is now (every slot in use counts)."""
        return self.step_s_base + self.step_s_per_seq * self.slots.in_use


class Timeline:
    """When each token of one generation is due (perf_counter deadlines), fixed speed:
    token i at start + ttft + i * interval."""

    def __init__(self, plan: Plan, start: float) -> None:
        self.plan = plan
        self.start = start
        self.index = 0

    def next(self) -> float:
        """The deadline of the next token."""
        deadline = self.start + self.plan.ttft_s + self.index * self.plan.interval_s
        self.index += 1
        return deadline

    async def finish(self, count: int) -> None:
        """Wait until the last of `count` tokens is generated (a non-streamed answer)."""
        self.index = max(count, 1) - 1
        await sleep_until(self.next())


class BatchTimeline(Timeline):
    """Batching: the first token leaves with the decode step that follows the prompt's
    prefill; each next one a step later, the step's length read when it starts (at the
    previous token), so sequences joining or leaving the batch change it from then on."""

    def __init__(self, plan: Plan, start: float, batch: Batch, prompt_tokens: int) -> None:
        super().__init__(plan, start)
        self.batch = batch
        self.due = batch.prefill_end(start, prompt_tokens) + plan.ttft_s

    def next(self) -> float:
        self.due += self.batch.step_s()
        self.index += 1
        return self.due

    async def finish(self, count: int) -> None:
        for _ in range(max(count, 1)):  # step by step: the batch may change meanwhile
            await sleep_until(self.next())


def _override(headers: Mapping[str, str], name: str, default: float,
              bounds: tuple[float, float], kind: type = float, zero_ok: bool = False) -> Any:
    """The header's value as `kind` within `bounds` (or 0 when `zero_ok`), else 400."""
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise HeaderError(f"{name} must be {'an integer' if kind is int else 'a number'}") \
            from None
    low, high = bounds
    if not (low <= value <= high or (zero_ok and value == 0)):  # NaN fails both
        zero = "0 or " if zero_ok else ""
        raise HeaderError(f"{name} must be {zero}between {low:g} and {high:g}")
    return value


async def sleep_until(deadline: float) -> None:
    """Sleep until time.perf_counter() reaches `deadline` (no-op if it already passed).

    perf_counter, not loop.time(): the loop's clock is cached per iteration in whole ms."""
    delay = deadline - time.perf_counter() - TIMER_BIAS_S
    if delay > 0:
        await asyncio.sleep(delay)

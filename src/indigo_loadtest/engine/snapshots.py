"""The live snapshots of a sharded run (`--workers`, `--ray`): when each shard takes them
(the same load-clock instants in every shard), and the request rate the parent measures
from them.

A snapshot is `Registry.state()` with the load-clock instant it holds the shard's
measurements up to (seconds since the common start, on the shard's own clock): the
parent dates the merged live view by the oldest of them (`WorkerPool.live_as_of`), and
takes each shard's request rate between two of its own (RequestRates)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from ..metrics.registry import Registry


async def send_snapshots(conn: Connection, registry: Registry, interval: float,
                          start_at: float) -> None:
    """Each snapshot with the load-clock instant it holds the shard's measurements up to
    (see `snapshot_times`); the parent measures each worker's request rate between two
    of them (see RequestRates) and dates the run's live series by them."""
    for at in snapshot_times(interval, start_at):
        await asyncio.sleep(max(0.0, start_at + at - time.monotonic()))
        conn.send(("state", registry.state(), time.monotonic() - start_at))


def snapshot_times(interval: float, start_at: float) -> Iterator[float]:
    """When a shard takes its snapshots, in seconds of the load clock: the first soon, so
    the progress line shows the VUs from the start, then on the multiples of `interval`,
    the same instants in every shard, so that the merged live view of the shards is one
    instant's (the series' points are dated by it: metrics.timeseries)."""
    at = min(interval, FIRST_SNAPSHOT_DELAY)
    while True:
        yield at
        now = time.monotonic() - start_at
        at = (math.floor(max(now, at) / interval + 1e-9) + 1) * interval


FIRST_SNAPSHOT_DELAY = 0.2


class RequestRates:
    """The live request rate of a `--workers` run: each worker's own rate between its
    last two snapshots, summed. Snapshots arrive at different moments; a rate from the
    merged total between two progress lines would count a worker's second of requests
    in one line and none in the next."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[float, float]] = {}
        self._rates: dict[int, float] = {}

    def observe(self, worker: int, state: list[dict[str, Any]], at: float) -> None:
        reqs = state_totals(state).get("http_reqs", 0.0)
        last = self._last.get(worker)
        if last is not None and at > last[0]:
            self._rates[worker] = (reqs - last[1]) / (at - last[0])
        self._last[worker] = (at, reqs)

    def forget(self, worker: int) -> None:
        """A worker that ended sends no more requests."""
        self._last.pop(worker, None)
        self._rates.pop(worker, None)

    def total(self) -> float | None:
        """Requests per second across the workers; None before any has two snapshots."""
        return sum(self._rates.values()) if self._rates else None


def state_totals(state: list[dict[str, Any]]) -> dict[str, float]:
    """Per metric: counters summed, gauges' last values summed, over tag sets."""
    out: dict[str, float] = {}
    for md in state:
        if md["type"] in ("counter", "gauge"):
            out[md["name"]] = sum(s["value"] for _, s in md["sinks"] if s.get("count", 1))
    return out

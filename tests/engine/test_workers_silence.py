"""A worker process that freezes (SIGSTOP itself: a real stopped process) is lost once it
has sent nothing for the pool's silence limit (issue 22 §2): killed, reported with the
time of its last snapshot, that snapshot kept, the other worker run to its end. With a
short limit, so the rule is checked in seconds; the CLI's 10 s default is checked in
tests/cli/test_frozen_worker.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import multiprocessing
import os
import re
import signal
import time
from typing import Any

import pytest

from indigo_loadtest.engine.workers import WorkerPool
from indigo_loadtest.metrics.registry import Registry

LIMIT = 1.5
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="no SIGSTOP here")


async def freezing_shard(ctx: Any) -> str | None:
    """Shard 1 counts 5 iterations, waits for its snapshots to carry them, then stops
    itself; shard 0 runs its whole 3 s."""
    await ctx.wait_start()
    if ctx.shard.index == 1:
        ctx.registry.builtin.iterations.add(5)
        await asyncio.sleep(0.5)  # snapshots every 0.2 s carry the 5
        os.kill(os.getpid(), signal.SIGSTOP)
    ctx.registry.builtin.iterations.add(1)
    await asyncio.sleep(3.0)
    ctx.registry.builtin.iterations.add(1)
    return ctx.stop_reason


def test_a_frozen_worker_is_killed_after_the_silence_limit_and_its_snapshot_kept() -> None:
    registry = Registry()
    errors = io.StringIO()
    pool = WorkerPool(freezing_shard, None, 2, registry, snapshot_interval=0.2,
                      error_stream=errors, silence_limit=LIMIT)
    started = time.monotonic()
    try:
        result = asyncio.run(asyncio.wait_for(pool.run(), 60))
    finally:
        for child in multiprocessing.active_children():  # whatever the pool left
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, sig)
    took = time.monotonic() - started

    assert result.results[0] is None  # shard 0 was not stopped: it ran to its end
    assert result.results[1] is None and not result.errors
    (line,) = result.lost
    match = re.fullmatch(r"worker 1 of 2 \(pid (\d+)\) went silent \([^)]*; killed after "
                         r"1\.5s without a snapshot\) (\d+\.\d)s into the test; its share of "
                         r"the test was not run from then on", line)
    assert match, line
    # The time given is its last snapshot's: just before it stopped itself, 0.5 s in.
    assert float(match[2]) < 1.5
    assert "the other workers go on to the planned end" in errors.getvalue()
    # Killed (and reaped) by the pool, not left stopped: the pid is gone.
    with pytest.raises(ProcessLookupError):
        os.kill(int(match[1]), 0)
    # Shard 0's 2 iterations and the 5 of shard 1's last snapshot.
    assert registry.builtin.iterations.aggregate().value == 7  # type: ignore[union-attr]
    assert took < 30  # not hung on the frozen worker

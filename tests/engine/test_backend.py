"""One execution interface: the settings pick the backend, and the runner reads every
backend through `ExecutionBackend` alone (a real scenario file, real worker processes)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from indigo_loadtest.engine.backend import ExecutionBackend
from indigo_loadtest.engine.execution import Execution
from indigo_loadtest.engine.workers import WorkersExecution
from indigo_loadtest.run import Console, RunSettings, prepare, run_event_loop
from indigo_loadtest.run.engine import Engine, open_backend

SCENARIO = '''
"""Twenty short iterations, no target."""
from indigo_loadtest import sleep

options = {"vus": 2, "iterations": 20}


async def default(vu):
    await sleep(0.02)
'''


def run_through_interface(backend: ExecutionBackend) -> tuple[Any, list[tuple[Any, ...]]]:
    """Run it, reading progress, live metrics and the request rate as the runner does."""
    readings: list[tuple[Any, ...]] = []

    async def main() -> Any:
        task = asyncio.ensure_future(backend.run())
        while not task.done():
            readings.append((backend.progress().iterations, backend.request_rate(),
                             backend.live_registry(), backend.elapsed))
            await asyncio.sleep(0.05)
        return await task

    return run_event_loop(main()), readings


@pytest.mark.parametrize(("workers", "kind"), [(1, Execution), (2, WorkersExecution)])
def test_the_settings_pick_the_backend_and_it_serves_the_interface(
        tmp_path: Path, workers: int, kind: type) -> None:
    path = tmp_path / "twenty.py"
    path.write_text(SCENARIO)
    console = Console(io.StringIO(), io.StringIO())
    prepared = prepare(RunSettings(scenario=str(path), workers=workers, quiet=True,
                                   results_dir=str(tmp_path)), console)
    try:
        backend = open_backend(prepared, console)
        assert type(backend) is kind
        assert isinstance(backend, ExecutionBackend)
        result, readings = run_through_interface(backend)
    finally:
        prepared.close()
    assert result.iterations == 20 and not result.interrupted
    assert prepared.registry.builtin.iterations.aggregate().value == 20  # type: ignore[union-attr]
    assert backend.live_registry() is prepared.registry  # once run() returned: the run's
    assert readings, "run() returned before the first reading"
    rates = [rate for _, rate, _, _ in readings]
    if workers == 1:  # current counts: the progress line takes the rate itself
        assert all(registry is prepared.registry for _, _, registry, _ in readings)
        assert rates == [None] * len(rates)
    else:  # measured in the workers, or the average so far: never unknown
        assert all(isinstance(rate, float) for rate in rates)


def test_the_engine_reads_the_backend_through_the_interface(tmp_path: Path) -> None:
    """`Engine.snapshot()` passes the backend's own rate on (None in this process)."""
    path = tmp_path / "twenty.py"
    path.write_text(SCENARIO)
    console = Console(io.StringIO(), io.StringIO())
    prepared = prepare(RunSettings(scenario=str(path), workers=1, quiet=True,
                                   results_dir=str(tmp_path)), console)
    try:
        engine = Engine(prepared, console)
        before = engine.snapshot()
        run_event_loop(engine.run())
    finally:
        prepared.close()
    assert before.vus_max == 2 and before.req_rate is None  # planned VUs until allocated
    after = engine.snapshot()
    assert after.iterations == 20 and after.req_rate is None

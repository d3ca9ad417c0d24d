"""Executing a prepared run: the engine, the outputs, the recording, the threshold
watch, the progress line and the signals around it; outputs, summary and files are
written however it ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import traceback

from ..progress import ProgressLine
from ..scenario.errors import ExitCode, ScenarioError
from .engine import Engine
from .interrupts import Interrupts
from .limits import planned_duration
from .outcome import Outcome, hook_exit_code, judge_measurement, lost_workers
from .outputs import (
    _start_outputs,
    _stop_outputs,
    follow_live_metrics,
    report_output_failures,
    tell_output_failures,
)
from .prepare import Prepared
from .recording import finish_recording, start_recording
from .settings import Console
from .summary import finish

# How often abortOnFail thresholds are evaluated while the test runs (k6: every 2 s).
ABORT_CHECK_INTERVAL = 2.0


async def _watch_thresholds(prepared: Prepared, engine: Engine, outcome: Outcome) -> None:
    """abortOnFail: evaluated every ABORT_CHECK_INTERVAL seconds while the scenarios run,
    on the load clock (rates, delayAbortEval): at the instant the live metrics run up to
    (with workers, their latest snapshots'), so a rate is their count over that time."""
    while True:
        await asyncio.sleep(ABORT_CHECK_INTERVAL)
        registry = engine.live_registry()
        at = engine.execution.live_as_of()
        if at is None or at <= 0:  # not started (workers starting, setup()) or over
            continue
        crossed = prepared.thresholds.should_abort(registry, at)
        if crossed is not None:
            outcome.aborted_by = crossed
            engine.stop(f"threshold {crossed.key} '{crossed.expression}' crossed (abortOnFail)")
            return


async def execute(prepared: Prepared, console: Console) -> Outcome:
    """Run the prepared test; outputs, summary and files are written however it ends."""
    settings = prepared.settings
    outcome = Outcome(exit_code=ExitCode.OK)
    engine = Engine(prepared, console)
    follow_live_metrics(prepared.outputs, engine)
    tell_output_failures(prepared.outputs, console)
    await _start_outputs(prepared, console)
    recording = await start_recording(prepared, engine, console)
    loop = asyncio.get_running_loop()
    run_task = asyncio.ensure_future(engine.run())
    interrupts = Interrupts(console, engine, run_task)
    interrupts.last_resort = lambda: _last_resort(prepared, console, outcome, engine)
    helpers = []
    if prepared.thresholds:
        helpers.append(asyncio.ensure_future(
            _watch_thresholds(prepared, engine, outcome)))
    helpers += [asyncio.ensure_future(watch(engine)) for watch in prepared.watchers]
    if not settings.quiet:
        progress = ProgressLine(engine.snapshot, console.err,
                                total_duration=planned_duration(prepared))
        helpers.append(asyncio.ensure_future(progress.run()))
    result = None
    # Installed until the files are written: a signal at any point still gets them.
    with interrupts.installed(loop):
        try:
            try:
                result = await run_task
            except asyncio.CancelledError:
                if interrupts.count < 3:
                    raise
            except ScenarioError as exc:
                outcome.error = str(exc)
                outcome.exit_code = exc.exit_code
            except Exception as exc:  # an engine fault: still write what was measured
                outcome.error = f"{type(exc).__name__}: {exc}"
                outcome.exit_code = ExitCode.GENERIC_ENGINE
                if prepared.env.bool("DEBUG"):
                    console.note("".join(traceback.format_exception(exc)))
            finally:
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
        finally:
            interrupts.finish()
            await _stop_outputs(prepared.outputs, console, interrupts)
        report_output_failures(prepared.outputs, outcome)
        # The load clock, also for a run cut short (setup() failed: 0, no load ran).
        elapsed = result.elapsed if result is not None else engine.execution.elapsed
        outcome.elapsed = elapsed
        outcome.interrupted = interrupts.count > 0
        setup_error = getattr(result, "setup_error", None)
        if setup_error and not outcome.error:
            outcome.error = f"setup() failed: {setup_error}"
            outcome.exit_code = hook_exit_code(setup_error, ExitCode.SETUP_TIMEOUT)
        for line in lost_workers(result):
            outcome.problem(ExitCode.WORKER_DIED, line)
        judge_measurement(prepared, outcome, result, hard_stopped=interrupts.count > 1)
        finish(prepared, console, outcome, elapsed, result)
        await finish_recording(recording, prepared, console, outcome, elapsed)
    return outcome


def _last_resort(prepared: Prepared, console: Console, outcome: Outcome,
                 engine: Engine) -> None:
    """Scenario code that swallowed the break still blocks the loop after a third signal:
    write what can be written without the loop (files, summary, export), then exit."""
    console.note("the scenario code does not stop: writing the results, then exiting")
    for output in prepared.outputs:
        close_now = getattr(output, "close_now", None)  # raw-sample files; no pushes
        if close_now is not None:
            with contextlib.suppress(Exception):
                close_now()
    report_output_failures(prepared.outputs, outcome)
    outcome.interrupted = True
    with contextlib.suppress(Exception):
        finish(prepared, console, outcome, engine.execution.elapsed, None)
    prepared.close()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(outcome.exit_code or ExitCode.EXTERNAL_ABORT)

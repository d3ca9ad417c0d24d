"""The entry points: `run` (one scenario, start to end) and `check` (no traffic)."""

from __future__ import annotations

from typing import Any

from ..engine.gc_tuning import freeze_loaded
from ..scenario.errors import ExitCode, ScenarioError
from ..startup import end_startup
from .execute import execute
from .header import dry_run_report, header_lines
from .interrupts import signals_held
from .prepare import prepare
from .settings import Console, RunSettings


def run(settings: RunSettings, console: Console | None = None) -> int:
    """One scenario, start to end; returns the process exit code."""
    console = console or Console()
    try:
        prepared = prepare(settings, console)
    except ScenarioError as exc:
        console.error(str(exc))
        return exc.exit_code
    try:
        end_startup()  # a signal while it was prepared ends the run here, nothing sent
        if not settings.quiet:
            console.print("\n".join(header_lines(prepared)))
        if settings.dry_run:
            console.print(dry_run_report(prepared))
            return ExitCode.OK
        with signals_held():
            freeze_loaded()
            outcome = run_event_loop(execute(prepared, console))
            prepared.close()
        return outcome.exit_code
    except ScenarioError as exc:
        console.error(str(exc))
        return exc.exit_code
    finally:
        prepared.close()


def check(settings: RunSettings, console: Console | None = None) -> int:
    """Import and validate (options, thresholds, exec functions) without traffic."""
    console = console or Console()
    settings.dry_run = True
    try:
        prepared = prepare(settings, console, start_target=False)
    except ScenarioError as exc:
        console.error(str(exc))
        return exc.exit_code
    prepared.close()
    end_startup()
    console.print(dry_run_report(prepared))
    return ExitCode.OK


def run_event_loop(coro: Any) -> Any:
    from ..event_loop import run as run_loop

    return run_loop(coro)

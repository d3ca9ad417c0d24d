"""One run: scenario → config → module → plan → (simulator) → engine → summary, files, exit code.

`prepare()` does everything that needs no traffic (so `check` and `--dry-run` stop
there, and every mistake is reported before the first request); `execute()` runs the
prepared test. Errors meant for the user are `ScenarioError`s: one line, an exit code.

The modules follow the run's flow: settings (what the command line says) → prepare
(+ limits, outputs, recording paths: all checked before traffic) → header → execute
(engine, interrupts, outputs, recording, threshold watch) → summary (thresholds,
summary, files, exit code, from the outcome); commands holds `run` and `check`.
"""

from __future__ import annotations

from .commands import check, run, run_event_loop
from .execute import execute
from .outcome import Outcome
from .prepare import Prepared, prepare
from .settings import Console, RunSettings

__all__ = ["Console", "Outcome", "Prepared", "RunSettings", "check", "execute", "prepare",
           "run", "run_event_loop"]

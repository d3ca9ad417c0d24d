"""How a run ended (`Outcome`): its error, its problems (each an exit code and a
reason) and the verdict worded from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..metrics.thresholds import ThresholdResult
from ..scenario.errors import ExitCode

if TYPE_CHECKING:
    from .prepare import Prepared


@dataclass
class Outcome:
    exit_code: int
    threshold_results: list[ThresholdResult] = field(default_factory=list)
    interrupted: bool = False
    aborted_by: ThresholdResult | None = None
    error: str | None = None
    # Why the measurement is incomplete (a dead worker, a failed output, nothing measured):
    # each is (exit code, one-line reason); the run is reported as failed with the first.
    problems: list[tuple[int, str]] = field(default_factory=list)
    elapsed: float = 0.0  # seconds the test ran (for rates computed after the run)

    def problem(self, exit_code: int, reason: str) -> None:
        self.problems.append((int(exit_code), reason))


def hook_exit_code(error: str, timeout_code: int) -> int:
    """107 for a setup()/teardown() that raised, k6's 100/101 for one that timed out."""
    from ..engine.execution import HookTimeout

    return timeout_code if isinstance(error, HookTimeout) else ExitCode.SCRIPT_EXCEPTION


def judge_measurement(prepared: Prepared, outcome: Outcome, result: Any, *,
                      hard_stopped: bool) -> None:
    """teardown() failing is a script error (unless a second Ctrl-C skipped it); a run
    that measured nothing is a problem (see `verdict.nothing_measured`). An error or an
    interruption already explains an empty run and sets the exit code."""
    teardown_error = getattr(result, "teardown_error", None)
    if teardown_error and not outcome.error and not hard_stopped:
        outcome.error = f"teardown() failed: {teardown_error}"
        outcome.exit_code = hook_exit_code(teardown_error, ExitCode.TEARDOWN_TIMEOUT)
    if outcome.error or outcome.interrupted or result is None:
        return
    from ..verdict import nothing_measured

    reason = nothing_measured(prepared.registry)
    for judge in prepared.judges:
        reason = reason or judge(prepared.registry)
    if reason is not None:
        outcome.problem(ExitCode.NOTHING_MEASURED, reason)
        return  # nothing measured: no pass mark to judge it by
    for mark in prepared.pass_marks:
        missed = mark(prepared.registry)
        if missed is not None:
            outcome.problem(*missed)


def lost_workers(result: Any) -> list[str]:
    """One line per `--workers` process that did not run its share of the test to the
    end (it died, or was sent a signal of its own); empty for a one-process run."""
    return list(getattr(result, "lost_workers", ()))


def verdict_text(outcome: Outcome) -> str:
    if outcome.exit_code == ExitCode.OK:
        return "passed"
    crossed = outcome.aborted_by is not None or not all(r.ok for r in outcome.threshold_results)
    if outcome.exit_code == ExitCode.THRESHOLDS_FAILED and (crossed or not outcome.problems):
        return "failed: thresholds crossed"  # else a pass mark missed (Prepared.pass_marks)
    reason = outcome.error or (outcome.problems[0][1] if outcome.problems else None)
    if outcome.interrupted and not reason:
        reason = "interrupted"
    return f"failed (exit code {int(outcome.exit_code)})" + (f": {reason}" if reason else "")

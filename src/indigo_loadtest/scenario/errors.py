"""User-facing errors of the scenario layer and the process exit codes (k6's numbering)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes: k6's where k6 has one, so CI scripts written for k6 keep working."""

    OK = 0
    FAILED = 1  # `run --all`: at least one scenario failed
    USAGE = 2  # bad command line (argparse's own code)
    THRESHOLDS_FAILED = 99
    SETUP_TIMEOUT = 100
    TEARDOWN_TIMEOUT = 101
    GENERIC_ENGINE = 103
    INVALID_CONFIG = 104
    EXTERNAL_ABORT = 105  # Ctrl-C / SIGTERM
    SCRIPT_EXCEPTION = 107
    SCRIPT_ABORTED = 108
    # Beyond k6: a run whose own measurement is incomplete never passes.
    WORKER_DIED = 111  # a --workers process died; its share of the test was not run
    OUTPUT_FAILED = 112  # a result output could not write (disk full, file removed, ...)
    NOTHING_MEASURED = 113  # no iteration completed, or a scenario that sends requests sent none
    TOO_MANY_FAILURES = 114  # `bench`: a point failed more requests than --max-error-rate


class ScenarioError(Exception):
    """A mistake in a scenario, its options or the configuration: one line, no traceback."""

    def __init__(self, message: str, exit_code: int = ExitCode.INVALID_CONFIG) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = int(exit_code)

    def __str__(self) -> str:
        return self.message

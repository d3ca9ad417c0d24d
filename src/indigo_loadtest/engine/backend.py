"""The one interface a run's execution offers the runner, whatever executes it.

Backends: `execution.Execution` (the test in this process) and `workers.WorkersExecution`
(`--workers N` shard processes: k6 execution segments released at one instant, their
registry snapshots merged for live views and their final states merged at the end). A
backend that runs shards elsewhere (a cluster) is another class with WorkersExecution's
surface. The runner picks one (`run.engine.open_backend`) and uses only this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..metrics.registry import Registry
    from .execution import ExecutionResult, Progress


@runtime_checkable
class ExecutionBackend(Protocol):
    """setup(), the scenarios and teardown(data), run once; stoppable from the loop."""

    async def run(self) -> ExecutionResult:
        """The whole test; the run's registry holds every shard's final state when it
        returns (a `WorkersExecutionResult` also names the shards that were lost)."""
        ...

    def stop(self, reason: str = "stopped", *, hard: bool = False) -> None:
        """End the test: gracefully (gracefulStop, then teardown), or with `hard` at once
        (in-flight iterations cancelled). Idempotent; called on the loop (Ctrl-C,
        abortOnFail, `bench`'s saturation watch)."""
        ...

    @property
    def elapsed(self) -> float:
        """The load clock: seconds since the scenarios' common start (0 before; start-up,
        setup() and teardown() are not on it), frozen at the end of the last scenario.
        Every rate of the run is a count over it (docs/metrics.md, "The load clock")."""
        ...

    def live_as_of(self) -> float | None:
        """The load-clock instant `live_registry()` holds the measurements up to (shards:
        their latest snapshots'); None before the load starts and once it has ended."""
        ...

    def progress(self) -> Progress:
        """VUs, iterations and dropped iterations now; cheap, read several times a second."""
        ...

    def live_registry(self) -> Registry:
        """The metrics so far, every shard included (progress, abortOnFail, periodic
        outputs, the run record); after run() returns, the run's registry."""
        ...

    def request_rate(self) -> float | None:
        """Requests per second now, measured where the requests are made; None when the
        counts in `live_registry()` are current enough for the caller to take the rate
        between two of its readings (in this process)."""
        ...

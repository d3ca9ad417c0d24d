"""The runner's view of the execution backend (see `engine.backend`): `open_backend`
picks one from the prepared run; `Engine` is what the rest of the run uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine.backend import ExecutionBackend
from ..metrics.registry import Registry
from ..progress import Snapshot
from ..scenario.errors import ExitCode, ScenarioError
from .limits import plan_max_vus
from .outputs import snapshot_interval
from .prepare import Prepared, client_config
from .settings import Console


class Engine:
    """The run's execution, whichever backend runs it (`open_backend`)."""

    def __init__(self, prepared: Prepared, console: Console) -> None:
        self.registry = prepared.registry
        self.planned_vus = plan_max_vus(prepared.options.plan)  # until VUs are allocated
        self.execution: ExecutionBackend = open_backend(prepared, console)

    async def run(self) -> Any:
        return await self.execution.run()

    def stop(self, reason: str, *, hard: bool = False) -> None:
        self.execution.stop(reason, hard=hard)

    def live_registry(self) -> Registry:
        """Metrics so far (with workers: a merged copy of their latest snapshots)."""
        return self.execution.live_registry()

    def snapshot(self) -> Snapshot:
        p = self.execution.progress()
        reqs = self.live_registry().builtin.http_reqs.aggregate().value  # type: ignore[union-attr]
        return Snapshot(elapsed=p.elapsed, vus=p.vus, vus_max=p.vus_max or self.planned_vus,
                        iterations=p.iterations, http_reqs=int(reqs),
                        dropped_iterations=p.dropped, req_rate=self.execution.request_rate())


def open_backend(prepared: Prepared, console: Console) -> ExecutionBackend:
    """The backend the settings ask for: `engine.execution.Execution` in this process
    for one worker, `engine.workers.WorkersExecution` across `--workers N` processes or
    (`--ray`) Ray actors.
    The only place in the runner that knows the backends."""
    from ..engine.executors import EngineError
    from ..http.client import Client

    registry, plan, env = prepared.registry, prepared.options.plan, prepared.env
    config = client_config(env, plan.extra, prepared.settings)
    factory = lambda: Client(registry, config)  # noqa: E731 - one Client per VU
    workers = prepared.workers
    try:
        if prepared.settings.ray is not None:
            from .ray import ray_execution

            return ray_execution(prepared, factory, config, console)
        if workers > 1:
            return _workers(prepared, factory, config, console, workers)
        from ..engine.execution import Execution

        return Execution(plan, prepared.module, registry, factory,
                         env=dict(env), error_stream=console.err)
    except EngineError as exc:
        raise ScenarioError(str(exc), ExitCode.INVALID_CONFIG) from None


def _workers(prepared: Prepared, factory: Callable[[], Any], config: Any,
             console: Console, workers: int) -> ExecutionBackend:
    from ..engine.workers import WorkersExecution

    return WorkersExecution(
        prepared.options.plan, prepared.module, prepared.registry, factory,
        workers=workers, scenario_path=prepared.scenario.path, client_config=config,
        env=dict(prepared.env), error_stream=console.err,
        snapshot_interval=snapshot_interval(prepared.outputs),
    )

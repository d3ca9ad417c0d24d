"""The runner's view of the execution backend (see `engine.backend`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..metrics.registry import Registry
from ..progress import Snapshot
from ..scenario.errors import ExitCode, ScenarioError
from .limits import plan_max_vus
from .outputs import snapshot_interval
from .prepare import Prepared, client_config
from .settings import Console


class Engine:
    """The run's execution: `engine.execution.Execution` in this process, or
    `engine.workers.WorkersExecution` across `--workers N` processes (same interface)."""

    def __init__(self, prepared: Prepared, console: Console) -> None:
        from ..engine.executors import EngineError
        from ..http.client import Client

        registry, plan, env = prepared.registry, prepared.options.plan, prepared.env
        config = client_config(env, plan.extra, prepared.settings)
        factory = lambda: Client(registry, config)  # noqa: E731 - one Client per VU
        self.registry = registry
        self.planned_vus = plan_max_vus(plan)  # shown until the VUs are allocated
        workers = prepared.workers
        try:
            if workers > 1:
                self.execution = self._workers(prepared, factory, config, console, workers)
            else:
                from ..engine.execution import Execution

                self.execution = Execution(plan, prepared.module, registry, factory,
                                           env=dict(env), error_stream=console.err)
        except EngineError as exc:
            raise ScenarioError(str(exc), ExitCode.INVALID_CONFIG) from None

    @staticmethod
    def _workers(prepared: Prepared, factory: Callable[[], Any], config: Any,
                 console: Console, workers: int) -> Any:
        from ..engine.workers import WorkersExecution

        return WorkersExecution(
            prepared.options.plan, prepared.module, prepared.registry, factory,
            workers=workers, scenario_path=prepared.scenario.path, client_config=config,
            env=dict(prepared.env), error_stream=console.err,
            snapshot_interval=snapshot_interval(prepared.outputs),
        )

    async def run(self) -> Any:
        return await self.execution.run()

    def stop(self, reason: str, *, hard: bool = False) -> None:
        self.execution.stop(reason, hard=hard)

    def live_registry(self) -> Registry:
        """Metrics so far (with workers: a merged copy of their latest snapshots)."""
        live = getattr(self.execution, "live_registry", None)
        return live() if live is not None else self.registry

    def snapshot(self) -> Snapshot:
        p = self.execution.progress()
        reqs = self.live_registry().builtin.http_reqs.aggregate().value  # type: ignore[union-attr]
        rate = getattr(self.execution, "request_rate", None)
        req_rate = rate() if rate is not None else None
        if rate is not None and req_rate is None:  # workers: until each has sent twice
            req_rate = reqs / p.elapsed if p.elapsed > 0 else 0.0
        return Snapshot(elapsed=p.elapsed, vus=p.vus, vus_max=p.vus_max or self.planned_vus,
                        iterations=p.iterations, http_reqs=int(reqs),
                        dropped_iterations=p.dropped, req_rate=req_rate)

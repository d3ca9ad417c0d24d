"""Helpers for engine tests: scenario modules built from plain functions, a plan
builder, and a run helper returning the result with its registry."""

from __future__ import annotations

import asyncio
import io
import types
from collections.abc import Callable
from typing import Any

from indigo_loadtest.engine.execution import Execution, ExecutionResult
from indigo_loadtest.engine.plan import ScenarioConfig, Stage, TestPlan
from indigo_loadtest.metrics.registry import Registry


class StubClient:
    """Stands in for the HTTP client where a test only needs one per VU."""

    created = 0

    def __init__(self) -> None:
        StubClient.created += 1
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


def module(**functions: Callable[..., Any]) -> types.ModuleType:
    mod = types.ModuleType("scenario_under_test")
    for name, fn in functions.items():
        setattr(mod, name, fn)
    return mod


def scenario(executor: str, name: str = "default", **kwargs: Any) -> ScenarioConfig:
    if "stages" in kwargs:
        kwargs["stages"] = [Stage(float(d), float(t)) for d, t in kwargs["stages"]]
    kwargs.setdefault("graceful_stop", 1.0)
    return ScenarioConfig(name=name, executor=executor, **kwargs)


def run(
    scenarios: list[ScenarioConfig] | ScenarioConfig,
    mod: types.ModuleType,
    *,
    client_factory: Callable[[], Any] = StubClient,
    during: Callable[[Execution], Any] | None = None,
    plan_kwargs: dict[str, Any] | None = None,
    **exec_kwargs: Any,
) -> tuple[ExecutionResult, Registry, str]:
    """Run a plan to the end; `during(execution)` may be a coroutine function run
    alongside (to stop it, sample progress...). Returns (result, registry, stderr)."""
    if isinstance(scenarios, ScenarioConfig):
        scenarios = [scenarios]
    plan = TestPlan(scenarios=scenarios, **(plan_kwargs or {}))
    registry = Registry()
    errors = io.StringIO()

    async def main() -> ExecutionResult:
        ex = Execution(plan, mod, registry, client_factory, error_stream=errors, **exec_kwargs)
        side = asyncio.ensure_future(during(ex)) if during is not None else None
        try:
            return await ex.run()
        finally:
            if side is not None:
                await side

    result = asyncio.run(main())
    return result, registry, errors.getvalue()


def count(registry: Registry, name: str, **flt: str) -> float:
    m = registry.get(name)
    return 0.0 if m is None else m.aggregate(flt or None).value  # type: ignore[union-attr]

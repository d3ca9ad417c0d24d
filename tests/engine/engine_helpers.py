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
    use_uvloop: bool = False,
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

    if use_uvloop:
        import uvloop

        result = uvloop.run(main())
    else:
        result = asyncio.run(main())
    return result, registry, errors.getvalue()


def count(registry: Registry, name: str, **flt: str) -> float:
    m = registry.get(name)
    return 0.0 if m is None else m.aggregate(flt or None).value  # type: ignore[union-attr]


class ThreadedServer:
    """A small aiohttp server on 127.0.0.1 in a thread of its own (its own loop), so
    the engine under test talks to it over real sockets. Records each request's
    client port and cookie."""

    def __init__(self, delay: float = 0.0) -> None:
        import threading

        self.delay = delay
        self.requests: list[tuple[int, str | None]] = []  # (client port, cookie)
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        peer = request.transport.get_extra_info("peername")
        self.requests.append((peer[1], request.cookies.get("vu")))
        if self.delay:
            await asyncio.sleep(self.delay)
        resp = web.Response(text="ok")
        if "vu" not in request.cookies:
            resp.set_cookie("vu", request.query.get("vu", "?"))
        return resp

    async def _serve(self) -> None:
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

"""The scenario-facing runtime API: check, group, sleep, fail and the `http` proxy.

All of it works from the running code's context: the VU task (or setup/teardown)
sets `current_vu` and `metrics.current_tags`, so these functions need no arguments
to know which VU, scenario and group they belong to.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from contextvars import Token
from time import perf_counter
from types import TracebackType
from typing import Any, NoReturn

from .engine.errors import IterationFailed, SyncHookRequest
from .engine.vu import current_vu, sync_hook
from .metrics.registry import active_registry, current_tags
from .metrics.tags import TagSet

__all__ = ["IterationFailed", "check", "fail", "group", "http", "sleep"]

GROUP_SEPARATOR = "::"


def _passes(value: Any, predicate: Any) -> bool:
    """One check: a predicate called with `value`, or a plain value taken as the result."""
    try:
        result = predicate(value) if callable(predicate) else predicate
        if inspect.isawaitable(result):
            # An async predicate cannot be awaited here: a check must not block.
            if inspect.iscoroutine(result):
                result.close()
            return False
        return bool(result)
    except Exception:
        return False


def check(value: Any, checks: Mapping[str, Callable[[Any], Any] | Any],
          tags: Mapping[str, Any] | None = None) -> bool:
    """Evaluate every named check on `value`; record each in the `checks` rate with
    tag `check=<name>`. True if all passed. Never raises: a predicate that raises
    counts as failed."""
    try:
        registry = active_registry()
        metric = registry.builtin.checks
        base: TagSet = current_tags.get()
        if tags:
            base = base.with_tags(tags)
        items = list(checks.items())
    except Exception:
        return False
    all_passed = True
    for name, predicate in items:
        passed = _passes(value, predicate)
        all_passed = all_passed and passed
        try:
            registry.record(metric, 1.0 if passed else 0.0, base.with_pairs(("check", str(name))))
        except Exception:
            all_passed = False
    return all_passed


class group:  # lower-case: used like a function, `with group("login"):`
    """`with group("name"):` tags what runs inside with `group=::name` (nested groups
    give `::outer::inner`) and records `group_duration` (ms) when it ends."""

    __slots__ = ("_start", "_tags", "_token", "name")

    def __init__(self, name: str) -> None:
        name = str(name)
        if GROUP_SEPARATOR in name:
            raise ValueError(f"group name {name!r} must not contain {GROUP_SEPARATOR!r}")
        self.name = name
        self._token: Token[TagSet] | None = None
        self._tags: TagSet | None = None
        self._start = 0.0

    def __enter__(self) -> group:
        outer = current_tags.get()
        path = f"{outer.get('group') or ''}{GROUP_SEPARATOR}{self.name}"
        self._tags = outer.with_pairs(("group", path))
        self._token = current_tags.set(self._tags)
        self._start = perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        elapsed_ms = (perf_counter() - self._start) * 1000.0
        if self._token is not None:
            current_tags.reset(self._token)
            self._token = None
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            return  # an interrupted group is not a measured one
        registry = active_registry()
        assert self._tags is not None
        registry.record(registry.metric("group_duration", "trend", True), elapsed_ms,
                        self._tags)

    async def __aenter__(self) -> group:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


async def sleep(seconds: float) -> None:
    """Pause this VU (think time) without blocking the others."""
    await asyncio.sleep(max(0.0, float(seconds)))


def fail(message: str = "") -> NoReturn:
    """End the current iteration with `message` (counted and reported, not a crash)."""
    raise IterationFailed(message)


class _HttpProxy:
    """`http`: the HTTP client of the VU running this code (or of setup/teardown)."""

    __slots__ = ()

    def _client(self) -> Any:
        vu = current_vu.get()
        if vu is None:
            raise RuntimeError(
                "`http` is only available inside setup(), teardown() or an iteration")
        return vu.http

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client(), name)
        hook = sync_hook.get()
        if hook is not None and inspect.iscoroutinefunction(attr):
            raise SyncHookRequest(hook, name)
        return attr

    def __repr__(self) -> str:
        vu = current_vu.get()
        return f"<http of {vu!r}>" if vu is not None else "<http (no VU running)>"


http: Any = _HttpProxy()

"""indigo-loadtest: load and flow testing for LLM chat APIs.

The names below are the scenario API (see docs/architecture.md). They are resolved
lazily so that `import indigo_loadtest` stays cheap for the CLI and worker processes.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ._compiled import compiled, install_pure_finder, pure_requested

__version__ = "0.1.0"

if pure_requested():  # INDIGO_PURE_PYTHON=1: the stream path's .py files, not the built ones
    install_pure_finder()

_EXPORTS = {
    "check": "indigo_loadtest.api",
    "group": "indigo_loadtest.api",
    "sleep": "indigo_loadtest.api",
    "fail": "indigo_loadtest.api",
    "env": "indigo_loadtest.scenario.config",
    "Trend": "indigo_loadtest.metrics.registry",
    "Counter": "indigo_loadtest.metrics.registry",
    "Gauge": "indigo_loadtest.metrics.registry",
    "Rate": "indigo_loadtest.metrics.registry",
    "VU": "indigo_loadtest.engine.vu",
}

# `http` is the subpackage indigo_loadtest.http, which doubles as the running VU's
# client (see its docstring); `from indigo_loadtest import http` imports it.
__all__ = [*_EXPORTS, "__version__", "compiled", "http"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'indigo_loadtest' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value

"""The metrics modules import one another in one direction only: no circle, not even
through an import deferred into a function or kept for type checking."""

from __future__ import annotations

import ast
from pathlib import Path

import indigo_loadtest.metrics as metrics_pkg

PACKAGE = Path(metrics_pkg.__file__).parent


def imported_siblings(path: Path) -> set[str]:
    """The metrics modules `path` imports anywhere in it (`from .x import`, `from . import x`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        path.append(module)
        for nxt in sorted(graph.get(module, ())):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        return None

    return visit(start)


def test_no_import_circle_among_the_metrics_modules() -> None:
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {name: imported_siblings(path) & set(modules) for name, path in modules.items()}
    assert "builtin" in graph["registry"]  # the registry creates the built-in metrics
    for name in sorted(graph):
        assert cycle_from(name, graph) is None, " -> ".join(cycle_from(name, graph) or [])


def test_the_registry_still_carries_its_builtin_metrics() -> None:
    from indigo_loadtest.metrics import Registry
    from indigo_loadtest.metrics.builtin import BuiltinMetrics

    registry = Registry()
    assert isinstance(registry.builtin, BuiltinMetrics)
    assert registry.builtin.registry is registry
    assert registry.get("http_reqs") is registry.builtin.http_reqs

"""Whether a scenario can use the embedded simulator: decided from its source, before
anything starts.

Without `BASE`, `run` starts the embedded simulator as the target. A scenario that only
calls its own URLs never reads `BASE`, and a simulator process it does not use takes
CPU from the generator (on a benchmark, from the very thing measured). The rule: the
simulator is started when the scenario, or a helper module it imports from its own
folder (`import _common`), names `BASE` as a string (`env["BASE"]`, `env.get("BASE")`,
`os.environ["BASE"]`) or imports the helpers that read it themselves: the Jan flows
(`indigo_loadtest.jan`) and the benchmark building blocks (`indigo_loadtest.llm`). A
read the scan cannot see (a computed key) finds `BASE` unset and fails with a message
that says why (`scenario.config.Env`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

BASE_KEY = "BASE"
# Packages whose helpers read BASE for the scenario (a Jan flow, a BenchScenario).
BASE_READING_PACKAGES = ("jan", "llm")
# Helper modules scanned at most, so a folder of thousands of files stays quick.
MAX_FILES = 200


def reads_base(scenario: Path) -> bool:
    """True if the scenario (or a local module it imports) may read BASE."""
    return _any_node(scenario, _names_base)


def uses_llm(scenario: Path) -> bool:
    """True if the scenario (or a local module it imports) imports indigo_loadtest.llm
    (measure_stream, a BenchScenario...) or .jan (whose flows record llm_*): its llm_*
    metrics are then declared up front."""
    return _any_node(scenario, lambda node: any(
        _imports_package(node, package) for package in ("jan", "llm")))


def _any_node(scenario: Path, found: Callable[[ast.AST], bool]) -> bool:
    folder = scenario.resolve().parent
    seen: set[Path] = set()
    todo = [scenario.resolve()]
    while todo and len(seen) < MAX_FILES:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = ast.parse(path.read_bytes(), str(path))
        except (OSError, SyntaxError, ValueError):
            return True  # cannot tell: the safe answer starts the simulator
        for node in ast.walk(tree):
            if found(node):
                return True
            todo.extend(_local_modules(node, folder))
    return False


def _names_base(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value == BASE_KEY
    return any(_imports_package(node, package) for package in BASE_READING_PACKAGES)


def _imports_package(node: ast.AST, package: str) -> bool:
    """`import indigo_loadtest.llm`, `from indigo_loadtest.llm.x import y`,
    `from indigo_loadtest import llm`, `indigo_loadtest.llm`."""
    if isinstance(node, ast.Import):
        return any(_in_package(alias.name, package) for alias in node.names)
    if isinstance(node, ast.ImportFrom) and not node.level and node.module:
        return _in_package(node.module, package) or (node.module == "indigo_loadtest" and any(
            a.name == package for a in node.names))
    if isinstance(node, ast.Attribute) and node.attr == package:
        return isinstance(node.value, ast.Name) and node.value.id == "indigo_loadtest"
    return False


def _in_package(module: str, package: str) -> bool:
    """`indigo_loadtest.jan`, `indigo_loadtest.llm.benchmark`, ..."""
    parts = module.split(".")
    return len(parts) > 1 and parts[0] == "indigo_loadtest" and parts[1] == package


def _local_modules(node: ast.AST, folder: Path) -> list[Path]:
    """The files of the modules beside the scenario that `node` imports."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
        names = [node.module]
    else:
        return []
    found: list[Path] = []
    for name in names:
        top = name.split(".")[0]
        module = folder / f"{top}.py"
        if module.is_file():
            found.append(module)
        elif (folder / top).is_dir():
            found.extend(sorted((folder / top).rglob("*.py"))[:MAX_FILES])
    return found

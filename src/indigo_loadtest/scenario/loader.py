"""Importing a scenario file as a fresh module, bound to the run's metric registry.

A syntax or import error becomes one line, `file:line: Type: message`, with k6's
exit code for script exceptions (107); our own frames never reach the user.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from ..metrics.registry import Registry, set_active_registry
from .discovery import display_path
from .errors import ExitCode, ScenarioError

_counter = itertools.count(1)


def load_module(path: Path, registry: Registry) -> ModuleType:
    """Import `path` as a new module after making `registry` the active one.

    Module-level metrics (`Trend("x")`) therefore bind to this run's registry. Helper
    modules beside the file (`_common.py`) are re-imported too, for the same reason.
    """
    path = path.resolve()
    set_active_registry(registry)
    folder = str(path.parent)
    _forget_modules_from(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so a scenario can `import _helpers` beside it
    safe_stem = re.sub(r"\W", "_", path.stem)
    name = f"indigo_scenario_{safe_stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{display_path(path)}: cannot be imported", ExitCode.SCRIPT_EXCEPTION)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ScenarioError:
        sys.modules.pop(name, None)
        raise
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        where = _location(Path(exc.filename) if exc.filename else path, exc.lineno)
        raise ScenarioError(
            f"{where}: {type(exc).__name__}: {exc.msg}", ExitCode.SCRIPT_EXCEPTION
        ) from None
    except SystemExit as exc:
        # exit() while importing would end the tool silently, with exit code 0 for
        # `sys.exit()` or `exit(0)`: a run that measured nothing must not pass.
        sys.modules.pop(name, None)
        raise ScenarioError(
            f"{_error_location(exc, path)}: the scenario called exit() while being "
            f"imported (SystemExit: {exc.code!r})", ExitCode.SCRIPT_EXCEPTION,
        ) from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ScenarioError(
            f"{_error_location(exc, path)}: {type(exc).__name__}: {exc}",
            ExitCode.SCRIPT_EXCEPTION,
        ) from None
    return module


def _location(file: Path, line: int | None) -> str:
    shown = display_path(file)
    return f"{shown}:{line}" if line else shown


def _error_location(exc: BaseException, scenario: Path) -> str:
    """The most relevant user frame: the deepest one in the scenario's folder."""
    frames = traceback.extract_tb(exc.__traceback__)
    folder = scenario.parent
    user = [f for f in frames if f.filename and Path(f.filename).resolve().parent == folder]
    if user:
        return _location(Path(user[-1].filename), user[-1].lineno)
    return display_path(scenario)


def _forget_modules_from(folder: str) -> None:
    stale = [
        name for name, mod in list(sys.modules.items())
        if (file := getattr(mod, "__file__", None)) and str(Path(file).parent) == folder
    ]
    for name in stale:
        del sys.modules[name]

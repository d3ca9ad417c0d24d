"""The compiled stream path: which hot modules Cython built, and the switch to turn it off.

The modules in HOT_MODULES are plain Python and the only source; an install that had
Cython and a C compiler also carries them built as extension modules (setup.py), which
Python imports in preference to the .py files. INDIGO_PURE_PYTHON=1 makes this process
(and the workers it starts, which inherit the variable) import the .py files instead:
the same code, interpreted, so the tests can run both paths.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

# The per-event read path of streamed responses (docs/architecture.md, "Streams").
HOT_MODULES = (
    "indigo_loadtest.http.sse",
    "indigo_loadtest.http.transport",
    "indigo_loadtest.http.response",
    "indigo_loadtest.llm.stream_metrics",
    "indigo_loadtest.metrics.sinks",  # the trends' sketches, fed per stream and request
)
PURE_ENV = "INDIGO_PURE_PYTHON"


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


class _PureFinder:
    """A meta-path finder that loads the hot modules from their .py source even where an
    extension module of the same name sits beside it."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> object:
        if name not in HOT_MODULES or not path:
            return None
        leaf = name.rpartition(".")[2] + ".py"
        for folder in path:  # type: ignore[attr-defined]
            source = os.path.join(folder, leaf)
            if os.path.isfile(source):
                loader = importlib.machinery.SourceFileLoader(name, source)
                return importlib.util.spec_from_file_location(name, source, loader=loader)
        return None


def install_pure_finder() -> None:
    """Import the hot modules as Python source from now on (before their first import)."""
    if not any(f is _PureFinder for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder)  # type: ignore[arg-type]


def is_compiled(module: ModuleType) -> bool:
    return isinstance(getattr(module, "__loader__", None),
                      importlib.machinery.ExtensionFileLoader)


def compiled_modules() -> dict[str, bool]:
    """Each hot module (imported now, if it was not yet): built by Cython or not."""
    return {name: is_compiled(importlib.import_module(name)) for name in HOT_MODULES}


def compiled() -> bool:
    """True when every module of the stream path runs compiled."""
    return all(compiled_modules().values())


def describe() -> str:
    """How the stream path runs, for `--version` and the run header."""
    modules = compiled_modules()
    if all(modules.values()):
        return "compiled (Cython)"
    if pure_requested():
        return f"Python ({PURE_ENV}=1)"
    if not any(modules.values()):
        return "Python (not compiled at install)"
    built = ", ".join(n.rpartition(".")[2] for n, c in modules.items() if c)
    return f"partly compiled ({built})"

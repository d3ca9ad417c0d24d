"""Builds the stream path's hot modules with Cython where it can (the rest of the
configuration is in pyproject.toml).

The .py files stay the only source: Cython compiles them as they are (pure-Python mode,
`annotation_typing` off, so a type hint never changes what a function accepts). Where
Cython or a C compiler is missing (a build without it, a Windows or macOS machine
without a compiler), the extensions are skipped (`optional=True`) and the same modules
run as Python: `indigo_loadtest.compiled()` and `--version` say which (docs/platforms.md).
INDIGO_NO_COMPILE=1 skips them on purpose.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

HOT_MODULES = ("http/sse", "http/transport", "http/response", "llm/stream_metrics",
               "metrics/sinks")


def extensions() -> list:
    if os.environ.get("INDIGO_NO_COMPILE", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    from setuptools import Extension

    modules = [Extension("indigo_loadtest." + m.replace("/", "."),
                         [f"src/indigo_loadtest/{m}.py"], optional=True)
               for m in HOT_MODULES]
    built = cythonize(modules, quiet=True, compiler_directives={
        "language_level": 3,
        "annotation_typing": False,  # hints are documentation, not C types or checks
        "binding": True,  # functions keep their Python introspection
        "nonecheck": True,  # a typed local that is None raises, as in Python
        "embedsignature": True,
    })
    for ext in built:  # cythonize's extensions do not keep `optional`
        ext.optional = True
    return built


class OptionalBuildExt(build_ext):
    """An optional extension that cannot be built is left out, however its build fails
    (setuptools skips only the compiler errors it knows)."""

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:
            if not ext.optional:
                raise
            self.warn(f"building extension {ext.name!r} failed ({exc}): it runs as Python")


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})

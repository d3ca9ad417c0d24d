"""What the stream path's modules use of the `cython` module, where Cython is not
installed: its decorators do nothing, as they do in Cython's own pure-Python mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

compiled = False


def locals(**_types: Any) -> Callable[[Any], Any]:  # (Cython's name)
    return lambda func: func


def cfunc(func: Callable[..., Any]) -> Callable[..., Any]:  # a C function when compiled
    return func


# C types named in `locals`: the Python types they hold.
double = float
long = int
Py_ssize_t = int

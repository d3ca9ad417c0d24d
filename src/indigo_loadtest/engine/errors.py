"""Exceptions raised by scenario code inside iterations: shown once per kind, counted.

A kind is the exception type plus the line of scenario code it came from, so a
failing request in a loop prints one traceback, not thousands.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from pathlib import Path
from typing import TextIO

from ..http.redact import mask_text

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
# Scenario code shipped inside the package: the user's frames all the same.
_BUILTIN_SCENARIOS_DIR = str(Path(_PACKAGE_DIR) / "builtin_scenarios")


def is_tool_frame(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) and not filename.startswith(_BUILTIN_SCENARIOS_DIR)


_ASYNCIO_DIR = str(Path(asyncio.__file__).resolve().parent)


class IterationFailed(Exception):
    """Raised by `fail(message)`: ends the current iteration, not the test."""


class ExitCalled(Exception):
    """Scenario code called `sys.exit()`/`exit()`: reported as its error, for a SystemExit
    raised in an asyncio task ends the event loop, and so the run with no summary and,
    for `exit(0)`, exit code 0."""

    def __init__(self, code: object) -> None:
        super().__init__(f"the scenario called exit({'' if code is None else repr(code)})")


class SyncHookRequest(TypeError):
    """A synchronous setup()/teardown() used `http`, whose calls must be awaited."""

    def __init__(self, hook: str, method: str) -> None:
        super().__init__(f"{hook}() is a plain function, but http.{method}() must be "
                         f"awaited: write `async def {hook}()` and `await http.{method}(...)`")


def _origin(exc: BaseException) -> tuple[str, int]:
    """The innermost frame of the traceback outside this package (the user's line)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if not is_tool_frame(frame.filename):
            return frame.filename, frame.lineno or 0
    if frames:
        return frames[-1].filename, frames[-1].lineno or 0
    return "?", 0


def user_traceback(exc: BaseException) -> str:
    """The traceback of an exception from scenario code without the tool's own frames
    (nor the asyncio frames that lead into the user's first one): what a user can act
    on. When it was raised inside the tool, one line says where. An exception without
    any frame of the user's (an engine fault) keeps its whole traceback."""
    te = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    todo = [te]
    while todo:  # the exception and those it was raised from or during
        t = todo.pop()
        if id(t) not in seen:
            seen.add(id(t))
            _drop_tool_frames(t)
            todo += [c for c in (t.__cause__, t.__context__) if c is not None]
    return "".join(te.format())


def _drop_tool_frames(te: traceback.TracebackException) -> None:
    stack = list(te.stack)
    first = next((k for k, f in enumerate(stack) if not is_tool_frame(f.filename)
                  and not f.filename.startswith(_ASYNCIO_DIR)), None)
    if first is None:
        return
    kept = [f for f in stack[first:] if not is_tool_frame(f.filename)]
    te.stack = traceback.StackSummary.from_list(kept)
    last = stack[-1]
    if is_tool_frame(last.filename):
        where = Path(last.filename).relative_to(Path(_PACKAGE_DIR).parent)
        te.__notes__ = [*(te.__notes__ or []), f"(raised inside {where}:{last.lineno})"]


class ErrorReporter:
    """Counts exceptions per kind and prints the first of each kind to `stream`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.counts: dict[tuple[str, str, int], int] = {}

    def report(self, exc: BaseException, where: str) -> None:
        filename, lineno = _origin(exc)
        key = (type(exc).__name__, filename, lineno)
        seen = self.counts.get(key, 0)
        self.counts[key] = seen + 1
        if seen:
            return
        if isinstance(exc, IterationFailed):
            text = f"fail() in {where} at {filename}:{lineno}: {exc}\n"
        else:
            tb = user_traceback(exc)
            text = (f"error in {where} (shown once; further ones of this kind are only "
                    f"counted):\n{tb}")
        self.say(text)

    def say(self, text: str) -> None:
        """`text` on the stream, masked: a traceback may quote a URL, a token, a key."""
        stream = self._stream or sys.stderr
        try:
            stream.write(mask_text(text))
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed stream must not end the test

    def summary(self) -> dict[str, int]:
        """'Type at file:line' → how many times it happened."""
        return {f"{t} at {f}:{n}": c for (t, f, n), c in self.counts.items()}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

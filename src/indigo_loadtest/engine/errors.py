"""Exceptions raised by scenario code inside iterations: shown once per kind, counted.

A kind is the exception type plus the line of scenario code it came from, so a
failing request in a loop prints one traceback, not thousands.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TextIO

from ..http.redact import mask_text

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


class IterationFailed(Exception):
    """Raised by `fail(message)`: ends the current iteration, not the test."""


def _origin(exc: BaseException) -> tuple[str, int]:
    """The innermost frame of the traceback outside this package (the user's line)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if not frame.filename.startswith(_PACKAGE_DIR):
            return frame.filename, frame.lineno or 0
    if frames:
        return frames[-1].filename, frames[-1].lineno or 0
    return "?", 0


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
        stream = self._stream or sys.stderr
        if isinstance(exc, IterationFailed):
            text = f"fail() in {where} at {filename}:{lineno}: {exc}\n"
        else:
            tb = "".join(traceback.format_exception(exc))
            text = (f"error in {where} (shown once; further ones of this kind are only "
                    f"counted):\n{tb}")
        try:
            stream.write(mask_text(text))  # a traceback may quote a URL, a token, a key
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed stream must not end the test

    def summary(self) -> dict[str, int]:
        """'Type at file:line' → how many times it happened."""
        return {f"{t} at {f}:{n}": c for (t, f, n), c in self.counts.items()}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

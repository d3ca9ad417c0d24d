"""The output interface: where samples and aggregates go besides the summary."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..metrics.registry import Registry


@dataclass
class RunInfo:
    testid: str
    test_case: str
    scenario_file: str = ""
    started_at: float = 0.0  # unix seconds
    tags: dict[str, str] = field(default_factory=dict)


class Output(Protocol):
    """An output is started before the first iteration and stopped after the last.

    `stop()` must write everything it holds and be safe to call twice: it also runs
    on Ctrl-C and after a crash, so nothing measured is lost. An output may also have
    `summary_line() -> str`, printed in the summary's footer after the run.
    """

    name: str

    async def start(self, registry: Registry, run: RunInfo) -> None: ...

    async def stop(self) -> None: ...

    def description(self) -> str:
        """One line for the run header, e.g. 'json (results/x.ndjson)'."""
        ...


def unwritable_reason(path: Path) -> str | None:
    """Why a file could not be written at `path`, or None if it can. Creates nothing,
    so a bad result path is reported before the test starts (also by --dry-run)."""
    if path.is_dir():
        return "it is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "permission denied"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folders that would be created on the way
    if not folder.is_dir():
        return f"{folder} is not a directory"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to create files in {folder}"
    return _creation_refused(folder)


def _creation_refused(folder: Path) -> str | None:
    """Permission bits do not tell everything (root, read-only or special file systems
    such as /proc): create a file there and remove it at once; nothing is left behind."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".indigo-probe-"):
            pass
    except OSError as exc:
        return f"cannot create files in {folder}: {exc.strerror or exc}"
    return None

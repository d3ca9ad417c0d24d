"""The output interface: where samples and aggregates go besides the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
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
